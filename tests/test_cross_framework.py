"""conv1d_cross_framework: the torch side always, skips that explain themselves, and the real MindSpore/JAX probes
where their environments exist (REPORTGEN_MINDSPORE_PYTHON / REPORTGEN_JAX_PYTHON, else venvs/{ms,jax}, else the
environments `reportgen frameworks install` recorded in the user config)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen import cases as registry
from reportgen.cases import CaseContext
from reportgen.cases import _mindspore_page as page
from reportgen.cases.conv1d_cross_framework import (even_symmetric, odd_extra_side, split_from_onehot,
                                                    torch_same_splits)
from reportgen.claims import FAILS, HOLDS, NOT_MEASURABLE, evaluate_claim
from reportgen.probes import run_probe
from reportgen.results import CaseResult
from reportgen.suite import load_suite

REPO = Path(__file__).resolve().parents[1]
SMALL = {"batch": 1, "in_channels": 3, "out_channels": 4, "length": 16,
         "same_configs": [[2, 1], [3, 1], [4, 1], [2, 3]],
         "same_length": 10, "init_in_channels": 4, "init_out_channels": 64, "timeout_s": 120.0}


def interpreter(env_var: str, venv: str, name: str) -> str | None:
    path = os.environ.get(env_var) or str(REPO / "venvs" / venv / "bin" / "python")
    if not Path(path).is_file():  # else what `reportgen frameworks install` recorded in the user's config
        from reportgen.errors import UsageError
        from reportgen.frameworks import recorded
        try:
            path = recorded()[name].python
        except (KeyError, UsageError):
            return None
    return path if Path(path).is_file() else None


MS_PY = interpreter("REPORTGEN_MINDSPORE_PYTHON", "ms", "mindspore")
JAX_PY = interpreter("REPORTGEN_JAX_PYTHON", "jax", "jax")
needs_ms = pytest.mark.skipif(MS_PY is None, reason="no MindSpore interpreter (set REPORTGEN_MINDSPORE_PYTHON, "
                                                    "or `reportgen frameworks install mindspore`)")
needs_jax = pytest.mark.skipif(JAX_PY is None, reason="no JAX interpreter (set REPORTGEN_JAX_PYTHON, or "
                                                      "`reportgen frameworks install jax`)")


def run_case(frameworks: dict[str, str], **params) -> CaseResult:
    info = registry.get("conv1d_cross_framework")
    merged = {**info.defaults, **SMALL, **params}
    ctx = CaseContext(name="conv1d_cross_framework", params=merged, device=torch.device("cpu"),
                      dtype=torch.float32, seed=0, frameworks=frameworks)
    out = info.run(ctx)
    result = CaseResult(id="conv1d_cross_framework/cpu/float32", case="conv1d_cross_framework",
                        kind="conv1d_cross_framework", description="", device="cpu", dtype="float32",
                        params=merged, seed=0, status="ok")
    for name in ("comparisons", "tables", "facts", "notes", "extra"):
        setattr(result, name, getattr(out, name))
    json.dumps([result.facts, result.tables, result.extra, result.comparisons, result.notes])  # JSON-able
    return result


def claims_of(suite: str = "default") -> dict:
    spec = next(c for c in load_suite(suite).cases if c.name == "conv1d_cross_framework")
    return {c.id: c for c in spec.claims}


def verdicts(result: CaseResult, suite: str = "default") -> dict[str, str]:
    return {cid: evaluate_claim(c, "conv1d_cross_framework", [result])["verdict"]
            for cid, c in claims_of(suite).items()}


def table(result: CaseResult, title_start: str) -> dict:
    return next(t for t in result.tables if t["title"].startswith(title_start))


# ------------------------------------------------------------------------------------------- measuring splits


def padded_output(left: int, right: int, length: int, k: int, d: int) -> np.ndarray:
    x_pad = np.concatenate([np.zeros(left), np.arange(1, length + 1), np.zeros(right)])
    return x_pad[: x_pad.size - (k - 1) * d]  # tap-0 one-hot kernel: y[i] = x_pad[i]


@pytest.mark.parametrize("left, right, k, d", [(1, 2, 4, 1), (2, 1, 4, 1), (0, 1, 2, 1), (4, 5, 4, 3), (3, 3, 4, 2)])
def test_split_from_onehot_recovers_the_padding(left, right, k, d):
    assert split_from_onehot(padded_output(left, right, 8, k, d), 8, k, d) == (left, right)


def test_split_from_onehot_refuses_ambiguous_outputs():
    assert split_from_onehot(np.zeros(8), 8, 4, 1) is None
    assert split_from_onehot(np.array([0, 1, 2, 9, 4, 5, 6, 7.0]), 8, 4, 1) is None  # not a shifted ramp
    assert split_from_onehot(np.array([0, 1.5, 2.5, 3.5]), 4, 2, 1) is None  # non-integer offset


def test_split_summaries():
    right_first = {(4, 1): (1, 2), (3, 1): (1, 1), (2, 1): (0, 1)}
    assert odd_extra_side(right_first) == "right" and even_symmetric(right_first) is True
    assert odd_extra_side({(4, 1): (2, 1)}) == "left"
    assert odd_extra_side({(4, 1): (2, 1), (2, 1): (0, 1)}) == "mixed"
    assert odd_extra_side({(3, 1): (1, 1)}) is None and even_symmetric({(4, 1): (1, 2)}) is None
    assert even_symmetric({(5, 1): (1, 3)}) is False


def test_torch_same_puts_the_odd_element_on_the_right():
    # The page says PyTorch pads the left first; PyTorch itself pads right (measured, not assumed).
    splits = torch_same_splits({"same_length": 10, "same_configs": [[2, 1], [4, 1], [3, 1], [4, 3]]})
    assert splits == {(2, 1): (0, 1), (4, 1): (1, 2), (3, 1): (1, 1), (4, 3): (4, 5)}


# ------------------------------------------------------------------------------------------- without frameworks


@pytest.fixture(scope="module")
def unconfigured() -> CaseResult:
    return run_case({})


def test_without_frameworks_the_case_succeeds_with_clear_skips(unconfigured):
    facts = unconfigured.facts
    assert facts["torch.same_odd_extra_side"] == "right" and facts["torch.default_has_bias"] is True
    assert facts["torch.vs_ref.valid.verdict"] in ("identical", "within rounding")
    assert not [k for k in facts if k.startswith(("ms.", "jax."))]  # absent, not guessed
    split_rows = table(unconfigured, "'same' padding")["rows"]
    assert all(row[4] == "skipped: not configured" and row[5] == "skipped: not configured" for row in split_rows)
    section = unconfigured.extra["cross_framework"]
    assert [f["status"] for f in section["frameworks"]] == ["ok", "not configured", "not configured"]
    bias_row = next(r for r in section["rows"] if r["check"] == "bias by default")
    assert [c["text"] for c in bias_row["cells"]] == ["yes", "skipped: not configured", "n/a"]
    assert any("--framework mindspore=" in n for n in unconfigured.notes)


def test_without_frameworks_the_claims_are_not_measurable(unconfigured):
    got = verdicts(unconfigured)
    assert got and set(got.values()) == {NOT_MEASURABLE}, got
    assert set(verdicts(unconfigured, "quick").values()) == {NOT_MEASURABLE}


def test_example_claims_read_the_published_run(unconfigured, monkeypatch):
    # The page's PyTorch halves run as text and print what the page says they print ...
    f = unconfigured.facts
    for i, shape in enumerate(("(1, 240, 637)", "(1, 240, 639)", "(1, 240, 639)", "(1, 240, 637)"), 1):
        assert f[f"torch.published.example{i}.printed"] == f[f"torch.published.example{i}.page_says"] == shape
        assert f[f"torch.published.example{i}.matches_page"] is True
    section = unconfigured.extra["published"]
    assert "nn.Pad(paddings=((0,0),(1,1),(1,1)), mode=\"REFLECT\")" in section["snippet"]  # the MindSpore halves too
    assert "example 1 (MindSpore): skipped: not configured" in section["printed"]
    # ... and the claim follows what they print: a page whose comment disagrees with the code fails the claim
    from reportgen.cases import _mindspore_page as page
    torch_half, ms_half = page.EXAMPLES[0]
    monkeypatch.setattr(page, "EXAMPLES", ((torch_half.replace("# (1, 240, 637)", "# (1, 240, 640)"), ms_half),
                                           *page.EXAMPLES[1:]))
    result = run_case({})
    assert result.facts["torch.published.example1.printed"] == "(1, 240, 637)"
    assert result.facts["torch.published.example1.matches_page"] is False
    assert verdicts(result)["ms-example1-valid-with-bias-shape"] == FAILS


def test_torch_init_fit_is_computed_and_can_reject(unconfigured):
    facts = unconfigured.facts
    assert facts["torch.init.weight_normal01_p"] < 1e-6  # U(±1/sqrt(fan_in)) is far from N(0, 1)
    assert facts["torch.init.weight_uniform_ks"] < 0.1
    rows = table(unconfigured, "Default initialisation")["rows"]
    assert {r[6].split(" ")[0] for r in rows} <= {"consistent", "rejected"} and any("rejected" in r[6] for r in rows)


def fake_interpreter(tmp_path: Path, name: str, body: str) -> str:
    """An executable standing in for another framework's python: gets SCRIPT WORKDIR like the real one."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_broken_frameworks_are_skipped_with_their_reason(tmp_path):
    garbage = fake_interpreter(tmp_path, "garbage", 'printf "{nope" > "$2/response.json"')
    hang = fake_interpreter(tmp_path, "hang", "exec sleep 30")
    result = run_case({"mindspore": garbage, "jax": hang}, timeout_s=1.0)
    section = result.extra["cross_framework"]
    ms_row, jax_row = section["frameworks"][1], section["frameworks"][2]
    assert ms_row["status"] == "bad output" and "response.json is not JSON" in ms_row["reason"]
    assert jax_row["status"] == "timeout" and jax_row["reason"].startswith("skipped: timeout: no answer within 1 s")
    assert not [k for k in result.facts if k.startswith(("ms.", "jax."))]


def test_missing_interpreter_and_import_error(tmp_path):
    try:
        import mindspore  # noqa: F401
        pytest.skip("mindspore importable here: cannot show the import error")
    except ImportError:
        pass
    result = run_case({"mindspore": sys.executable, "jax": str(tmp_path / "no" / "python")})
    rows = table(result, "'same' padding")["rows"]
    assert rows[0][4] == "skipped: import error: ModuleNotFoundError: No module named 'mindspore'"
    assert rows[0][5].startswith("skipped: interpreter missing: ")


def test_extra_template_renders_and_escapes(unconfigured):
    from reportgen.render.html import environment
    section = json.loads(json.dumps(unconfigured.extra["cross_framework"]))
    section["rows"][0]["cells"][0]["text"] = "<script>alert(1)</script>"
    html = environment().get_template("_extra_cross_framework.html.j2").render(
        case={"id": "x"}, section=section)
    assert "skipped: not configured" in html and "Cross-framework checks" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_non_float32_is_skipped_with_reason():
    from reportgen.cases import CaseSkipped
    info = registry.get("conv1d_cross_framework")
    ctx = CaseContext(name="c", params=dict(info.defaults), device=torch.device("cpu"), dtype=torch.float64, seed=0)
    with pytest.raises(CaseSkipped, match="float32"):
        info.run(ctx)


# ------------------------------------------------------------------------------------------- real frameworks


@pytest.fixture(scope="module")
def real() -> CaseResult:
    frameworks = {k: v for k, v in (("mindspore", MS_PY), ("jax", JAX_PY)) if v}
    if not frameworks:
        pytest.skip("neither MindSpore nor JAX environment found (docs/frameworks.md)")
    return run_case(frameworks)


@needs_ms
def test_real_mindspore_probe(real):
    f = real.facts
    assert f["ms.versions.mindspore"] and f["ms.versions.numpy"].startswith("1.")  # MindSpore needs numpy<2
    assert f["ms.default_has_bias"] is False and f["ms.default_pad_mode"] == "same"
    assert f["ms.default_pads_input"] is True
    assert f["ms.weight_ndim"] in (3, 4)
    for mode in ("valid", "pad", "reflect"):  # PyTorch's weights, converted: same function, up to rounding
        assert f[f"ms.vs_ref.{mode}.verdict"] in ("identical", "within rounding")
        assert f[f"ms.vs_torch.{mode}.verdict"] in ("identical", "within rounding")
    assert f["ms.init.weight_normal01_p"] < 1e-6  # the page's N(0, 1) is rejected outright
    assert f["ms.same_odd_extra_side"] in ("left", "right")


@needs_ms
def test_real_mindspore_claims_are_decided(real):
    got = verdicts(real)
    decided = {cid: v for cid, v in got.items() if not cid.startswith("ms-example") and v != NOT_MEASURABLE}
    assert got["ms-conv1d-no-bias-by-default"] == HOLDS
    assert got["ms-default-weight-init-normal"] == FAILS
    assert got["ms-expanded-weights-match-torch"] == HOLDS
    assert set(decided.values()) <= {HOLDS, FAILS}
    # every MindSpore-only claim has its facts (the ones that need JAX too may be missing without it)
    needs_jax_too = {"ms-same-split-like-tensorflow"}
    assert not [cid for cid, v in got.items() if v == NOT_MEASURABLE and cid not in needs_jax_too
                and not cid.startswith("ms-example")]


@needs_jax
def test_real_jax_probe(real):
    f = real.facts
    assert f["jax.versions.jax"] and f["jax.backend"] == "cpu"
    assert f["jax.same_lower_odd_extra_side"] != f["jax.same_odd_extra_side"]  # the two conventions differ
    assert f["jax.same_split_equals_torch"] is not f["jax.same_lower_split_equals_torch"]
    for mode in ("valid", "pad", "same"):
        assert f[f"jax.vs_ref.{mode}.verdict"] in ("identical", "within rounding")


@needs_ms
def test_real_mindspore_probe_directly():
    # The protocol end to end with the shipped script, without the case around it.
    rng = np.random.default_rng(0)
    params = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "length": 8, "same_length": 6,
              "same_configs": [[2, 1]], "pad": 1, "init_in_channels": 2, "init_out_channels": 4,
              "init_kernel_size": 3, "seed": 0, "published_ms": [ms for _, ms in page.EXAMPLES]}
    inputs = {"x": rng.standard_normal((1, 2, 8)).astype(np.float32),
              "w": rng.standard_normal((3, 2, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}
    res = run_probe("mindspore", MS_PY, "mindspore_conv1d", params=params, inputs=inputs, timeout_s=120,
                    expect_outputs=["y_valid", "y_pad", "y_same", "same_k2_d1"])
    assert res.ok, res.reason
    assert res.outputs["y_valid"].shape == (1, 3, 6) and res.outputs["y_pad"].shape == (1, 3, 8)
    # the page's MindSpore halves, run as published: what they print, and example 3's channel-padded input
    assert res.facts["ms.published.example2.printed"] == "(1, 240, 639)"
    assert res.facts["ms.published.example3.printed"] == "(1, 240, 639)"
    assert res.facts["ms.published.example3.padded_shape"] == "1x122x642"


def rule_facts(rule: dict) -> set[str]:
    if "fact" in rule:
        return {rule["fact"]} | ({rule["value"]["fact"]} if isinstance(rule["value"], dict) else set())
    if "not" in rule:
        return rule_facts(rule["not"])
    return set().union(*(rule_facts(r) for r in rule.get("all", rule.get("any", []))))


def claimed_facts() -> set[str]:
    return set().union(*(rule_facts(c.rule) for s in ("default", "quick") for c in claims_of(s).values()))


def test_claims_name_only_prefixed_facts_and_the_torch_ones_are_published(unconfigured):
    # A typo in a rule would otherwise only show as 'not measurable here' in a user's report.
    names = claimed_facts()
    assert all(n.split(".")[0] in ("torch", "ms", "jax") for n in names), names
    assert sorted(n for n in names if n.startswith("torch.") and n not in unconfigured.facts) == []


@needs_ms
@needs_jax
def test_real_claims_read_published_facts(real):
    assert sorted(claimed_facts() - set(real.facts)) == []
