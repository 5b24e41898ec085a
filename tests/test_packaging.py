"""`pip install .` (not only -e) must ship the templates and suites: check the wheel's contents."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_templates_and_suites(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel without isolation needs setuptools")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("reportgen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in ("templates/report.html.j2", "templates/report.css", "templates/_macros.html.j2",
                "suites/default.yaml", "suites/quick.yaml"):
        assert f"reportgen/{rel}" in names, rel
    shipped_templates = {n.split("/")[-1] for n in names if n.startswith("reportgen/templates/")}
    assert shipped_templates == {p.name for p in (ROOT / "templates").iterdir() if p.is_file()}
