"""The pair engine, `kind: pair`, `reportgen check` and the Python API, with real torch on tiny sizes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reportgen
from reportgen.engine import flatten, float64_twin, relative_verdicts
from reportgen.errors import UsageError
from reportgen.measure.numerics import compare, minimum_tolerance
from reportgen.suite import load_suite

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


# ----------------------------------------------------------------------------------------------- minimum tolerance

def test_minimum_tolerance_on_hand_built_tensors():
    a = torch.tensor([1.0, 2.0, -4.0], dtype=torch.float64)
    e = torch.tensor([1.0, 2.5, -4.25], dtype=torch.float64)
    rtol, atol = minimum_tolerance(a, e)
    assert atol == 0.5
    assert rtol == pytest.approx(0.5 / 2.5)
    # exactly what assert_close needs: passes at the minimum, fails just below it
    torch.testing.assert_close(a, e, rtol=rtol, atol=0)
    torch.testing.assert_close(a, e, rtol=0, atol=atol)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(a, e, rtol=rtol * 0.99, atol=0)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(a, e, rtol=0, atol=atol * 0.99)


def test_minimum_tolerance_zero_expected_and_nonfinite():
    a = torch.tensor([1e-9, 1.0])
    e = torch.tensor([0.0, 1.0])
    rtol, atol = minimum_tolerance(a, e)
    assert rtol == math.inf and atol == pytest.approx(1e-9)
    assert minimum_tolerance(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) == (0.0, 0.0)
    # NaN on both sides compares equal (equal_nan), NaN on one side cannot pass at any tolerance
    assert minimum_tolerance(torch.tensor([math.nan, 1.0]), torch.tensor([math.nan, 1.0])) == (0.0, 0.0)
    assert minimum_tolerance(torch.tensor([math.nan, 1.0]), torch.tensor([0.0, 1.0])) == (None, None)


def test_compare_records_minimum_tolerance():
    c = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 2 ** -22]), 0.0, name="x", actual_label="a",
                expected_label="b")
    assert c.min_atol == pytest.approx(2 ** -22) and c.min_rtol == pytest.approx(2 ** -22 / (2 + 2 ** -22))


# ----------------------------------------------------------------------------------------------- rules

def test_relative_rule_flips_at_the_factor():
    within = relative_verdicts({"a": 1.0, "b": 1.9}, floor=0.0, factor=2.0)
    assert within["a"][0] == within["b"][0] == "within rounding"
    out = relative_verdicts({"a": 1.0, "b": 2.1}, floor=0.0, factor=2.0)
    assert out["a"][0] == "within rounding" and out["b"][0] == "out of bound"
    assert out["b"][1] == pytest.approx(2.1)
    # an exact side and a side off by less than the floor: both within
    assert relative_verdicts({"a": 0.0, "b": 1e-9}, floor=1e-8, factor=2.0)["b"][0] == "within rounding"


def _x(generator):
    return torch.randn(64, 96, generator=generator), torch.randn(96, 16, generator=generator)


def _matmul(x, w):
    return x @ w


def _summed(x, w):  # the same inner products, another summation order
    return (x[:, :, None] * w[None]).sum(1)


def test_verdict_flips_between_rounding_and_an_approximation():
    rounding = reportgen.check(_matmul, _summed, _x)
    assert rounding.status == "ok" and rounding.verdict in ("identical", "within rounding"), rounding.table()
    assert rounding.equivalent
    gelu = reportgen.check(lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh"),
                           lambda generator: torch.randn(2048, generator=generator) * 3)
    assert gelu.verdict == "out of bound" and not gelu.equivalent
    assert gelu.facts["worse_side"] == "b"
    assert gelu.facts["reference.twins_max_rel"] > 1e-6  # the float64 reruns disagree: different functions
    assert rounding.facts["reference.twins_max_rel"] < 1e-12
    assert rounding.facts["reference.same_function"] is True and gelu.facts["reference.same_function"] is False
    ratio = next(c for c in gelu.comparisons if c["name"].endswith("b vs float64 reference"))["error_ratio"]
    assert ratio > 10


def test_a_known_bound_judges_instead_of_the_relative_rule():
    r = reportgen.check(_matmul, _summed, _x, bound=1e-30)  # far below float32 rounding: must fail
    assert r.verdict == "out of bound"
    assert all(c["rule"] == "bound" for c in r.comparisons)
    r = reportgen.check(_matmul, _summed, _x, bound=1.0)
    assert r.verdict == "within rounding"


def test_float64_twin_of_a_function_using_a_global_module():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    fn = eval("lambda x: lin(x)", {"lin": lin})
    twin = float64_twin(fn)
    y = twin(torch.ones(2, 4, dtype=torch.float64))
    assert y.dtype == torch.float64
    assert lin.weight.dtype == torch.float32  # the user's module is left alone


def test_outputs_structures_and_errors():
    assert list(flatten({"y": torch.ones(1), "z": (torch.ones(1), torch.zeros(1))}, "a")) == ["y", "z.0", "z.1"]
    bad = reportgen.check(lambda x: x, lambda x: x[:-1], lambda generator: torch.randn(5, generator=generator))
    assert bad.status == "error" and "differs" in bad.reason and "a (a)" in bad.reason and "b (b)" in bad.reason
    boom = reportgen.check(lambda x: x, lambda x: (_ for _ in ()).throw(ValueError("kaput")),
                           lambda generator: torch.randn(5, generator=generator))
    assert boom.status == "error" and "kaput" in boom.reason and "b (b) raised ValueError" in boom.reason
    multi = reportgen.check(lambda x: {"s": x.sum(), "p": x * 2}, lambda x: {"s": x.flip(0).sum(), "p": x + x},
                            lambda generator: torch.randn(100, generator=generator))
    assert multi.status == "ok" and "fwd.s.a_vs_b.verdict" in multi.facts and "fwd.p.a_vs_b.verdict" in multi.facts


def test_gradients_with_shared_parameters_are_not_accumulated_twice():
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    g = {"lin": lin, "F": F}
    a = eval("lambda x: lin(x)", g)
    b = eval("lambda x: F.linear(x, lin.weight, lin.bias)", g)
    r = reportgen.check(a, b, lambda generator: torch.randn(16, 8, generator=generator), backward=True)
    # both sides use lin's parameters; had b's gradients accumulated onto a's, they would differ by 2x
    assert r.facts["grad.lin_weight.a_vs_b.verdict"] == "identical"
    assert r.facts["grad.input0.a_vs_b.verdict"] == "identical"
    assert r.facts["grad.lin_weight.a_vs_ref.verdict"] in ("identical", "within rounding")


def test_assert_equivalent_raises_with_the_table_and_the_report(tmp_path):
    inputs = _x
    reportgen.assert_equivalent(_matmul, _summed, inputs)  # rounding only: passes, writes nothing
    assert not list(tmp_path.iterdir())
    with pytest.raises(AssertionError) as info:
        reportgen.assert_equivalent(lambda x, w: _matmul(x, w), lambda x, w: _matmul(x, w) * (1 + 1e-3), inputs,
                                    out=tmp_path)
    text = str(info.value)
    assert "verdict: out of bound" in text and "report: " in text
    report = Path(text.rsplit("report: ", 1)[1].strip())
    assert report.is_file() and report.parent.parent == tmp_path


# ----------------------------------------------------------------------------------------------- files, suites

def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_suite_references_are_resolved_and_checked_at_load(tmp_path):
    _write(tmp_path, "mine.py", """
        import torch
        def a(x): return x * 2
        def b(x): return x + x
        def inputs(generator): return torch.randn(8, generator=generator)
        def needs_kw(x, *, scale): return x * scale
        def bad_inputs(count): return torch.randn(count)
    """)
    good = _write(tmp_path, "ok.yaml", """
        cases:
          - {name: mine, kind: pair, params: {a: "mine.py:a", b: "mine.py:b", inputs: "mine.py:inputs"}}
    """)
    spec = load_suite(str(good))
    assert spec.cases[0].params["a"].startswith(str(tmp_path.resolve()))  # made absolute at load
    cases = {
        "missing attr": ('{a: "mine.py:nope", b: "mine.py:b", inputs: "mine.py:inputs"}', "no attribute 'nope'"),
        "missing file": ('{a: "gone.py:a", b: "mine.py:b", inputs: "mine.py:inputs"}', "no such file"),
        "kw-only": ('{a: "mine.py:needs_kw", b: "mine.py:b", inputs: "mine.py:inputs"}', "keyword-only"),
        "inputs arg": ('{a: "mine.py:a", b: "mine.py:b", inputs: "mine.py:bad_inputs"}', "'count'"),
        "no b": ('{a: "mine.py:a", inputs: "mine.py:inputs"}', "params.b: required"),
        "bad ref": ('{a: "not a ref", b: "mine.py:b", inputs: "mine.py:inputs"}', "not a reference"),
        "bad module": ('{a: "no_such_module_x:a", b: "mine.py:b", inputs: "mine.py:inputs"}', "cannot import"),
    }
    for label, (params, message) in cases.items():
        p = _write(tmp_path, "bad.yaml", f"cases:\n  - {{name: mine, kind: pair, params: {params}}}\n")
        with pytest.raises(UsageError) as info:
            load_suite(str(p))
        assert message in str(info.value), label
        assert str(p) in str(info.value) and "case 'mine'" in str(info.value), label


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reportgen", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_check_command_writes_a_report_and_sets_the_exit_code(tmp_path):
    r = _cli("check", str(EXAMPLES / "gelu_tanh_vs_exact.py"), "--out", str(tmp_path), "--no-timing",
             "--format", "html,md", cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # not equivalent
    assert "out of bound" in r.stdout and "Traceback" not in r.stderr
    run_dir = next(tmp_path.iterdir())
    data = json.loads((run_dir / "results.json").read_text())
    case = data["cases"][0]
    assert case["kind"] == "pair" and case["facts"]["verdict"] == "out of bound"
    prov = case["extra"]["pair"]["provenance"]["b"]
    assert prov["name"] == "gelu_tanh_vs_exact.py:b" and len(prov["sha256"]) == 64
    html = (run_dir / "report.html").read_text()
    assert "GELU (tanh approximation)" in html and "The pair" in html and "min rtol" in html
    assert "tanh approximation against the exact" in html  # the file's docstring is the description
    assert (run_dir / "report.md").is_file()


def test_check_command_bad_files_are_exit_2(tmp_path):
    missing = _write(tmp_path, "nob.py", "def a(x): return x\ndef inputs(): return []\n")
    syntax = _write(tmp_path, "syn.py", "def a(x) return x\n")
    raising = _write(tmp_path, "rai.py", "raise RuntimeError('at import')\n")
    typo = _write(tmp_path, "typo.py", """
        import torch
        def a(x): return x
        def b(x): return x
        def inputs(generator): return torch.randn(4, generator=generator)
        claims = [{"id": "c", "text": "t", "source": "s", "rule": {"fact": "verdit", "op": "==", "value": "x"}}]
    """)
    for path, message in ((missing, "defines no 'b'"), (syntax, "syntax error"), (raising, "importing it raised"),
                          (typo, "did you mean 'verdict'")):
        r = _cli("check", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
        assert r.returncode == 2, (path, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_conv1d_example_matches_the_bundled_case():
    """examples/conv1d_vs_linear.py (15 lines) gives the bundled case's forward numbers on the same inputs."""
    from reportgen import cases as registry
    from reportgen.cases import CaseContext

    info = registry.get("linear_vs_conv1d")
    params = {**info.defaults, "backward": False, "growth_depths": [1], "growth_in_features": [8],
              "growth_rows": 64}
    ctx = CaseContext(name="linear_vs_conv1d", params=params, device=torch.device("cpu"), dtype=torch.float32,
                      seed=0, timing_enabled=False, facts=info.facts)
    bundled = info.run(ctx).facts
    ex = str(EXAMPLES / "conv1d_vs_linear.py")
    mine = reportgen.check(f"{ex}:a", f"{ex}:b", f"{ex}:inputs", bound=f"{ex}:bound").facts
    for metric in ("max_abs", "max_normalised", "bitwise_equal_fraction", "max_ulp"):
        assert mine[f"fwd.a_vs_ref.{metric}"] == bundled[f"fwd.linear_vs_ref.{metric}"], metric
        assert mine[f"fwd.b_vs_ref.{metric}"] == bundled[f"fwd.conv1d_vs_ref.{metric}"], metric
        assert mine[f"fwd.a_vs_b.{metric}"] == bundled[f"fwd.linear_vs_conv1d.{metric}"], metric
    assert mine["verdict"] == "within rounding"


def _have_compiler() -> str | None:
    import shutil
    return shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")


@pytest.mark.skipif(_have_compiler() is None, reason="torch.compile's Inductor CPU backend needs a C++ compiler")
def test_compile_example(tmp_path):
    ex = str(EXAMPLES / "compile_vs_eager.py")
    r = reportgen.check(f"{ex}:a", f"{ex}:b", f"{ex}:inputs")
    assert r.status == "ok", r.reason
    assert r.verdict in ("identical", "within rounding"), r.table()


def test_published_snippet_runs_as_text_and_leaves_the_global_rng_alone():
    from reportgen.published import Published, run_published

    pub = Published(source="https://example.org/post", title="t",
                    snippet="import torch\ntorch.manual_seed(2010)\nx = torch.randn(3)\nprint(x.sum().item())\n",
                    outputs=("x",))
    state = torch.random.get_rng_state()
    r = run_published(pub)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(2010)
    assert torch.equal(r["x"], torch.randn(3))  # the snippet's own seeding, in its order
    assert r.printed.strip() == str(r["x"].sum().item())
    with pytest.raises(RuntimeError, match="defined no y"):
        run_published(Published(source="s", title="t", snippet="z = 1", outputs=("y",)))


def test_published_protocol_on_another_seed():
    from reportgen.published import Published, run_published

    pub = Published(source="s", title="t", snippet="import torch\ntorch.manual_seed(2010)\nx = torch.randn(2)\n",
                    seed_call="torch.manual_seed(2010)")
    other = pub.with_seed(7)
    assert "torch.manual_seed(7)" in other.snippet and "2010" not in other.snippet and other.edits
    torch.manual_seed(7)
    assert torch.equal(run_published(other)["x"], torch.randn(2))
