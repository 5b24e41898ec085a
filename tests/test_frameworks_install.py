"""`reportgen frameworks install|list` and how `run` finds what it recorded. No network: the install tests build a
tiny wheel here and let pip install it from a local folder (--no-index), through the real venv + pip steps."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen import frameworks as fw
from reportgen.cli import main
from reportgen.errors import UsageError

FAKE_CHECK = """\
import json, platform, reportgen_fakefw
print("some chatter first")
print(json.dumps({"reportgen-fakefw": reportgen_fakefw.__version__, "python": platform.python_version()}))
"""


def fake_framework(version: str = "1.0") -> fw.Framework:
    return fw.Framework("jax", "FakeFW", (f"reportgen-fakefw=={version}",), FAKE_CHECK, "a few KB")


def build_wheel(folder: Path, version: str = "1.0") -> Path:
    """A minimal valid wheel of a package `reportgen_fakefw` (METADATA, WHEEL, RECORD with hashes)."""
    dist = f"reportgen_fakefw-{version}.dist-info"
    files = {
        "reportgen_fakefw/__init__.py": f'__version__ = "{version}"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: reportgen-fakefw\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: reportgen-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"reportgen_fakefw-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


def offline(wheels: Path) -> list[str]:
    return [f"--pip-arg=--no-index", f"--pip-arg=--find-links={wheels}"]


# ------------------------------------------------------------------------------------------------ config

def test_locations_follow_env_and_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("REPORTGEN_CONFIG")
    monkeypatch.delenv("REPORTGEN_FRAMEWORKS_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert fw.config_path() == tmp_path / "cfg" / "reportgen" / "config.yaml"
    assert fw.data_root() == tmp_path / "data" / "reportgen" / "frameworks"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # invalid per the XDG spec: ignored
    assert fw.config_path() == Path.home() / ".config" / "reportgen" / "config.yaml"
    monkeypatch.setenv("REPORTGEN_CONFIG", str(tmp_path / "x.yaml"))
    monkeypatch.setenv("REPORTGEN_FRAMEWORKS_DIR", str(tmp_path / "envs"))
    assert fw.config_path() == tmp_path / "x.yaml" and fw.data_root() == tmp_path / "envs"
    assert fw.data_root(tmp_path / "other") == tmp_path / "other"


def test_record_round_trip_keeps_other_keys(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("theme: dark\nframeworks:\n  mine: /opt/mine/bin/python\n")
    fw.record(fw.Recorded("jax", "/envs/jax/bin/python", ("jax==0.10.2",), {"jax": "0.10.2"}), cfg)
    rec = fw.recorded(cfg)
    assert rec["jax"] == fw.Recorded("jax", "/envs/jax/bin/python", ("jax==0.10.2",), {"jax": "0.10.2"})
    assert rec["mine"].python == "/opt/mine/bin/python"  # a hand-written entry is kept and read
    assert "theme: dark" in cfg.read_text()


@pytest.mark.parametrize("text, key", [
    ("frameworks: [a, b]\n", "'frameworks'"),
    ("frameworks:\n  jax: {version: 1}\n", "'frameworks.jax.python'"),
    ("frameworks:\n  jax: {python: /p, requirements: x}\n", "'frameworks.jax'"),
    ("- a list\n", "top level"),
    ("frameworks: {jax: [\n", "not valid YAML"),
])
def test_malformed_config_names_file_and_key(tmp_path, text, key):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    with pytest.raises(UsageError) as err:
        fw.recorded(cfg)
    assert str(cfg) in str(err.value) and key in str(err.value)


def test_precedence_cli_over_suite_over_config(tmp_path):
    cfg = tmp_path / "config.yaml"
    py = Path(sys.executable)
    for name in ("mindspore", "jax", "extra"):
        fw.record(fw.Recorded(name, str(py)), cfg)
    out, warnings = fw.for_run({"mindspore": "/cli/python"}, {"jax": "/suite/python"}, path=cfg)
    # jax is left to the suite (the runner lays these over it), mindspore is the command line's
    assert out == {"mindspore": "/cli/python", "extra": str(py)} and warnings == []


def test_vanished_interpreter_warns_and_is_passed_on(tmp_path):
    cfg = tmp_path / "config.yaml"
    gone = tmp_path / "envs" / "mindspore" / "bin" / "python"
    fw.record(fw.Recorded("mindspore", str(gone)), cfg)
    out, warnings = fw.for_run({}, {}, path=cfg)
    assert out == {"mindspore": str(gone)}
    assert len(warnings) == 1 and str(gone) in warnings[0] and "reportgen frameworks install mindspore" in warnings[0]


def probe_row(data: dict, label: str) -> dict:
    rows = data["cases"][0]["extra"]["cross_framework"]["frameworks"]
    return next(r for r in rows if r["label"] == label)


def _fake_interpreter(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # answers the "is it a Python 3" check (-c ... prints 3) like a python, fails anything else (the probe)
    path.write_text('#!/bin/sh\nif [ "$1" = "-c" ]; then echo 3; exit 0; fi\nexit 3\n')
    path.chmod(0o755)
    return path


def test_run_uses_the_recorded_interpreter_without_framework_option(tmp_path):
    py = _fake_interpreter(tmp_path / "ms" / "bin" / "python")
    fw.record(fw.Recorded("mindspore", str(py)))  # REPORTGEN_CONFIG: the conftest's temporary config
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--case", "conv1d_cross_framework", "--out",
                                       str(tmp_path / "out"), "--run-id", "r", "--format", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert data["suite"]["frameworks"] == {"mindspore": str(py)}
    ms = probe_row(data, "MindSpore")
    assert ms["status"] == "crashed" and ms["python"] == str(py)  # it ran the recorded one, not "not configured"


def test_run_with_a_vanished_recorded_interpreter_says_so_in_one_line(tmp_path):
    gone = tmp_path / "ms" / "bin" / "python"
    fw.record(fw.Recorded("mindspore", str(gone)))
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--case", "conv1d_cross_framework", "--out",
                                       str(tmp_path / "out"), "--run-id", "r", "--format", "none"])
    assert result.exit_code == 0, result.output
    warning = [ln for ln in result.output.splitlines() if ln.startswith("reportgen: warning:")]
    assert len(warning) == 1 and str(gone) in warning[0], result.output
    assert "Traceback" not in result.output
    data = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert probe_row(data, "MindSpore")["status"] == "interpreter missing"


def test_an_environment_under_home_is_recorded_in_the_report_as_tilde(tmp_path, monkeypatch):
    home = tmp_path / "home" / "alice"
    monkeypatch.setenv("HOME", str(home))
    py = _fake_interpreter(home / ".local" / "share" / "reportgen" / "frameworks" / "mindspore" / "bin" / "python")
    fw.record(fw.Recorded("mindspore", str(py)))
    assert fw.for_run({}, {})[0] == {"mindspore": "~/.local/share/reportgen/frameworks/mindspore/bin/python"}
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--case", "conv1d_cross_framework", "--out",
                                       str(tmp_path / "out"), "--run-id", "r", "--format", "html"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "r" / "results.json").read_text()
    assert probe_row(json.loads(text), "MindSpore")["status"] == "crashed"  # found and started through the ~
    assert "alice" not in text and "alice" not in (tmp_path / "out" / "r" / "report.html").read_text()


def test_framework_option_keeps_a_venv_symlink_unresolved(tmp_path):
    # A venv's bin/python is a symlink to the base interpreter; resolving it (as --framework used to) loses the
    # environment: the probe then runs the base Python, where the framework is not installed.
    target = _fake_interpreter(tmp_path / "base" / "python3")
    link = tmp_path / "venv" / "bin" / "python"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    result = CliRunner().invoke(main, ["run", "--suite", "quick", "--case", "conv1d_cross_framework", "--out",
                                       str(tmp_path / "out"), "--run-id", "r", "--format", "none",
                                       "--framework", f"jax={link}"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert data["suite"]["frameworks"]["jax"] == str(link)


# ------------------------------------------------------------------------------------------------ install

def test_dry_run_plans_pinned_installs_and_changes_nothing(tmp_path):
    result = CliRunner().invoke(main, ["frameworks", "install", "all", "--dry-run", "--dir", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert "mindspore==2.10.0" in result.output and "numpy==1.26.4" in result.output  # numpy<2 for MindSpore
    assert "jax==0.10.2" in result.output and "jaxlib==0.10.2" in result.output
    assert f"-m venv {tmp_path / 'e' / 'mindspore'}" in result.output
    assert not (tmp_path / "e").exists() and not fw.config_path().exists()


def test_pins_are_exact_and_mindspore_numpy_below_2():
    for f in fw.FRAMEWORKS.values():
        assert all("==" in r for r in f.requirements), f.requirements
    ms_numpy = [r for r in fw.FRAMEWORKS["mindspore"].requirements if r.startswith("numpy==")]
    assert ms_numpy and int(ms_numpy[0].split("==")[1].split(".")[0]) < 2


def test_unknown_framework_is_a_usage_error():
    result = CliRunner().invoke(main, ["frameworks", "install", "tensorflow", "--dry-run"])
    assert result.exit_code == 2 and result.output.startswith("reportgen: error:")


def test_install_from_a_local_wheel_records_and_is_idempotent(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    build_wheel(wheels)
    monkeypatch.setitem(fw.FRAMEWORKS, "jax", fake_framework())
    root = tmp_path / "envs"
    args = ["frameworks", "install", "jax", "--dir", str(root), "--timeout", "300", *offline(wheels)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "[1/3] create the environment" in result.output and "Successfully installed reportgen-fakefw-1.0" \
        in result.output  # progress, pip's own lines included
    py = root / "jax" / "bin" / "python"
    rec = fw.recorded()["jax"]
    assert rec.python == str(py) and rec.versions["reportgen-fakefw"] == "1.0"
    assert rec.requirements == ("reportgen-fakefw==1.0",)
    assert fw.check(fake_framework(), str(py)).ok
    # The README's command may run twice: a working environment of the pinned versions is kept, not rebuilt.
    mtime = py.parent.parent.joinpath("pyvenv.cfg").stat().st_mtime_ns
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "already installed and working" in again.output, again.output
    assert py.parent.parent.joinpath("pyvenv.cfg").stat().st_mtime_ns == mtime
    # list: the recorded interpreter, checked by running it
    listed = CliRunner().invoke(main, ["frameworks", "list"])
    assert listed.exit_code == 0 and str(py) in listed.output and "works: reportgen-fakefw 1.0" in listed.output
    # a pin this reportgen no longer asks for: refused without --force, rebuilt with it
    build_wheel(wheels, "2.0")
    monkeypatch.setitem(fw.FRAMEWORKS, "jax", fake_framework("2.0"))
    stale = CliRunner().invoke(main, args)
    assert stale.exit_code == 2 and "--force" in stale.output, stale.output
    forced = CliRunner().invoke(main, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert fw.recorded()["jax"].versions["reportgen-fakefw"] == "2.0"


def test_failed_install_removes_the_environment_and_records_nothing(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    build_wheel(wheels)  # 1.0 only
    monkeypatch.setitem(fw.FRAMEWORKS, "jax", fake_framework("9.9"))
    root = tmp_path / "envs"
    result = CliRunner().invoke(main, ["frameworks", "install", "jax", "--dir", str(root), "--timeout", "300",
                                       *offline(wheels)])
    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("reportgen: error:")]
    assert len(errors) == 1 and "reportgen-fakefw==9.9" in errors[0] and "jax.install.log" in errors[0]
    assert "Traceback" not in result.output
    assert not (root / "jax").exists() and (root / "jax.install.log").is_file()
    assert "jax" not in fw.recorded()


def test_a_step_past_its_timeout_is_killed_with_its_children(tmp_path):
    marker = tmp_path / "grandchild-alive"
    # a child that starts a grandchild which would write a file after 4 s; both must die at the 3 s timeout
    grandchild = f"import time; time.sleep(4); open({str(marker)!r}, 'w')"
    script = tmp_path / "child.py"
    script.write_text(f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
                      "print('started', flush=True)\ntime.sleep(60)\n")
    lines: list[str] = []
    t0 = time.perf_counter()
    with pytest.raises(fw.InstallError, match="no result after 3 s"):
        fw.run_streamed([sys.executable, str(script)], timeout_s=3, progress=lines.append)
    assert time.perf_counter() - t0 < 10
    assert any("started" in ln for ln in lines)  # output streamed while it ran
    time.sleep(max(0.0, t0 + 6 - time.perf_counter()))
    assert not marker.exists()


def test_list_shows_a_broken_recorded_interpreter(tmp_path):
    fw.record(fw.Recorded("mindspore", str(tmp_path / "gone" / "python")))
    result = CliRunner().invoke(main, ["frameworks", "list"])
    assert result.exit_code == 0, result.output
    assert "BROKEN" in result.output and "no such interpreter" in result.output
    assert "jax        not installed" in result.output


@pytest.mark.skipif(not os.environ.get("REPORTGEN_FRAMEWORKS_LIVE"),
                    reason="set REPORTGEN_FRAMEWORKS_LIVE=1 to check the real pinned environments recorded in "
                           "your config (after `reportgen frameworks install all`)")
def test_live_recorded_environments_pass_their_check():
    cfg = Path(os.environ.get("REPORTGEN_LIVE_CONFIG", Path.home() / ".config" / "reportgen" / "config.yaml"))
    rec = fw.recorded(cfg)
    for name, spec in fw.FRAMEWORKS.items():
        assert name in rec, f"{name} not recorded in {cfg}"
        c = fw.check(spec, rec[name].python)
        assert c.ok and fw.pinned_versions_match(spec, c.versions), c
