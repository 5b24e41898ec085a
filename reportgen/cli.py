"""Command line: a thin edge. Options become typed arguments; the work happens in runner/render/measure."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from reportgen.errors import UsageError
from reportgen.suite import DTYPES, check_device, check_seed


# Exit codes of a run ended by a signal: the shell's 128 + signal number, as the README documents.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's stop, `kill`), raised in the main thread like Ctrl-C's KeyboardInterrupt, so every
    path that keeps a partial archive on Ctrl-C keeps it on SIGTERM too."""


_terminated = False  # set by the SIGTERM handler: the exit code and the message say which signal ended the run


def _on_sigterm(signum: int, frame: Any) -> None:
    global _terminated
    _terminated = True
    raise _Terminated()


def _signal_exit_code() -> int:
    return EXIT_SIGTERM if _terminated else EXIT_SIGINT


#: set by :func:`entry` (the console script, ``python -m reportgen``): this process ends with the command, so a late
#: Ctrl-C may be ignored; an embedding caller (``main(...)`` in-process, tests) keeps its own SIGINT handling
_PROCESS_ENTRY = False


def entry() -> None:
    """The ``reportgen`` console script and ``python -m reportgen``: :func:`main` as the whole process."""
    global _PROCESS_ENTRY
    _PROCESS_ENTRY = True
    main()


def _signal_name() -> str:
    return "terminated (SIGTERM)" if _terminated else "interrupted"


class _Group(click.Group):
    """Turns UsageError (bad suite, bad option, bad input file) into one line on stderr and exit code 2, and an
    interrupt anywhere (Ctrl-C, SIGTERM: still importing torch, rendering the PDF) into one line and 130 / 143
    instead of click's "Aborted!" and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        global _terminated
        _terminated = False
        previous = None
        try:
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (an embedding caller): leave signals to it
            pass
        try:
            result = self._invoke(ctx)
        except KeyboardInterrupt:
            if previous is not None and _PROCESS_ENTRY:
                # Exiting with 130 / 143 now: a second Ctrl-C (or one still pending) while the exit unwinds must
                # not turn it into a bare KeyboardInterrupt at the top (exit -2, seen under load)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            click.echo(f"reportgen: {_signal_name()}", err=True)
            sys.exit(_signal_exit_code())
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if previous is not None and _PROCESS_ENTRY:
            # The work is done and written: a Ctrl-C from here to the interpreter's exit would otherwise escape as
            # a bare KeyboardInterrupt (exit -2 with a traceback) after everything succeeded.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return result

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            click.echo(f"reportgen: error: {exc}", err=True)
            sys.exit(UsageError.exit_code)
        except click.UsageError as exc:  # click's own (bad option value, INPUT is a directory): one line too
            if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                raise  # not an error: click prints the help
            hint = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            click.echo(f"reportgen: error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(UsageError.exit_code)


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _frameworks(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--framework {v!r}: expected NAME=PATH_TO_PYTHON, e.g. mindspore=ms/bin/python")
        out[name] = _interpreter(name, path)
    return out


def _interpreter(name: str, path: str) -> str:
    from reportgen.suite import check_interpreter
    return check_interpreter(name, path, f"--framework {name}={path}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reportgen")
def main() -> None:
    """Reproducibility reports for PyTorch numerics."""


@main.command("run")
@click.option("--suite", "suite_name", default="default", show_default=True,
              help="Bundled suite name (see `reportgen list`) or path to a suite YAML file.")
@click.option("--device", "devices", multiple=True, metavar="cpu|cuda|cuda:N|auto|all",
              help="Run every case on this device (repeatable; all: every visible GPU in turn, the CPU where there "
                   "is none, or a rank's own device under torchrun/srun); default: each case's own devices.")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(DTYPES),
              help="Run every case in this dtype (repeatable); default: each case's own dtypes.")
@click.option("--case", "case_names", multiple=True, metavar="NAME", help="Run only this case (repeatable).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory under which the run directory <run-id>/ is created.")
@click.option("--seed", type=int, default=None, help="Override every case's seed.")
@click.option("--run-id", default=None, help="Name of the run directory (default: time stamp + suite + random).")
@click.option("--framework", "framework_opts", multiple=True, metavar="NAME=PYTHON",
              help="Interpreter of another framework's environment for cross-framework probes (repeatable).")
@click.option("--format", "formats", default="auto", show_default=True, metavar="auto|html,pdf,md",
              help="Reports to write beside results.json (comma list, or none); auto: html,md and pdf when "
                   "WeasyPrint (the pdf extra) is installed.")
@click.option("--page-size", default="A4", show_default=True, type=click.Choice(["A4", "Letter"]),
              help="PDF page size.")
@click.option("--dist-timeout", default=3600, show_default=True, type=click.IntRange(1, None),
              help="Under torchrun/srun: seconds a rank waits for the others (rendezvous and the final gather).")
def run_cmd(suite_name: str, devices: tuple[str, ...], dtypes: tuple[str, ...], case_names: tuple[str, ...],
            out_dir: str, seed: int | None, run_id: str | None, framework_opts: tuple[str, ...], formats: str,
            page_size: str, dist_timeout: int) -> None:
    """Run a suite; write results.json and the reports (default: html, md, and pdf with WeasyPrint) under
    OUT/<run-id>/."""
    from reportgen import distributed, suite as suite_mod
    from reportgen.frameworks import for_run

    fmts = _run_formats(formats)
    _check_run_options(fmts, devices, seed, run_id)
    spec = suite_mod.load_suite(suite_name).select(case_names).override(devices, dtypes, seed)
    # --framework > the suite's frameworks: > those `reportgen frameworks install` recorded in the user config.
    frameworks, warnings = for_run(_frameworks(framework_opts), spec.frameworks)
    for w in warnings:
        click.echo(f"reportgen: warning: {w}", err=True)
    launch = distributed.detect()
    if launch is not None:  # one rank of torchrun/srun: its own device, then rank 0 gathers the fleet
        _run_rank(launch, spec, Path(out_dir), run_id, frameworks, fmts, page_size, dist_timeout)
    run = _run_and_report(spec, out_dir, run_id, frameworks, fmts, page_size)
    sys.exit(1 if any(c.status == "error" for c in run.cases) else 0)


def _check_run_options(fmts: list[str], devices: tuple[str, ...], seed: int | None, run_id: str | None) -> None:
    """What `run` and `check` refuse before anything loads or runs (exit 2); the pdf extra is checked by
    _run_formats."""
    from reportgen import runner

    for d in devices:
        check_device(d, "--device")
    if seed is not None:
        check_seed(seed, "--seed")
    if devices:
        _check_devices_exist(devices)
    if run_id is not None:  # before the suite loads and the environment is captured
        runner.check_run_id(run_id, "--run-id")


def _run_and_report(spec: Any, out_dir: str, run_id: str | None, frameworks: dict[str, str], fmts: list[str],
                    page_size: str) -> Any:
    """Run ``spec`` into OUT/<run-id>/, render the reports, print the summary; a signal keeps what finished."""
    from reportgen import runner
    from reportgen.render.files import write_reports

    t0 = time.perf_counter()
    try:
        run, path = runner.run_suite(spec, Path(out_dir), command=["reportgen", *sys.argv[1:]],
                                     frameworks=frameworks, run_id=run_id, progress=_progress)
    except KeyboardInterrupt:  # before the first results.json was written (environment capture): nothing to keep
        click.echo(f"{_signal_name()} before the run started: no results written", err=True)
        sys.exit(_signal_exit_code())
    if run.status == "interrupted":
        _interrupted(run.to_dict(), path, fmts, page_size)
    written = write_reports(run.to_dict(), path.parent, "report", fmts, force=False, page_size=page_size)
    _summary(run.to_dict(), time.perf_counter() - t0)
    click.echo(f"results: {path}")
    for p in written:
        click.echo(f"report:  {p}")
    return run


def _run_rank(launch: Any, spec: Any, out_dir: Path, run_id: str | None, frameworks: dict[str, str],
              fmts: list[str], page_size: str, timeout_s: int) -> NoReturn:
    """One rank of a torchrun/srun launch: the suite on this rank's device into OUT/<run-id>/rank-<r>/, then
    rank 0 writes fleet.json (every rank) and the fleet comparison of the ranks."""
    from reportgen import distributed, runner
    from reportgen.render.compare import compare_inputs, summary_text
    from reportgen.render.files import write_reports

    device = distributed.select_local_device(launch)
    width = len(str(launch.world_size - 1))

    def progress(msg: str) -> None:
        _progress(f"[rank {launch.rank}] {msg}")

    def run_one(parent: Path, rid: str, info: dict[str, Any]) -> dict[str, Any]:
        run, path = runner.run_suite(spec, parent, command=["reportgen", *sys.argv[1:]], frameworks=frameworks,
                                     run_id=rid, progress=progress, dir_name=f"rank-{launch.rank:0{width}d}",
                                     launch=info)
        progress(f"{device}: {len(run.cases)} results in {path}")
        return run.to_dict()

    code, path, archive = distributed.run_ranks(launch, out_dir, run_id, spec.name, run_one, timeout_s=timeout_s,
                                                progress=progress)
    if path is not None and archive is not None:
        inputs = [(f"{path}#rank{r.get('environment', {}).get('launch', {}).get('rank')}", r) for r in archive["runs"]]
        model = compare_inputs(inputs, fleet=True, failures=archive["failures"])
        written = write_reports(model, path.parent, "compare", fmts, page_size=page_size)
        click.echo(summary_text(model, report=", ".join(map(str, written)) or None), nl=False)
        click.echo(f"fleet archive: {path} ({len(archive['runs'])} of {launch.world_size} ranks)")
    sys.exit(code)


@main.command("check")
@click.argument("file", metavar="FILE.py", type=click.Path(dir_okay=False))
@click.option("--device", "devices", multiple=True, metavar="cpu|cuda|cuda:N|auto",
              help="Run on this device (repeatable; default cpu).")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(DTYPES),
              help="Run in this dtype (repeatable; default float32).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory under which the run directory <run-id>/ is created.")
@click.option("--seed", type=int, default=None, help="Seed of the inputs' generator (default 0).")
@click.option("--run-id", default=None, help="Name of the run directory (default: time stamp + file + random).")
@click.option("--timing/--no-timing", default=True, show_default=True, help="Time both sides (interleaved).")
@click.option("--format", "formats", default="auto", show_default=True, metavar="auto|html,pdf,md|none",
              help="Reports beside results.json: auto is html and md, plus pdf when WeasyPrint is installed.")
@click.option("--page-size", default="A4", show_default=True, type=click.Choice(["A4", "Letter"]),
              help="PDF page size.")
def check_cmd(file: str, devices: tuple[str, ...], dtypes: tuple[str, ...], out_dir: str, seed: int | None,
              run_id: str | None, timing: bool, formats: str, page_size: str) -> None:
    """Check your own pair: FILE.py defines a, b (callables taking the inputs) and inputs (a callable returning
    them); writes results.json and report.html as `run` does. Exit 0 when a and b are identical or within
    rounding, 1 when they are not (or the check errored), 2 on a bad file."""
    from reportgen import api

    fmts = _run_formats(formats)
    _check_run_options(fmts, devices, seed, run_id)
    spec = api.suite_from_file(file, timing=timing).override(devices, dtypes, seed)
    run = _run_and_report(spec, out_dir, run_id, {}, fmts, page_size)
    for c in run.cases:
        if c.status == "ok":
            worse = c.facts.get("worse_side")
            click.echo(f"  {c.id}: {c.facts.get('verdict')}" + (f" (farther from the reference: {worse})"
                                                                   if worse else ""))
    equivalent = all(c.status == "ok" and c.facts.get("verdict") in ("identical", "within rounding")
                     for c in run.cases if c.status != "skipped")
    sys.exit(0 if equivalent else 1)


def _check_devices_exist(devices: tuple[str, ...]) -> None:
    """--device values that cannot run here: a warning line each; UsageError when none of them can (a run that
    would skip every result and exit 0 measures nothing)."""
    from reportgen.runner import resolve_device

    # 'all' is every visible CUDA device, or the CPU: it always names one
    missing = {d: why for d in dict.fromkeys(devices) if d != "all" and (why := resolve_device(d)[1])}
    if missing and len(missing) == len(set(devices)):
        raise UsageError(f"--device {', '.join(missing)}: {'; '.join(dict.fromkeys(missing.values()))}: none of the "
                         "requested devices exists on this machine")
    for d, why in missing.items():
        click.echo(f"reportgen: warning: --device {d}: {why}; its results will be skipped", err=True)


def _run_formats(value: str) -> list[str]:
    """``run --format``: "auto" is html and md, and pdf where WeasyPrint imports (the README's first command
    installs the pdf extra, and its report should then be there without asking); an explicit pdf without
    WeasyPrint fails now, not after a run of several minutes."""
    from reportgen.render.files import parse_formats
    from reportgen.render.pdf import check_available

    if value.strip().lower() == "auto":
        try:
            check_available()
        except UsageError:
            return ["html", "md"]
        return ["html", "md", "pdf"]
    fmts = parse_formats(value, "--format")
    if "pdf" in fmts:
        check_available()
    return fmts


def _interrupted(data: dict[str, Any], path: Path, fmts: list[str], page_size: str) -> NoReturn:
    """Ctrl-C or SIGTERM: say where the partial archive is, render what is quick (not the PDF: a user who pressed
    Ctrl-C wants out), exit 130 (143 for SIGTERM). A second signal while rendering just leaves."""
    from reportgen.render.files import write_reports
    click.echo(f"{_signal_name()}: {len(data.get('cases', []))} finished result(s) kept in {path} "
               "(status 'interrupted')", err=True)
    quick = [f for f in fmts if f != "pdf"]
    try:
        written = write_reports(data, path.parent, "report", quick, force=False, page_size=page_size)
        for p in written:
            click.echo(f"report:  {p}", err=True)
    except KeyboardInterrupt:
        pass
    if "pdf" in fmts:
        click.echo(f"PDF not written: reportgen render {path} --format pdf", err=True)
    sys.exit(_signal_exit_code())


@main.command("render")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--format", "formats", default="html", show_default=True, metavar="html,pdf,md",
              help="Formats to write (comma list).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Output directory (default: INPUT's directory).")
@click.option("--page-size", default="A4", show_default=True, type=click.Choice(["A4", "Letter"]),
              help="PDF page size.")
@click.option("--force", is_flag=True, help="Overwrite existing report files.")
def render_cmd(input_path: str, formats: str, out_dir: str | None, page_size: str, force: bool) -> None:
    """Re-render an archived run: INPUT is a results.json or a report.html (its embedded results)."""
    from reportgen.render.files import load_input, parse_formats, write_reports

    fmts = parse_formats(formats)
    _not_a_fleet(input_path)
    data = load_input(input_path)
    out = Path(out_dir) if out_dir else Path(input_path).resolve().parent
    for p in write_reports(data, out, "report", fmts, force=force, page_size=page_size, source=input_path):
        click.echo(f"wrote {p}")


def _not_a_fleet(path: str) -> None:
    """A fleet.json holds many runs: say what to do with it instead of calling it malformed."""
    from reportgen.fleet import is_fleet_archive

    if Path(path).suffix != ".json" or not Path(path).is_file():
        return
    from reportgen.results import load_dict
    data = load_dict(Path(path))  # a bad file: the same one-line error load_input would give
    if is_fleet_archive(data):
        raise UsageError(f"{path}: a fleet archive of {len(data.get('runs') or [])} runs; compare them with "
                         f"'reportgen compare {path}', or render one rank's rank-<r>/results.json")


@main.command("compare")
@click.argument("inputs", nargs=-1, required=True, metavar="A B [C ...]", type=click.Path())
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Directory for compare.html/.md/.pdf.")
@click.option("--format", "formats", default="html", show_default=True, metavar="html,pdf,md",
              help="Comparison reports to write (comma list, or none for the terminal summary only).")
@click.option("--page-size", default="A4", show_default=True, type=click.Choice(["A4", "Letter"]),
              help="PDF page size.")
@click.option("--alpha", default=0.01, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Significance level of the timing test.")
@click.option("--min-effect", default=0.05, show_default=True, type=click.FloatRange(0, None),
              help="Smallest relative timing change reported as faster/slower (0.05 = 5 %).")
@click.option("--fail-on", default="", metavar="differs,slower,error",
              help="Exit 1 when a device of the fleet has one of these statuses (comma list); default: exit 0.")
@click.option("--force", is_flag=True, help="Overwrite existing compare.* files.")
def compare_cmd(inputs: tuple[str, ...], out_dir: str, formats: str, page_size: str, alpha: float,
                min_effect: float, fail_on: str, force: bool) -> None:
    """Compare runs (results.json, report.html, fleet.json, or directories of them): two side by side (X/A);
    three or more devices also as a fleet, one row per device: OK / DIFFERS / SLOWER / ERROR and why."""
    from reportgen.fleet import failed, load_inputs, parse_fail_on
    from reportgen.render.compare import compare_inputs, summary_text
    from reportgen.render.files import output_paths, parse_formats, write_reports

    policy = parse_fail_on(fail_on)
    fmts = parse_formats(formats)
    output_paths(Path(out_dir), "compare", fmts, force=force)  # refuse before the work, not after
    for p in inputs:
        if not Path(p).exists():
            raise UsageError(f"{p}: no such file or directory")
    from reportgen.fleet import members_of

    runs = load_inputs(list(inputs))
    if len(runs) < 2 and len(members_of(runs)) < 2:  # one --device all run of several GPUs is a fleet
        raise UsageError(f"compare: needs at least two inputs (A B [C ...]) or runs; {', '.join(inputs)} hold {len(runs)}")
    try:
        model = compare_inputs(runs, alpha=alpha, min_effect=min_effect)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        # load_input checked the shape compare reads; this is the net for a deeper field of the wrong type,
        # the same one write_reports spreads under rendering an archived input.
        detail = " ".join(str(exc).split())
        raise UsageError(f"{', '.join(inputs)}: cannot compare: malformed results ({type(exc).__name__}: "
                         f"{detail})") from None
    from reportgen.redact import redact_tree

    model = redact_tree(model)  # the input paths it names, too
    written = write_reports(model, Path(out_dir), "compare", fmts, force=force, page_size=page_size,
                            source=", ".join(inputs))
    click.echo(summary_text(model, report=", ".join(map(str, written)) or None), nl=False)
    if policy:
        bad = failed(model["fleet"], policy) if "fleet" in model else []
        if "fleet" not in model:
            click.echo("--fail-on: two runs are compared side by side; the fleet statuses need three devices or "
                       "more", err=True)
        sys.exit(1 if bad else 0)


@main.command("merge")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...", type=click.Path(exists=True))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The fleet archive to write (e.g. fleet.json).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def merge_cmd(inputs: tuple[str, ...], out_path: str, force: bool) -> None:
    """Join runs (results.json, report.html, fleet.json or directories of them, e.g. the rank-* directories of
    launches that never met) into one fleet archive that `reportgen compare` reads."""
    from reportgen.fleet import fleet_archive, load_inputs
    from reportgen.results import write_json_atomic

    out = Path(out_path)
    if out.exists() and not force:
        raise UsageError(f"{out}: already exists; refusing to overwrite it (use --force)")
    runs = load_inputs(list(inputs))
    ids = sorted({str(r.get("run_id")) for _, r in runs})
    archive = fleet_archive(ids[0] if len(ids) == 1 else f"merged-{len(runs)}-runs", [r for _, r in runs], [],
                            world_size=len(runs), backend=None)
    try:
        write_json_atomic(out, archive)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"wrote {out} ({len(runs)} runs)")


def _summary(data: dict[str, Any], wall_s: float) -> None:
    from reportgen.render.html import worst_verdict

    cases = data["cases"]
    measured = sum(c["status"] == "ok" for c in cases)
    skipped = sum(c["status"] == "skipped" for c in cases)
    errors = len(cases) - measured - skipped
    click.echo(f"\n{data['suite']['name']}: {len(cases)} results in {wall_s:.1f} s: {measured} measured something, "
               f"{skipped} skipped, {errors} error(s)")
    if cases and not measured:
        click.echo("nothing was measured: every result was skipped or failed (reasons below)")
    for c in data["cases"]:
        worst = worst_verdict([x["verdict"] for x in c["comparisons"]])
        if c["status"] != "ok" and c["reason"]:  # a skipped result's comparisons are not its verdict
            detail = c["reason"]
        else:
            detail = f"worst comparison: {worst}" if worst else (c["reason"] or "")
        click.echo(f"  {c['status']:<8} {c['id']:<45} {detail}")
    if data.get("claims"):
        counts: dict[str, int] = {}
        for cl in data["claims"]:
            counts[cl["verdict"]] = counts.get(cl["verdict"], 0) + 1
        click.echo("claims: " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())))


@main.command("env")
@click.option("--json", "as_json", is_flag=True, help="Print the capture as JSON.")
def env_cmd(as_json: bool) -> None:
    """Capture the environment alone (hardware, builds, libraries, numerics settings)."""
    from reportgen.measure.environment import collect_environment
    from reportgen.results import dumps

    from reportgen.redact import redact_tree

    env = redact_tree(collect_environment())
    if as_json:
        click.echo(dumps(env), nl=False)
        return
    for section, values in env.items():
        click.echo(f"[{section}]")
        for k, v in (values.items() if isinstance(values, dict) else [("", values)]):
            text = v if isinstance(v, str) else json.dumps(v)
            click.echo(f"  {k}: {text.splitlines()[0] if text else text}")


@main.command("list")
def list_cmd() -> None:
    """Bundled suites and registered cases."""
    from reportgen import cases
    from reportgen.suite import bundled_suites, load_suite

    click.echo("suites:")
    for name, path in bundled_suites().items():
        try:
            s = load_suite(str(path))
            click.echo(f"  {name:<12} {len(s.cases)} cases  {s.description.splitlines()[0] if s.description else ''}")
        except UsageError as exc:
            click.echo(f"  {name:<12} invalid: {exc}")
    click.echo("cases:")
    for info in cases.all_cases():
        if info.name.startswith("_"):
            continue
        origin = "" if info.origin == "reportgen" else f"  [{info.origin}]"
        click.echo(f"  {info.name:<24} {info.description.splitlines()[0]}{origin}")
    for err in cases.plugin_errors():
        click.echo(f"  plugin failed to load: {err}")


@main.group("frameworks")
def frameworks_group() -> None:
    """MindSpore and JAX environments for the cross-framework probes (installed apart from reportgen's)."""


_FW_NAMES = click.Choice(["mindspore", "jax", "all"])


@frameworks_group.command("install")
@click.argument("names", nargs=-1, metavar="[mindspore|jax|all]...", type=_FW_NAMES)
@click.option("--dir", "root", default=None, type=click.Path(file_okay=False),
              help="Where the environments go, one <name>/ each (default: $REPORTGEN_FRAMEWORKS_DIR, else "
                   "$XDG_DATA_HOME/reportgen/frameworks).")
@click.option("--python", "base_python", default=None, metavar="PYTHON",
              help="Interpreter the environments are made from (default: the one running reportgen).")
@click.option("--pip-arg", "pip_args", multiple=True, metavar="ARG",
              help="Extra argument for pip install, e.g. --pip-arg=--index-url=URL (repeatable).")
@click.option("--timeout", "timeout_s", default=1800.0, show_default=True, type=click.FloatRange(1, None),
              help="Seconds each step (venv, pip install, check) may take before it is killed.")
@click.option("--force", is_flag=True, help="Rebuild an environment that is already there.")
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
def frameworks_install_cmd(names: tuple[str, ...], root: str | None, base_python: str | None,
                           pip_args: tuple[str, ...], timeout_s: float, force: bool, dry_run: bool) -> None:
    """Make pinned environments (default: all) and record them so `reportgen run` uses them."""
    from reportgen import frameworks as fw_mod
    from reportgen.render.html import fmt_bytes

    base = sys.executable
    if base_python is not None:
        found = shutil.which(str(Path(base_python).expanduser()))  # a path or a command name (python3.11)
        if found is None:
            raise UsageError(f"--python {base_python}: no such interpreter (a path or a command on PATH)")
        base = str(Path(found).absolute())
    plans = [fw_mod.plan(fw, fw_mod.data_root(root), base_python=base, pip_args=pip_args)
             for fw in fw_mod.selected(names)]
    if dry_run:
        for p in plans:
            click.echo("\n".join(p.describe()))
        return
    failed = []
    for p in plans:
        try:
            done = fw_mod.install(p, timeout_s=timeout_s, force=force, progress=_progress)
        except KeyboardInterrupt:  # pip and its children are killed, the half-made environment removed
            click.echo(f"interrupted: {p.framework.name} not installed, nothing recorded for it", err=True)
            sys.exit(130)
        except fw_mod.InstallError as exc:
            click.echo(f"reportgen: error: {exc}", err=True)
            failed.append(p.framework.name)
            continue
        how = "kept" if done.reused else f"installed in {done.wall_s:.0f} s"
        click.echo(f"{done.name}: {how}, {fmt_bytes(done.disk_bytes)} on disk, "
                   f"{fw_mod.versions_text(done.versions)}; python {done.python}")
    if failed:
        click.echo(f"not installed: {', '.join(failed)} (`reportgen run` skips their probes)", err=True)
        sys.exit(1)
    click.echo(f"recorded in {fw_mod.config_path()}: `reportgen run` uses them without --framework")


@frameworks_group.command("list")
@click.option("--no-check", is_flag=True, help="Only show what is recorded; do not start the interpreters.")
def frameworks_list_cmd(no_check: bool) -> None:
    """What is recorded in the user config, and whether each interpreter still runs its framework."""
    from reportgen import frameworks as fw_mod

    click.echo("\n".join(fw_mod.status_lines(run_check=not no_check)))
