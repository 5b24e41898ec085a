"""Command line: a thin edge. Options become typed arguments; the work happens in runner/render/measure."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from reportgen.errors import UsageError
from reportgen.suite import DTYPES, check_device


class _Group(click.Group):
    """Turns UsageError (bad suite, bad option, bad input file) into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
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
    # Checked here, where the user typed it: a missing interpreter would otherwise only turn into a skipped
    # probe deep inside a report, and the run would exit 0 as if the framework had been compared.
    if os.sep in path:
        p = Path(path).expanduser()
        if not p.is_file() or not os.access(p, os.X_OK):
            why = "no such file" if not p.exists() else "not an executable file"
            raise UsageError(f"--framework {name}={path}: {why}; expected the python of {name}'s environment")
        return str(p.resolve())  # the probe runs in a temporary directory: a relative path would not resolve
    found = shutil.which(path)
    if found is None:
        raise UsageError(f"--framework {name}={path}: no such command on PATH")
    return found


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
@click.option("--format", "formats", default="html", show_default=True, metavar="html,pdf,md",
              help="Reports to write beside results.json (comma list, or none).")
@click.option("--page-size", default="A4", show_default=True, type=click.Choice(["A4", "Letter"]),
              help="PDF page size.")
@click.option("--dist-timeout", default=3600, show_default=True, type=click.IntRange(1, None),
              help="Under torchrun/srun: seconds a rank waits for the others (rendezvous and the final gather).")
def run_cmd(suite_name: str, devices: tuple[str, ...], dtypes: tuple[str, ...], case_names: tuple[str, ...],
            out_dir: str, seed: int | None, run_id: str | None, framework_opts: tuple[str, ...], formats: str,
            page_size: str, dist_timeout: int) -> None:
    """Run a suite; write results.json and the reports (default report.html) under OUT/<run-id>/."""
    from reportgen import runner, suite as suite_mod
    from reportgen.render.files import parse_formats, write_reports

    fmts = parse_formats(formats)
    if "pdf" in fmts:  # fail now, not after a run of several minutes
        from reportgen.render.pdf import check_available
        check_available()
    for d in devices:
        check_device(d, "--device")
    if run_id is not None:  # before the suite loads and the environment is captured
        runner.check_run_id(run_id, "--run-id")
    spec = suite_mod.load_suite(suite_name).select(case_names).override(devices, dtypes, seed)
    from reportgen import distributed
    launch = distributed.detect()
    if launch is not None:
        _run_rank(launch, spec, Path(out_dir), run_id, _frameworks(framework_opts), fmts, page_size, dist_timeout)
    t0 = time.perf_counter()
    try:
        run, path = runner.run_suite(spec, Path(out_dir), command=["reportgen", *sys.argv[1:]],
                                     frameworks=_frameworks(framework_opts), run_id=run_id, progress=_progress)
    except KeyboardInterrupt:  # before the first results.json was written (environment capture): nothing to keep
        click.echo("interrupted before the run started: no results written", err=True)
        sys.exit(130)
    if run.status == "interrupted":
        _interrupted(run.to_dict(), path, fmts, page_size)
    written = write_reports(run.to_dict(), path.parent, "report", fmts, force=False, page_size=page_size)
    _summary(run.to_dict(), time.perf_counter() - t0)
    click.echo(f"results: {path}")
    for p in written:
        click.echo(f"report:  {p}")
    sys.exit(1 if any(c.status == "error" for c in run.cases) else 0)


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
@click.option("--format", "formats", default="html", show_default=True, metavar="html,pdf,md",
              help="Reports to write beside results.json (comma list, or none).")
@click.option("--page-size", default="A4", show_default=True, type=click.Choice(["A4", "Letter"]),
              help="PDF page size.")
def check_cmd(file: str, devices: tuple[str, ...], dtypes: tuple[str, ...], out_dir: str, seed: int | None,
              run_id: str | None, timing: bool, formats: str, page_size: str) -> None:
    """Check your own pair: FILE.py defines a, b (callables taking the inputs) and inputs (a callable returning
    them); writes results.json and report.html as `run` does. Exit 0 when a and b are identical or within
    rounding, 1 when they are not (or the check errored), 2 on a bad file."""
    from reportgen import api, runner
    from reportgen.render.files import parse_formats, write_reports

    fmts = parse_formats(formats)
    if "pdf" in fmts:
        from reportgen.render.pdf import check_available
        check_available()
    for d in devices:
        check_device(d, "--device")
    if run_id is not None:
        runner.check_run_id(run_id, "--run-id")
    spec = api.suite_from_file(file, timing=timing).override(devices, dtypes, seed)
    t0 = time.perf_counter()
    try:
        run, path = runner.run_suite(spec, Path(out_dir), command=["reportgen", *sys.argv[1:]], run_id=run_id,
                                     progress=_progress)
    except KeyboardInterrupt:
        click.echo("interrupted before the run started: no results written", err=True)
        sys.exit(130)
    if run.status == "interrupted":
        _interrupted(run.to_dict(), path, fmts, page_size)
    written = write_reports(run.to_dict(), path.parent, "report", fmts, force=False, page_size=page_size)
    _summary(run.to_dict(), time.perf_counter() - t0)
    for c in run.cases:
        if c.status == "ok":
            worse = c.facts.get("worse_side")
            click.echo(f"  {c.id}: {c.facts.get('verdict')}" + (f" (farther from the reference: {worse})"
                                                                   if worse else ""))
    click.echo(f"results: {path}")
    for p in written:
        click.echo(f"report:  {p}")
    equivalent = all(c.status == "ok" and c.facts.get("verdict") in ("identical", "within rounding")
                     for c in run.cases if c.status != "skipped")
    sys.exit(0 if equivalent else 1)


def _interrupted(data: dict[str, Any], path: Path, fmts: list[str], page_size: str) -> NoReturn:
    """Ctrl-C: say where the partial archive is, render what is quick (not the PDF: a user who pressed Ctrl-C
    wants out), exit 130. A second Ctrl-C while rendering just leaves."""
    from reportgen.render.files import write_reports
    click.echo(f"interrupted: {len(data.get('cases', []))} finished result(s) kept in {path} "
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
    sys.exit(130)


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

    click.echo(f"\n{data['suite']['name']}: {len(data['cases'])} results in {wall_s:.1f} s")
    for c in data["cases"]:
        worst = worst_verdict([x["verdict"] for x in c["comparisons"]])
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

    env = collect_environment()
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
