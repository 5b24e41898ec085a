"""Interleaved timing with torch.utils.benchmark, raw samples kept, noise flagged rather than hidden.

On a shared machine the speed of *both* sides drifts with the load, so the sides are measured in alternating
rounds (A B, B A, A B, ...): a burst of load hits both, and the per-round ratio stays meaningful even when the
absolute times do not. Statistics come from ``torch.utils.benchmark.Measurement`` (median, IQR).

Every sample also counts the process's minor page faults and RSS growth (:mod:`reportgen.measure.regime`): a CPU
call that faults in fresh pages for its buffers each time runs an order of magnitude slower than the same call
with a warm allocator, so a timing names its allocator regime ("warm" / "faulting") beside its seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.benchmark import Measurement, Timer
from torch.utils.benchmark.utils.common import TaskSpec

from reportgen.measure.regime import Block, FaultCounter, classify


@dataclass
class TimingResult:
    """Raw per-call samples (seconds) of one statement on one side; statistics are derived, never stored alone."""

    name: str  # what was timed, e.g. "forward"
    label: str  # which side, e.g. "Linear"
    samples_s: list[float]
    number: int  # calls averaged into each sample
    device: str
    num_threads: int
    flops: float | None = None  # floating-point operations per call
    noise_iqr: float = 0.10
    # allocator regime: minor page faults and RSS growth per call, over the timed samples (None: not measured)
    minflt_per_call: float | None = None
    rss_growth_per_call_bytes: float | None = None
    minflt_per_sample: list[float] = field(default_factory=list)
    #: the median against the machine's measured limit (reportgen.measure.peak.fraction_of_peak), when the
    #: caller knows the op's FLOPs and bytes; None otherwise
    roofline: dict[str, Any] | None = None
    _measurement: Measurement | None = field(default=None, repr=False, compare=False)

    @property
    def measurement(self) -> Measurement:
        if self._measurement is None:  # lazy, as torch.utils.benchmark does
            spec = TaskSpec(stmt=self.name, setup="", label=self.name, sub_label=self.label,
                            num_threads=self.num_threads)
            self._measurement = Measurement(number_per_run=1, raw_times=list(self.samples_s), task_spec=spec)
        return self._measurement

    @property
    def median_s(self) -> float:
        return float(self.measurement.median)

    @property
    def iqr_s(self) -> float:
        return float(self.measurement.iqr)

    @property
    def noisy(self) -> bool:
        return self.median_s > 0 and self.iqr_s / self.median_s >= self.noise_iqr

    @property
    def regime(self) -> str | None:
        """"warm" / "faulting" (page faults per call above regime.FAULTING_MINFLT_PER_CALL), None if unmeasured."""
        return classify(self.minflt_per_call)

    @property
    def gflops(self) -> float | None:
        return self.flops / self.median_s / 1e9 if self.flops and self.median_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "samples_s": list(self.samples_s), "number": self.number,
                "device": self.device, "num_threads": self.num_threads, "flops": self.flops,
                "median_s": self.median_s, "iqr_s": self.iqr_s, "runs": len(self.samples_s),
                "iqr_over_median": self.iqr_s / self.median_s if self.median_s > 0 else None,
                "noisy": self.noisy, "noise_threshold": self.noise_iqr, "gflops": self.gflops,
                "minflt_per_call": self.minflt_per_call, "rss_growth_per_call_bytes": self.rss_growth_per_call_bytes,
                "minflt_per_sample": list(self.minflt_per_sample), "regime": self.regime, "process": "in-process",
                "roofline": self.roofline}


def time_interleaved(name: str, fns: dict[str, Callable[[], Any]], *, device: torch.device, rounds: int = 7,
                     min_sample_s: float = 0.02, flops: dict[str, float] | None = None,
                     noise_iqr: float = 0.10) -> list[TimingResult]:
    """Time each callable in ``fns`` in alternating rounds; one raw sample (mean of ``number`` calls) per round."""
    threads = torch.get_num_threads()
    timers = {label: Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, label=name, sub_label=label)
              for label, fn in fns.items()}
    numbers: dict[str, int] = {}
    for label, timer in timers.items():
        # Warm up (allocator, oneDNN primitive cache, cuDNN autotune) and calibrate calls per sample.
        timer.timeit(2)
        probe = timer.blocked_autorange(min_run_time=min_sample_s).median
        numbers[label] = max(1, int(min_sample_s / max(probe, 1e-9)))
    samples: dict[str, list[float]] = {label: [] for label in fns}
    faults = {label: FaultCounter() for label in fns}
    executed = {label: _calls_per_timeit(numbers[label]) for label in fns}
    order = list(fns)
    for r in range(rounds):
        for label in (order if r % 2 == 0 else order[::-1]):
            # the counters bracket Timer.timeit, which runs a few warm-up calls before the timed ones: faults are
            # divided by every call it made
            with Block(faults[label], executed[label]):
                m = timers[label].timeit(numbers[label])
            samples[label].append(float(m.times[0]))
    return [TimingResult(name=name, label=label, samples_s=samples[label], number=numbers[label],
                         device=str(device), num_threads=threads, flops=(flops or {}).get(label),
                         noise_iqr=noise_iqr, minflt_per_call=faults[label].minflt_per_call,
                         rss_growth_per_call_bytes=faults[label].rss_growth_per_call,
                         minflt_per_sample=list(faults[label].per_block)) for label in fns]


def _calls_per_timeit(number: int) -> int:
    """How many times ``Timer.timeit(number)`` calls its statement (``number`` plus its own warm-up calls),
    counted on a no-op statement rather than read from torch's source, which may change."""
    count = [0]

    def tick() -> None:
        count[0] += 1

    Timer(stmt="tick()", globals={"tick": tick}).timeit(number)
    return count[0]


def ratio_summary(numer: TimingResult | dict[str, Any], denom: TimingResult | dict[str, Any]) -> dict[str, Any]:
    """numer/denom time ratio: of medians, and per interleaved round (min/median/max) to expose drift."""
    a = np.asarray(numer.samples_s if isinstance(numer, TimingResult) else numer["samples_s"], dtype=float)
    b = np.asarray(denom.samples_s if isinstance(denom, TimingResult) else denom["samples_s"], dtype=float)
    n = min(len(a), len(b))
    per_round = a[:n] / b[:n]
    return {"ratio_of_medians": float(np.median(a) / np.median(b)),
            "per_round_min": float(per_round.min()), "per_round_median": float(np.median(per_round)),
            "per_round_max": float(per_round.max()), "rounds": int(n)}
