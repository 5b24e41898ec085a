"""applied_settings: applies what it is given and restores the previous state exactly, also after exceptions.

Exactness is checked two ways: capture_settings() (every getter, including the "unavailable: ..." strings of a
mixed legacy/new TF32 state) and precision_state() (each fp32_precision node's value *and* whether it inherits from
its parent, which no single getter shows).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from reportgen.measure.settings import APPLIERS, applied_settings, capture_settings, precision_state


def _state() -> tuple[dict, dict]:
    return capture_settings(), precision_state()


@pytest.fixture(autouse=True)
def _isolate():
    """Whatever a test does to torch's global settings, later tests must not see it."""
    before = _state()
    with applied_settings():  # its exit restores the snapshot taken here
        yield
    assert _state() == before


COMBOS = [
    {"num_threads": 1},
    {"deterministic_algorithms": True},
    {"deterministic_algorithms": True, "deterministic_warn_only": True},
    {"cudnn_benchmark": True, "cudnn_deterministic": True, "cudnn_enabled": False},
    {"matmul_tf32": True},
    {"matmul_tf32": False},
    {"float32_matmul_precision": "medium"},
    {"mkldnn_enabled": False, "mkldnn_deterministic": True},
    {"mkldnn_matmul_fp32_precision": "bf16", "mkldnn_conv_fp32_precision": "tf32"},
    {"fill_uninitialized_memory": False},
]


@pytest.mark.parametrize("settings", COMBOS, ids=lambda s: ",".join(s))
def test_restores_exactly_after_normal_exit_and_after_an_exception(settings):
    before = _state()
    with applied_settings(**settings):
        pass
    assert _state() == before
    with pytest.raises(KeyError):
        with applied_settings(**settings):
            raise KeyError("inside the block")
    assert _state() == before


def test_settings_are_applied_inside_and_reported():
    with applied_settings(num_threads=1, deterministic_algorithms=True, cudnn_benchmark=True,
                          matmul_tf32=True, conv_tf32=False) as inside:
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert inside == capture_settings()  # what the block ran under, as recorded
        # matmul_tf32 keeps both API families in agreement; conv_tf32 leaves the legacy cuDNN flag alone (its
        # setter would end the conv leaf's inheritance for good), so that legacy getter reports the mix.
        assert inside["cuda.matmul.allow_tf32"] is True
        assert str(inside["cudnn.allow_tf32"]).startswith("unavailable: RuntimeError")


def test_a_setting_that_does_change_state_is_detected_by_the_checks():
    """The equality checks above can fail: a bare assignment outside the manager changes both views."""
    before = _state()
    with applied_settings():
        torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
        assert capture_settings() != before[0]
        torch.backends.mkldnn.conv.fp32_precision = "tf32"
        assert precision_state() != before[1]
    assert _state() == before  # and the manager undid even changes it did not make


def test_mixed_legacy_and_new_tf32_state_is_restored_including_its_errors():
    # New API on the matmul leaf with the legacy matmul precision left at "highest": the legacy getters raise.
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    before = _state()
    assert str(before[0]["cuda.matmul.allow_tf32"]).startswith("unavailable: RuntimeError")
    for settings in ({"matmul_tf32": False}, {"float32_matmul_precision": "high"}, {"conv_tf32": True}):
        with pytest.raises(RuntimeError):
            with applied_settings(**settings):
                raise RuntimeError("boom")
        assert _state() == before


def test_inheriting_nodes_keep_inheriting():
    # A child that says "none" follows its parent; restoring must not pin it to the value it showed.
    torch.backends.mkldnn.fp32_precision = "bf16"
    assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"  # inherited
    with applied_settings(mkldnn_matmul_fp32_precision="ieee"):
        assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
    torch.backends.mkldnn.fp32_precision = "tf32"
    assert torch.backends.mkldnn.matmul.fp32_precision == "tf32"  # still follows the parent


def test_conv_tf32_in_a_fresh_process_keeps_the_inheriting_default():
    """torch's initial cuda/conv reads "tf32" but follows its parent; no setter recreates that, so it must survive."""
    code = textwrap.dedent("""
        import torch
        from reportgen.measure.settings import applied_settings, capture_settings, precision_state
        c0, p0 = capture_settings(), precision_state()
        for on in (False, True):
            with applied_settings(conv_tf32=on, matmul_tf32=not on):
                assert torch.backends.cudnn.conv.fp32_precision == ("tf32" if on else "ieee")
                assert torch.backends.cuda.matmul.fp32_precision == ("ieee" if on else "tf32")
        c1, p1 = capture_settings(), precision_state()
        torch.backends.cudnn.fp32_precision = "ieee"  # the default conv leaf still follows its parent
        print(c0 == c1, p0 == p1, p1["cuda/conv"], torch.backends.cudnn.conv.fp32_precision)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "('tf32',", "True)", "ieee"]


def test_unknown_names_and_wrong_types_are_rejected_before_anything_changes():
    before = _state()
    with pytest.raises(TypeError, match="unknown setting 'tf32'"):
        with applied_settings(num_threads=1, tf32=True):
            pass
    with pytest.raises(TypeError, match="num_threads must be int"):
        with applied_settings(num_threads="1"):
            pass
    assert _state() == before


def test_none_means_leave_alone():
    before = _state()
    with applied_settings(**{name: None for name in APPLIERS}) as inside:
        assert inside == before[0]


def test_cuda_settings_now_reads_what_applied_settings_set():
    from reportgen.measure.settings import cuda_settings_now
    before = cuda_settings_now()
    with applied_settings(cudnn_deterministic=True, conv_tf32=not before["conv_tf32"],
                          matmul_tf32=not before["matmul_tf32"], deterministic_algorithms=True):
        inside = cuda_settings_now()
        # applying what it read, in another block, changes nothing: it is a faithful description
        with applied_settings(**inside) as again:
            assert cuda_settings_now() == inside and again == capture_settings()
    assert inside["cudnn_deterministic"] and inside["deterministic_algorithms"]
    assert inside["conv_tf32"] != before["conv_tf32"] and inside["matmul_tf32"] != before["matmul_tf32"]
    assert cuda_settings_now() == before


def test_reduced_precision_paths_follow_the_precision_tree():
    from reportgen.measure.settings import reduced_precision_paths
    cpu = torch.device("cpu")
    plain = {"fp32_precision": "none", "mkldnn.fp32_precision": "none", "mkldnn.matmul.fp32_precision": "none",
             "mkldnn.conv.fp32_precision": "none"}
    assert reduced_precision_paths(plain, cpu, torch.float32) == []
    assert reduced_precision_paths({**plain, "mkldnn.conv.fp32_precision": "bf16"}, cpu, torch.float32) == [
        "oneDNN conv BF16"]
    # a backend-wide or global value reaches leaves that say "none"; an explicit leaf wins
    assert reduced_precision_paths({**plain, "mkldnn.fp32_precision": "tf32", "mkldnn.conv.fp32_precision": "ieee"},
                                   cpu, torch.float32) == ["oneDNN matmul TF32"]
    assert reduced_precision_paths({**plain, "fp32_precision": "bf16"}, cpu, torch.float32) == [
        "oneDNN matmul BF16", "oneDNN conv BF16"]
    # only float32 work takes these paths
    assert reduced_precision_paths({**plain, "fp32_precision": "bf16"}, cpu, torch.float64) == []
    with applied_settings(mkldnn_matmul_fp32_precision="tf32") as now:
        assert reduced_precision_paths(now, cpu, torch.float32) == ["oneDNN matmul TF32"]
