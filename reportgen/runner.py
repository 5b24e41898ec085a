"""Runs a suite: applies the per-case setup, isolates failures, reports progress, writes results after each case.

A case that raises is recorded as ``error`` with its message and the run goes on; an interrupted run leaves a
valid results.json (status ``interrupted``) holding every case that finished.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import secrets
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from reportgen import __version__
from reportgen import cases as registry
from reportgen.cases import CaseContext, CaseSkipped
from reportgen.errors import UsageError
from reportgen.measure.environment import collect_environment, redact
from reportgen.measure.settings import applied_settings
from reportgen.results import ERROR, OK, SKIPPED, CaseResult, RunResult, jsonable, write_json_atomic
from reportgen.suite import CaseSpec, SuiteSpec
from reportgen.writer import writer_info

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
           "bfloat16": torch.bfloat16}
Progress = Callable[[str], None]
#: CaseOutput.extra key by which a case that returned normally says it compared nothing (the result is skipped).
SKIPPED_REASON = "skipped_reason"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_run_id(suite_name: str) -> str:
    """"<time stamp>-<suite name>-<random>", the name reduced to a safe charset: load_suite validates an explicit
    suite name, but the name may also come from the file's stem or a caller that built the SuiteSpec itself, and
    a "/" or ".." in it would put the run directory outside --out."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", suite_name).strip(".-")[:64] or "suite"
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def check_run_id(run_id: str, label: str = "run id") -> None:
    """UsageError unless ``run_id`` is a plain directory name (it is joined to --out)."""
    if not run_id or run_id in (".", "..") or "/" in run_id or "\\" in run_id or "\0" in run_id:
        raise UsageError(f"{label} {run_id!r}: must be a plain directory name")


def _run_dir(out_dir: Path, run_id: str) -> Path:
    """OUT/<run_id>, created now; UsageError (naming the path) when it exists or cannot be created."""
    check_run_id(run_id)
    run_dir = out_dir / run_id
    exists = UsageError(f"{run_dir}: already exists; refusing to overwrite an earlier run (choose another "
                        "--run-id or --out)")
    if run_dir.exists():
        raise exists
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError:  # created between the check and here: still never reuse it
        raise exists from None
    except OSError as exc:  # read-only, permission denied, a parent that is a file
        raise UsageError(f"{run_dir}: cannot create the run directory: {exc.strerror or exc}") from None
    return run_dir


def resolve_device(spec: str) -> tuple[torch.device | None, str]:
    """('cuda:1' -> device, '') or (None, reason) when it cannot run here."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu"), ""
    if not torch.cuda.is_available():
        why = "torch built without CUDA" if torch.version.cuda is None else "no CUDA device visible"
        return None, f"CUDA not available ({why})"
    dev = torch.device(spec)
    if dev.index is None:  # "cuda" is the current device: name it, so results and child processes say which
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.index >= torch.cuda.device_count():
        return None, f"{spec}: only {torch.cuda.device_count()} CUDA device(s)"
    return dev, ""


@dataclass(frozen=True)
class Job:
    spec: CaseSpec
    device_spec: str
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.spec.name}/{self.device_spec}/{self.dtype}"


def _device_specs(spec: str, local_only: bool = False) -> list[str]:
    """'all' as every visible CUDA device (the CPU where there is none); ``local_only`` (a rank of a distributed
    launch, which owns one device) makes 'all' this process's current device. Anything else: one device."""
    if spec != "all":
        return [_device_spec(spec)]
    if not torch.cuda.is_available():
        return ["cpu"]
    if local_only:
        return [f"cuda:{torch.cuda.current_device()}"]
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def _device_spec(spec: str) -> str:
    """'auto' and 'cuda' as the device that will run ('cpu', 'cuda:0'); a device that cannot run stays as named
    and is skipped with its reason by :func:`resolve_device`."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and torch.cuda.is_available():
        spec = f"cuda:{torch.cuda.current_device()}"
    return spec


def plan(suite: SuiteSpec, *, local_only: bool = False) -> list[Job]:
    # Devices are resolved here so result ids name the device that really ran; duplicates (auto + cpu, cuda +
    # cuda:0, all + cuda:1) collapse. With 'all', each case runs on every device in turn (device-major order
    # within a case), one result per device.
    jobs: dict[str, Job] = {}
    for c in suite.cases:
        for d in c.devices:
            for dev in _device_specs(d, local_only):
                for t in c.dtypes:
                    job = Job(c, dev, t)
                    jobs.setdefault(job.id, job)
    return list(jobs.values())


def _error_message(exc: BaseException) -> str:
    # The message plus where it was raised (file:line), not a whole traceback: it goes into a public report.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact(f"{type(exc).__name__}: {text}{where}")


def _current_device(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Make ``device`` the current CUDA device for the case: torch.utils.benchmark's Timer synchronises the
    *current* device, so timing on cuda:1 while cuda:0 is current would measure kernel launches, not kernels."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def run_job(job: Job, frameworks: dict[str, str], progress: Progress, *, robustness_run: bool = False) -> CaseResult:
    spec = job.spec
    info = registry.get(spec.kind)
    assert info is not None  # validated when the suite was loaded
    result = CaseResult(id=job.id, case=spec.name, kind=spec.kind, description=spec.description,
                        device=job.device_spec, dtype=job.dtype, params=jsonable(spec.params), seed=spec.seed,
                        status=OK, started=now())
    t0 = time.perf_counter()
    device, why = resolve_device(job.device_spec)
    if device is None:
        result.status, result.reason, result.elapsed_s = SKIPPED, why, 0.0
        return result
    result.device = str(device)
    torch.manual_seed(spec.seed)  # for any case code that still draws from the global generator
    ctx = CaseContext(name=spec.name, params=dict(spec.params), device=device, dtype=_DTYPES[job.dtype],
                      seed=spec.seed, timing_rounds=spec.timing.rounds, timing_min_sample_s=spec.timing.min_sample_s,
                      timing_enabled=spec.timing.enabled, bound_factor=spec.tolerances.bound_factor,
                      noise_iqr=spec.tolerances.noise_iqr, frameworks=dict(frameworks), facts=info.facts,
                      progress=lambda msg: progress(f"  {job.id}: {msg} ({time.perf_counter() - t0:.1f} s)"),
                      robustness_run=robustness_run)
    try:
        # The case's own settings (suite YAML) for its duration only; the state before is restored exactly.
        with applied_settings(**spec.settings) as settings, _current_device(device):
            result.settings = settings
            out = info.run(ctx)
            for key, value in out.facts.items():  # also what a case wrote into .facts directly
                info.facts.check(key, value, spec.kind)
    except CaseSkipped as exc:
        result.status, result.reason = SKIPPED, redact(str(exc))
    except Exception as exc:  # isolate: one broken case must not end the run
        result.status, result.reason = ERROR, _error_message(exc)
    else:
        for name in ("comparisons", "tables", "plots", "timings", "facts", "notes", "extra"):
            setattr(result, name, getattr(out, name))
        # A case that ran but compared nothing it exists for (the cross-framework case with no framework
        # configured) says why in extra[SKIPPED_REASON]: skipped, with what it did measure kept, not a green "ok".
        reason = result.extra.pop(SKIPPED_REASON, None)
        if reason:
            result.status, result.reason = SKIPPED, redact(str(reason))
    result.elapsed_s = round(time.perf_counter() - t0, 3)
    return result


def run_robustness(job: Job, frameworks: dict[str, str], progress: Progress) -> dict[int, CaseResult]:
    """The job rerun with seeds seed+1 .. seed+N-1 (N = the case's ``robustness.seeds``), timing off and
    ``ctx.robustness_run`` set; stops starting new seeds once ``robustness.budget_s`` is spent. seed -> result."""
    spec = job.spec
    extra: dict[int, CaseResult] = {}
    t0 = time.perf_counter()
    for seed in range(spec.seed + 1, spec.seed + spec.robustness.seeds):
        if time.perf_counter() - t0 >= spec.robustness.budget_s:
            progress(f"  {job.id}: robustness budget ({spec.robustness.budget_s:g} s) spent after "
                     f"{len(extra) + 1} of {spec.robustness.seeds} seeds")
            break
        rerun = Job(replace(spec, seed=seed, timing=replace(spec.timing, enabled=False)), job.device_spec, job.dtype)
        extra[seed] = run_job(rerun, frameworks, lambda msg: None, robustness_run=True)
    return extra


def _evaluate_claims(suite: SuiteSpec, run: RunResult,
                     robustness: dict[str, dict[int, list[CaseResult]]] | None = None) -> None:
    try:
        from reportgen import claims
    except ImportError:
        return
    run.claims = claims.evaluate(suite, run.cases, robustness=robustness)


class ResultsWriteError(UsageError):
    """results.json could not be written (disk full, quota, file size limit): one line, exit 2, no traceback."""


def _save(path: Path, run: RunResult) -> None:
    """Write the archive with this process as its writer; ResultsWriteError (naming the path and what is kept)
    when the file system refuses. The write is atomic, so what was written before stays valid JSON."""
    run.writer = writer_info(now())
    try:
        write_json_atomic(path, run.to_dict())
    except OSError as exc:
        kept = "nothing was kept" if not path.exists() else "its last complete version is kept"
        raise ResultsWriteError(f"{path}: cannot write results: {exc.strerror or exc}; {kept}") from None


def run_suite(suite: SuiteSpec, out_dir: Path, *, command: list[str], frameworks: dict[str, str] | None = None,
              run_id: str | None = None, progress: Progress = lambda msg: None, dir_name: str | None = None,
              launch: dict[str, Any] | None = None) -> tuple[RunResult, Path]:
    """Run every job of ``suite`` into ``out_dir/<run_id>/results.json``; never overwrites an earlier run.

    One rank of a distributed launch passes ``dir_name`` (its own directory, "rank-<r>", so ranks never share
    one) and ``launch`` (facts of the process group, e.g. its backend, added to the environment's launch
    section); 'all' devices then mean the rank's own device.

    Ctrl-C (or SIGTERM, which the CLI turns into KeyboardInterrupt) ends the run early: the cases that finished
    are kept, with ``run.status == "interrupted"``. A write that fails (disk full) raises ResultsWriteError after
    one last attempt to mark the archive ``interrupted``; a reader also shows an archive whose writer is gone as
    interrupted (reportgen.writer)."""
    run_id = run_id or new_run_id(suite.name)
    path = _run_dir(out_dir, dir_name or run_id) / "results.json"
    frameworks = {**suite.frameworks, **(frameworks or {})}
    environment = collect_environment()
    if launch is not None and isinstance(environment.get("launch"), dict):
        environment["launch"].update(launch)
    run = RunResult(run_id=run_id, started=now(), command=[redact(a) for a in command], suite=suite.to_dict(),
                    environment=environment, tool_version=__version__)
    run.suite["frameworks"] = {k: redact(v) for k, v in frameworks.items()}
    _save(path, run)
    jobs = plan(suite, local_only=launch is not None)
    # case name -> seed -> that seed's results of the case (every device x dtype); only facts are read from them
    robustness: dict[str, dict[int, list[CaseResult]]] = {}
    try:
        for i, job in enumerate(jobs, start=1):
            progress(f"[{i}/{len(jobs)}] {job.id} ...")
            result = run_job(job, frameworks, progress)
            run.cases.append(result)
            if job.spec.robustness.seeds > 1 and result.status == OK and job.spec.claims:
                t_rob = time.perf_counter()
                extra = run_robustness(job, frameworks, progress)
                for seed, res in extra.items():
                    robustness.setdefault(job.spec.name, {}).setdefault(seed, []).append(res)
                took = time.perf_counter() - t_rob
                failed = [f"seed {k} {r.status}: {r.reason}" for k, r in extra.items() if r.status != OK]
                result.notes.append(f"Robustness: the claims were also judged on seeds {job.spec.seed + 1}-"
                                    f"{job.spec.seed + len(extra)} ({len(extra)} reruns with timing off, "
                                    f"{took:.1f} s" + (f", {len(failed)} not ok, first: {failed[0][:200]}"
                                                       if failed else "") + ").")
                progress(f"  {job.id}: robustness, {len(extra)} more seeds ({took:.1f} s)")
            _evaluate_claims(suite, run, robustness)
            _save(path, run)
            tail = f": {result.reason}" if result.reason else ""
            progress(f"[{i}/{len(jobs)}] {job.id} {result.status} ({result.elapsed_s:.1f} s){tail}")
    except KeyboardInterrupt:
        # Returned, not re-raised: the caller still knows where the partial archive is and can render it.
        run.status, run.finished = "interrupted", now()
        _evaluate_claims(suite, run, robustness)  # a result appended before its robustness reruns were cut short
        _save(path, run)
        return run, path
    except ResultsWriteError:
        run.status, run.finished = "interrupted", now()
        with contextlib.suppress(ResultsWriteError):  # may fit where the longer one did not; often it will not
            _save(path, run)
        raise
    run.status, run.finished = "complete", now()
    _save(path, run)
    return run, path
