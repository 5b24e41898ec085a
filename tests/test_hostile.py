"""The hostile corpus (tests/hostile/, made by make_corpus.py, expectations in EXPECT.tsv) and its kin, each fed
through the CLI in a subprocess: one line on stderr naming the file, exit 2, no traceback, nothing written.
Then the leaks and the injection: a short secret and the home directory in every output, a ``javascript:`` source.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

HOSTILE = Path(__file__).parent / "hostile"
FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"
TINY = "{batch: 2, length: 8, growth_depths: [1], growth_in_features: [8], growth_rows: 8}"


def _expectations() -> list[tuple[str, int, str]]:
    rows = []
    for line in (HOSTILE / "EXPECT.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, code, text = line.split("\t")
            rows.append((name, int(code), text))
    return rows


EXPECT = _expectations()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    """The contract for bad input: exit ``code``, no traceback, stderr exactly one line that says each needle."""
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr.replace("reportgen: error:", ""), \
        proc.stderr[-2000:]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reportgen: error: "), proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_every_corpus_file_has_an_expectation():
    files = {p.name for p in HOSTILE.iterdir() if p.name not in ("EXPECT.tsv", "make_corpus.py")
             and not p.name.startswith((".", "__"))}
    assert files == {name for name, _, _ in EXPECT}
    assert len(files) >= 40


SUITES = [e for e in EXPECT if e[0].startswith("suite_")]
ARCHIVES = [e for e in EXPECT if not e[0].startswith("suite_")]


@pytest.fixture(scope="module")
def corpus_runs(tmp_path_factory) -> dict[tuple[str, str], tuple[subprocess.CompletedProcess, Path]]:
    """Every corpus file through the CLI once, a few processes at a time (each `run` imports torch: seconds);
    the tests below check one result each. (name, command) -> (process, its --out directory)."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp("hostile")
    jobs: dict[tuple[str, str], tuple[list[str], Path]] = {}
    for name, _, _ in SUITES:
        out = root / name / "out"
        jobs[name, "run"] = (["run", "--suite", str(HOSTILE / name), "--out", str(out)], out)
    for name, _, _ in ARCHIVES:
        out = root / name / "r"
        jobs[name, "render"] = (["render", str(HOSTILE / name), "--out", str(out)], out)
        out = root / name / "c"
        jobs[name, "compare"] = (["compare", str(HOSTILE / name), str(FIXTURE), "--out", str(out)], out)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(cli, *args) for key, (args, _) in jobs.items()}
        return {key: (f.result(), jobs[key][1]) for key, f in futures.items()}


@pytest.mark.parametrize("name,code,text", SUITES, ids=lambda v: str(v))
def test_hostile_suite(corpus_runs, name, code, text):
    proc, out = corpus_runs[name, "run"]
    one_line_error(proc, code, str(HOSTILE / name), text)
    assert not out.exists()  # refused at load: no run directory, no half-written archive


@pytest.mark.parametrize("name,code,text", ARCHIVES, ids=lambda v: str(v))
@pytest.mark.parametrize("command", ["render", "compare"])
def test_hostile_archive(corpus_runs, name, code, text, command):
    proc, out = corpus_runs[name, command]
    one_line_error(proc, code, str(HOSTILE / name), text)
    assert not out.exists() or not list(out.iterdir())


# ---------------------------------------------------------------------------------------- made at test time

def test_suite_over_the_size_cap(tmp_path):
    suite = tmp_path / "big.yaml"
    suite.write_text("# " + "x" * (1 << 20) + f"\ncases: [{{name: c, kind: linear_vs_conv1d, params: {TINY}}}]\n")
    one_line_error(cli("run", "--suite", str(suite), "--out", str(tmp_path / "out")), 2, "a suite file may have at most")
    assert not (tmp_path / "out").exists()


def test_results_nested_100000_deep(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"schema_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    one_line_error(cli("render", str(path), "--out", str(tmp_path / "r")), 2, "nested too deeply")
    one_line_error(cli("compare", str(path), str(path), "--out", str(tmp_path / "c")), 2, "nested too deeply")
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()


def test_results_file_over_the_read_limit(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: no disk used, the size check must come before any read
        fh.truncate(300 << 20)
    one_line_error(cli("render", str(path), "--out", str(tmp_path / "r")), 2, "more than the 268,435,456 read back")


@pytest.mark.parametrize("args,text", [
    (["--seed", str(2**70)], "--seed: seed must be an integer in [0, 2**63-1]"),
    (["--seed", "-1"], "--seed: seed must be an integer"),
    (["--framework", "mindspore=/bin/true"], "--framework mindspore=/bin/true: not a Python 3 interpreter"),
    (["--framework", "jax=/dev/null"], "--framework jax=/dev/null: not an executable file"),
])
def test_hostile_run_options(tmp_path, args, text):
    one_line_error(cli("run", "--suite", "quick", "--out", str(tmp_path / "out"), *args), 2, text)
    assert not (tmp_path / "out").exists()


def test_device_that_does_not_exist_here_is_exit_2(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    one_line_error(cli("run", "--suite", "quick", "--device", "cuda", "--out", str(tmp_path / "out")), 2,
                   "--device cuda: CUDA not available", "none of the requested devices exists")
    assert not (tmp_path / "out").exists()


def test_a_result_that_compared_nothing_is_skipped_and_the_summary_counts_measured(tmp_path):
    proc = cli("run", "--suite", "quick", "--case", "conv1d_cross_framework", "--out", str(tmp_path), "--run-id",
               "x", "--format", "md")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    case = json.loads((tmp_path / "x" / "results.json").read_text())["cases"][0]
    assert case["status"] == "skipped" and case["reason"].startswith("nothing compared: MindSpore not configured")
    assert case["facts"]["torch.same_odd_extra_side"] == "right"  # what it did measure is kept
    assert ": 0 measured something, 1 skipped, 0 error(s)" in proc.stdout
    assert "nothing was measured" in proc.stdout and " ok " not in proc.stdout


# ------------------------------------------------------------------------------------------ leaks, injection

def _pdf_text(pdf: bytes) -> bytes:
    """The PDF with its compressed streams (text, the attached results.json) inflated, to search for a leak."""
    parts = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            parts.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return b"\n".join(parts)


def _weasyprint_ok() -> bool:
    try:
        import weasyprint  # noqa: F401
    except Exception:
        return False
    return True


def test_short_secret_and_home_directory_appear_in_no_output(tmp_path):
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    suite = home / "suites" / "mine.yaml"
    suite.parent.mkdir()
    suite.write_text(f"name: mine\ncases:\n  - name: c\n    kind: linear_vs_conv1d\n    params: {TINY}\n"
                     "    timing: {enabled: false}\n")
    env = {**os.environ, "HOME": str(home), "TORCH_EXTRA_CONF": "user=me,password=shortLEAK1"}
    fmts = "html,md,pdf" if _weasyprint_ok() else "html,md"
    proc = cli("run", "--suite", str(suite), "--out", str(home / "out"), "--run-id", "r", "--format", fmts, env=env,
               timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = home / "out" / "r"
    data = json.loads((run_dir / "results.json").read_text())
    assert data["suite"]["path"] == "~/suites/mine.yaml"
    assert data["environment"]["env_vars"]["TORCH_EXTRA_CONF"] == "user=me,password=<redacted>"
    outputs = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert {"results.json", "report.html", "report.md"} <= set(outputs)
    if "report.pdf" in outputs:
        outputs["report.pdf"] = _pdf_text(outputs["report.pdf"])
        assert b"~/suites/mine.yaml" in outputs["report.pdf"]  # the search does see the attached JSON
    for name, content in outputs.items():
        assert b"shortLEAK1" not in content, name
        assert str(home).encode() not in content and b"/alice" not in content, name
    env_json = cli("env", "--json", env=env)
    assert env_json.returncode == 0 and "shortLEAK1" not in env_json.stdout and str(home) not in env_json.stdout
    assert "password=<redacted>" in env_json.stdout
    # compare names its inputs: their paths under the home directory are redacted too
    cmp = cli("compare", str(run_dir / "results.json"), str(run_dir / "report.html"), "--out", str(tmp_path / "c"),
              "--format", "html,md", env=env)
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    for p in (tmp_path / "c").iterdir():
        assert str(home).encode() not in p.read_bytes() and b"shortLEAK1" not in p.read_bytes(), p.name


def _archive_with_sources(source: str) -> dict:
    data = json.loads(FIXTURE.read_text())
    case = data["cases"][0]
    case["extra"]["cross_framework"] = {"source": source, "frameworks": [], "columns": ["check"], "rows": []}
    for claim in data["claims"]:
        claim["source"] = source
    return data


@pytest.mark.parametrize("source", ["javascript:alert(document.domain)", "JavaScript:alert(1)",
                                    "data:text/html,<script>alert(1)</script>", " javascript:alert(1)",
                                    "https://x.example/\njavascript:alert(1)", "//evil.example/x"])
def test_a_crafted_source_never_becomes_a_live_link(tmp_path, source):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_archive_with_sources(source)))
    proc = cli("render", str(path), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (tmp_path / "r" / "report.html").read_text()
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs and all(h.startswith("#") for h in hrefs), [h for h in hrefs if not h.startswith("#")]
    assert "Statements of" in html  # the section was rendered, with the source as text


def test_an_https_source_stays_a_link(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_archive_with_sources("https://www.mindspore.cn/docs/x.html")))
    assert cli("render", str(path), "--out", str(tmp_path / "r")).returncode == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.count('href="https://www.mindspore.cn/docs/x.html"') >= 2  # the section's and the claims'


@pytest.mark.parametrize("settings,text", [
    ({"num_threads": 0}, "num_threads must be an integer in [1, "),
    ({"num_threads": 100_000}, "num_threads must be an integer in [1, "),
    ({"float32_matmul_precision": "garbage"}, "must be one of highest, high, medium"),
    ({"mkldnn_conv_fp32_precision": "fp8"}, "must be one of ieee, tf32, bf16, none"),
])
def test_applied_settings_refuses_values_outside_their_constraints_before_changing_anything(settings, text):
    import torch

    from reportgen.measure.settings import applied_settings, capture_settings
    before = capture_settings()
    with pytest.raises(TypeError, match=re.escape(text)):
        with applied_settings(**settings):
            pass
    assert capture_settings() == before and torch.get_float32_matmul_precision() == before["float32_matmul_precision"]
