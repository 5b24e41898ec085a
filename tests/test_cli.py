"""End to end: `reportgen run` as a user runs it, on tiny sizes."""

import json
import sys
import re

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.render.html import extract_embedded, render_html

TINY = """
name: tiny
cases:
  - name: linear_vs_conv1d
    description: "tiny <script>alert(1)</script> & co"
    devices: [cpu]
    params: {batch: 2, length: 16, growth_depths: [1, 2, 4], growth_in_features: [8, 16], growth_rows: 16}
    timing: {rounds: 3, min_sample_s: 0.001}
  - name: boom
    kind: _test_boom
    params: {message: "</script><img src=x onerror=alert(1)>"}
"""


@pytest.fixture
def tiny_run(tmp_path):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY)
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path / "out"),
                                       "--run-id", "r1"])
    return result, tmp_path / "out" / "r1"


def test_failing_case_recorded_as_error_and_run_continues(tiny_run):
    result, run_dir = tiny_run
    assert result.exit_code == 1, result.output  # some case errored
    data = json.loads((run_dir / "results.json").read_text())
    status = {c["case"]: c["status"] for c in data["cases"]}
    assert status == {"linear_vs_conv1d": "ok", "boom": "error"}
    boom = next(c for c in data["cases"] if c["case"] == "boom")
    assert boom["reason"].startswith("RuntimeError: </script>")
    assert data["status"] == "complete" and data["schema_version"] == 2


def test_html_is_self_contained_escaped_and_embeds_results(tiny_run):
    _, run_dir = tiny_run
    page = (run_dir / "report.html").read_text()
    # no external resource: nothing loaded from another host (src), no stylesheet or script; the only links out
    # are the sources a reader may follow (claims, published code), plain <a> with rel="noreferrer"
    assert not re.search(r'src\s*=\s*["\']?(?:https?:)?//', page)
    for m in re.finditer(r'<([a-z]+)[^>]*\shref\s*=\s*["\']?(?:https?:)?//[^>]*>', page):
        assert m.group(1) == "a" and 'rel="noreferrer"' in m.group(0), m.group(0)
    assert "<link" not in page and not re.search(r"<script(?![^>]*application/json)", page)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img src=x" not in page
    assert page.count("<svg") >= 3
    assert extract_embedded(page) == json.loads((run_dir / "results.json").read_text())


def test_same_results_render_byte_identical_html(tiny_run):
    _, run_dir = tiny_run
    data = json.loads((run_dir / "results.json").read_text())
    assert render_html(data) == render_html(json.loads(json.dumps(data))) == (run_dir / "report.html").read_text()


def test_refuses_to_overwrite_an_earlier_run(tiny_run, tmp_path):
    _, run_dir = tiny_run
    before = (run_dir / "results.json").read_text()
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--out", str(run_dir.parent), "--run-id", "r1"])
    assert result.exit_code == 2 and "refusing to overwrite" in result.output
    assert (run_dir / "results.json").read_text() == before


@pytest.mark.parametrize("args, expected", [
    (["run", "--suite", "nonexistent"], "no such bundled suite"),
    (["run", "--suite", "quick", "--case", "nope"], "--case 'nope'"),
    (["run", "--device", "tpu"], "--device: 'tpu' is not a device"),
    (["run", "--framework", "mindspore"], "expected NAME=PATH"),
])
def test_bad_usage_is_one_line_exit_2(args, expected, tmp_path):
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output


def test_bad_suite_file_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [{name: linear_vs_conv1d, params: {nope: 1}}]")
    result = CliRunner().invoke(main, ["run", "--suite", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "params.nope" in lines[0]


def test_cuda_request_without_cuda_is_skipped_with_reason(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the skip path is for CPU-only machines")
    suite = tmp_path / "s.yaml"
    suite.write_text("cases: [{name: linear_vs_conv1d, devices: [cuda]}]")
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path), "--run-id", "c"])
    assert result.exit_code == 0, result.output
    case = json.loads((tmp_path / "c" / "results.json").read_text())["cases"][0]
    assert case["status"] == "skipped" and "CUDA not available" in case["reason"]


def test_list_shows_suites_and_cases():
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0
    assert "quick" in result.output and "linear_vs_conv1d" in result.output


@pytest.mark.slow
def test_quick_suite_end_to_end(tmp_path):
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--out", str(tmp_path), "--run-id", "q"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "q" / "results.json").read_text())
    assert data["cases"] and all(c["status"] in ("ok", "skipped") for c in data["cases"])
    page = (tmp_path / "q" / "report.html").read_text()
    assert extract_embedded(page) == data


def test_results_json_is_as_readable_as_the_reports(tiny_run):
    # results.json is written through a temporary file (atomic); it must not keep mkstemp's private 0600 mode
    _, out_dir = tiny_run
    mode = (out_dir / "results.json").stat().st_mode & 0o777
    assert mode == (out_dir / "report.html").stat().st_mode & 0o777 and mode & 0o044


def one_line_exit_2(result, *needles):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "Traceback" not in result.output and all(n in lines[0] for n in needles), lines[0]


def test_default_run_id_never_leaves_out_even_for_an_unsafe_suite_name(tmp_path):
    # load_suite refuses such a name; the run-id builder must still not follow one that got past it
    import dataclasses

    from reportgen.runner import new_run_id, run_suite
    from reportgen.suite import load_suite

    suite = tmp_path / "s.yaml"
    suite.write_text("cases: [{name: linear_vs_conv1d, devices: [cpu], timing: {enabled: false}, params: {batch: 2, "
                     "length: 4, growth_depths: [1], growth_in_features: [8], growth_rows: 4, backward: false}}]")
    spec = dataclasses.replace(load_suite(str(suite)), name="a/../../../escaped <script>")
    out = tmp_path / "out" / "deep"
    _, path = run_suite(spec, out, command=["test"])
    assert path.parent.parent == out and path.exists()
    assert not list(tmp_path.glob("escaped*")) and not list((tmp_path / "out").glob("escaped*"))
    assert "/" not in new_run_id("../..") and not new_run_id("..").split("-")[2].startswith(".")
    bad = tmp_path / "trav.yaml"
    bad.write_text('name: "a/../../../escaped_by_suite_name"\ncases: [{name: conv1d_semantics}]')
    result = CliRunner().invoke(main, ["run", "--suite", str(bad), "--out", str(out)])
    one_line_exit_2(result, str(bad), "key 'name'")
    assert not list(tmp_path.rglob("escaped_by_suite_name*"))


def _unwritable_outs(tmp_path):
    """Output directories that cannot be created or written: under a regular file (for anyone, root included)
    and, where permissions bind (not root), a read-only directory."""
    import os

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    outs = [blocker / "out"]
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        outs.append(ro)
    return outs


def test_unwritable_output_directory_is_one_line_naming_the_path(tmp_path):
    from pathlib import Path

    fixture = str(Path(__file__).parent / "fixtures" / "results_v1.json")
    suite = tmp_path / "s.yaml"
    suite.write_text("cases: [{name: linear_vs_conv1d, devices: [cpu], timing: {enabled: false}}]")
    for out in _unwritable_outs(tmp_path):
        one_line_exit_2(CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(out),
                                                  "--run-id", "r"]), str(out / "r"), "cannot create")
        one_line_exit_2(CliRunner().invoke(main, ["render", fixture, "--out", str(out), "--force"]),
                        str(out / "report.html"), "cannot write")
        one_line_exit_2(CliRunner().invoke(main, ["compare", fixture, fixture, "--out", str(out)]),
                        str(out / "compare.html"), "cannot write")


def test_bad_inputs_that_used_to_trace_back_are_one_line(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_bytes(b"\xff\xfe")
    one_line_exit_2(CliRunner().invoke(main, ["run", "--suite", str(bad), "--out", str(tmp_path)]), str(bad),
                    "not UTF-8")
    one_line_exit_2(CliRunner().invoke(main, ["run", "--suite", str(tmp_path), "--out", str(tmp_path)]),
                    "is a directory")
    one_line_exit_2(CliRunner().invoke(main, ["render", str(tmp_path)]), str(tmp_path), "is a directory")
    one_line_exit_2(CliRunner().invoke(main, ["run", "--dtype", "float8", "--out", str(tmp_path)]), "'float8'")


def test_missing_framework_interpreter_is_one_line_exit_2(tmp_path):
    missing = str(tmp_path / "nonexist" / "python")
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--framework", f"mindspore={missing}",
                                       "--out", str(tmp_path)])
    one_line_exit_2(result, f"--framework mindspore={missing}", "no such file")
    assert not list(tmp_path.iterdir())  # refused before any run directory was made


def test_relative_framework_interpreter_is_made_absolute(tmp_path, monkeypatch):
    # the probe runs in a temporary directory, where "ms/bin/python" would not resolve
    from reportgen.cli import _interpreter
    exe = tmp_path / "ms" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")  # a python: the interpreter is run once
    exe.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert _interpreter("mindspore", "ms/bin/python") == str(exe.resolve())


def test_ctrl_c_before_the_first_result_file_exits_130_without_traceback(tmp_path, monkeypatch):
    from reportgen import runner

    def interrupted() -> dict:
        raise KeyboardInterrupt
    monkeypatch.setattr(runner, "collect_environment", interrupted)
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--case", "optimizer_drift", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 130 and "interrupted before the run started" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("run_id", ["../up", "a\\b", "..", ""])
def test_run_id_that_is_not_a_plain_directory_name_is_refused_before_anything_runs(tmp_path, run_id):
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--out", str(tmp_path), "--run-id", run_id])
    one_line_exit_2(result, f"--run-id {run_id!r}: must be a plain directory name")
    assert not list(tmp_path.iterdir())
