"""Command line: a thin edge. Options become typed arguments; the work happens in runner/render/measure."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

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


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _frameworks(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--framework {v!r}: expected NAME=PATH_TO_PYTHON, e.g. mindspore=ms/bin/python")
        out[name] = path
    return out


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reportgen")
def main() -> None:
    """Reproducibility reports for PyTorch numerics."""


@main.command("run")
@click.option("--suite", "suite_name", default="default", show_default=True,
              help="Bundled suite name (see `reportgen list`) or path to a suite YAML file.")
@click.option("--device", "devices", multiple=True, metavar="cpu|cuda|cuda:N|auto",
              help="Run every case on this device (repeatable); default: each case's own devices.")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(DTYPES),
              help="Run every case in this dtype (repeatable); default: each case's own dtypes.")
@click.option("--case", "case_names", multiple=True, metavar="NAME", help="Run only this case (repeatable).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory under which the run directory <run-id>/ is created.")
@click.option("--seed", type=int, default=None, help="Override every case's seed.")
@click.option("--run-id", default=None, help="Name of the run directory (default: time stamp + suite + random).")
@click.option("--framework", "framework_opts", multiple=True, metavar="NAME=PYTHON",
              help="Interpreter of another framework's environment for cross-framework probes (repeatable).")
def run_cmd(suite_name: str, devices: tuple[str, ...], dtypes: tuple[str, ...], case_names: tuple[str, ...],
            out_dir: str, seed: int | None, run_id: str | None, framework_opts: tuple[str, ...]) -> None:
    """Run a suite; write results.json and report.html under OUT/<run-id>/."""
    from reportgen import runner, suite as suite_mod
    from reportgen.render.html import render_html

    for d in devices:
        check_device(d, "--device")
    if run_id is not None and (not run_id or "/" in run_id or run_id in (".", "..")):
        raise UsageError(f"--run-id {run_id!r}: must be a plain directory name")
    spec = suite_mod.load_suite(suite_name).select(case_names).override(devices, dtypes, seed)
    t0 = time.perf_counter()
    try:
        run, path = runner.run_suite(spec, Path(out_dir), command=["reportgen", *sys.argv[1:]],
                                     frameworks=_frameworks(framework_opts), run_id=run_id, progress=_progress)
    except KeyboardInterrupt:
        click.echo("interrupted: partial results.json kept (status 'interrupted')", err=True)
        sys.exit(130)
    html_path = path.with_name("report.html")
    html_path.write_text(render_html(run.to_dict()), encoding="utf-8")
    _summary(run.to_dict(), time.perf_counter() - t0)
    click.echo(f"results: {path}")
    click.echo(f"report:  {html_path}")
    sys.exit(1 if any(c.status == "error" for c in run.cases) else 0)


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
        click.echo("claims: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))


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
        click.echo(f"  {info.name:<24} {info.description.splitlines()[0]}")
