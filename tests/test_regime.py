"""Allocator regimes: page-fault and RSS counters, regime classification, the fresh-process timer, and the
interleaved harness recording faults per call."""

from __future__ import annotations

import mmap
import sys

import pytest
import torch

from reportgen.measure import regime
from reportgen.measure.regime import (FAULTING, WARM, Block, FaultCounter, FreshProcessError, classify,
                                      minor_faults, rss_bytes, time_in_fresh_process, time_snippets_in_fresh_process)
from reportgen.measure.timing import time_interleaved

PAGES = 256  # 1 MiB of fresh anonymous pages per call: far above the regime threshold


def _touch_fresh_pages(pages: int = PAGES) -> None:
    m = mmap.mmap(-1, pages * mmap.PAGESIZE)  # new mapping: every first write to a page is a minor fault
    for i in range(pages):
        m[i * mmap.PAGESIZE] = 1
    m.close()


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/statm is Linux-only")


def test_counters_see_fresh_pages():
    f0 = minor_faults()
    _touch_fresh_pages()
    assert minor_faults() - f0 >= PAGES


@linux_only
def test_rss_grows_while_pages_are_held():
    r0 = rss_bytes()
    m = mmap.mmap(-1, PAGES * mmap.PAGESIZE)
    for i in range(PAGES):
        m[i * mmap.PAGESIZE] = 1
    grown = rss_bytes() - r0
    m.close()
    assert grown >= PAGES * mmap.PAGESIZE * 0.9


def test_classify_threshold():
    t = regime.FAULTING_MINFLT_PER_CALL
    assert classify(None) is None
    assert classify(0.0) == WARM and classify(t) == WARM and classify(t + 1) == FAULTING
    assert classify(5.0, threshold=1.0) == FAULTING


def test_block_counts_per_call_and_classifies():
    hot, cold = FaultCounter(), FaultCounter()
    for _ in range(3):
        with Block(cold, 4):
            for _ in range(4):
                _touch_fresh_pages()
        buf = bytearray(PAGES * mmap.PAGESIZE)  # touched once, then reused: no new pages per call
        with Block(hot, 4):
            for _ in range(4):
                buf[::mmap.PAGESIZE] = b"\x02" * PAGES
    assert cold.calls == 12 and cold.minflt_per_call >= PAGES and cold.summary()["regime"] == FAULTING
    assert len(cold.per_block) == 3
    assert hot.minflt_per_call < regime.FAULTING_MINFLT_PER_CALL and hot.summary()["regime"] == WARM


def test_interleaved_harness_records_regime():
    x = torch.randn(64, 64)
    res = time_interleaved("mm", {"a": lambda: x @ x, "b": lambda: x + x}, device=torch.device("cpu"), rounds=3,
                           min_sample_s=0.002)
    for t in res:
        d = t.to_dict()
        assert d["minflt_per_call"] is not None and d["minflt_per_call"] >= 0
        assert len(d["minflt_per_sample"]) == 3
        assert d["regime"] in (WARM, FAULTING) and d["process"] == "in-process"


def test_harness_faults_per_call_count_every_call_it_made():
    # one call per sample: Timer.timeit(1) makes warm-up calls too, which must not inflate the per-call count
    res = time_interleaved("touch", {"a": _touch_fresh_pages}, device=torch.device("cpu"), rounds=2,
                           min_sample_s=1e-9)
    t = res[0]
    assert t.number == 1
    assert PAGES <= t.minflt_per_call < PAGES * 1.5 and t.regime == FAULTING


def test_fresh_process_timeit_warm_and_faulting():
    warm = time_in_fresh_process("x = [0]", "x[0] += 1", number=1000, repeat=3)
    assert len(warm.per_call_s) == 3 and warm.number == 1000 and all(v > 0 for v in warm.per_call_s)
    assert warm.regime == WARM
    setup = f"import mmap\ndef touch():\n    m = mmap.mmap(-1, {PAGES} * mmap.PAGESIZE)\n" \
            f"    for i in range({PAGES}):\n        m[i * mmap.PAGESIZE] = 1\n    m.close()\n"
    cold, again = time_snippets_in_fresh_process(setup, ["touch()", "touch()"], number=5, repeat=2)
    assert cold.regime == FAULTING and cold.mean_minflt_per_call >= PAGES and again.regime == FAULTING
    assert cold.to_dict()["process"] == "fresh"


def test_fresh_process_autorange_and_env_and_errors():
    auto = time_in_fresh_process("", "pass", repeat=2, malloc_env={"MALLOC_TOP_PAD_": "1048576"})
    assert auto.number >= 1 and auto.malloc_env == {"MALLOC_TOP_PAD_": "1048576"}
    with pytest.raises(ValueError, match="MALLOC"):
        time_in_fresh_process("", "pass", malloc_env={"LD_PRELOAD": "x"})
    with pytest.raises(FreshProcessError, match="exited 1"):
        time_in_fresh_process("raise SystemExit(1)", "pass")
    with pytest.raises(FreshProcessError, match="timed out"):
        time_in_fresh_process("import time\ntime.sleep(30)", "pass", timeout_s=1)
