"""Claims engine: every verdict can flip, malformed rules are refused with file/case/claim/key, and the claims in
the bundled suites read facts their cases really publish."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from reportgen import cases as registry
from reportgen.cases import CaseContext
from reportgen.claims import (FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURABLE, evaluate, evaluate_claim, evaluate_rule,
                              validate_rule)
from reportgen.errors import UsageError
from reportgen.results import CaseResult
from reportgen.suite import ClaimSpec, load_suite

ROOT = Path(__file__).resolve().parent.parent


def result(facts: dict, device: str = "cpu", dtype: str = "float32", status: str = "ok", case: str = "c",
           reason: str | None = None) -> CaseResult:
    return CaseResult(id=f"{case}/{device}/{dtype}", case=case, kind=case, description="", device=device,
                      dtype=dtype, params={}, seed=0, status=status, reason=reason, facts=facts)


def claim(rule: dict, id: str = "x") -> ClaimSpec:
    return ClaimSpec(id=id, text="a claim", source="https://example.org/thread", rule=rule)


LT = {"fact": "a", "op": "<", "value": 1.0}


# ----------------------------------------------------------------------------------------------- verdicts flip

def test_holds_and_does_not_hold_flip_with_the_facts():
    assert evaluate_claim(claim(LT), "c", [result({"a": 0.5})])["verdict"] == HOLDS
    assert evaluate_claim(claim(LT), "c", [result({"a": 1.5})])["verdict"] == FAILS


def test_mixed_results_are_inconclusive_and_named():
    out = evaluate_claim(claim(LT), "c", [result({"a": 0.5}), result({"a": 2.0}, dtype="bfloat16")])
    assert out["verdict"] == INCONCLUSIVE
    assert "holds on c/cpu/float32" in out["reason"] and "does not hold on c/cpu/bfloat16" in out["reason"]


def test_missing_fact_everywhere_is_not_measurable():
    out = evaluate_claim(claim(LT), "c", [result({"b": 0.5})])
    assert out["verdict"] == NOT_MEASURABLE and "missing" in out["reason"]


def test_missing_on_one_result_leaves_the_others_to_decide():
    out = evaluate_claim(claim(LT), "c", [result({"a": 0.5}), result({}, dtype="float64")])
    assert out["verdict"] == HOLDS and "missing on c/cpu/float64" in out["reason"]


def test_no_ok_result_is_not_measurable_with_reason():
    out = evaluate_claim(claim(LT), "c", [result({"a": 0.5}, status="skipped", reason="needs CUDA")])
    assert out["verdict"] == NOT_MEASURABLE and "needs CUDA" in out["reason"]
    assert evaluate_claim(claim(LT), "c", [])["verdict"] == NOT_MEASURABLE


def test_requires_cuda_on_a_cpu_run_is_not_measurable_and_flips_on_cuda():
    rule = {**LT, "requires": {"device": "cuda"}}
    cpu = evaluate_claim(claim(rule), "c", [result({"a": 0.5})])
    assert cpu["verdict"] == NOT_MEASURABLE and "requires device cuda" in cpu["reason"]
    gpu = [result({"a": 0.5}), result({"a": 0.5}, device="cuda:0")]
    assert evaluate_claim(claim(rule), "c", gpu)["verdict"] == HOLDS
    gpu_fail = [result({"a": 0.5}), result({"a": 3.0}, device="cuda:0")]
    assert evaluate_claim(claim(rule), "c", gpu_fail)["verdict"] == FAILS


def test_requires_dtype_ignores_other_dtypes():
    rule = {**LT, "requires": {"dtype": "float32"}}
    out = evaluate_claim(claim(rule), "c", [result({"a": 0.5}), result({"a": 9.0}, dtype="bfloat16")])
    assert out["verdict"] == HOLDS and "not applicable to c/cpu/bfloat16" in out["reason"]


def test_requires_facts_admits_only_results_where_each_precondition_is_true():
    # e.g. "the growth stack ran the forward's kernel": where not, the result is not applicable (not "does not hold")
    rule = {**LT, "requires": {"facts": ["pre"]}}
    unmet = evaluate_claim(claim(rule), "c", [result({"a": 3.0, "pre": None})])
    assert unmet["verdict"] == NOT_MEASURABLE and "requires pre true, which no result" in unmet["reason"]
    assert evaluate_claim(claim(rule), "c", [result({"a": 3.0, "pre": True})])["verdict"] == FAILS
    held = evaluate_claim(claim(rule), "c", [result({"a": 0.5, "pre": True})])
    assert [e["fact"] for e in held["evidence"]] == ["pre", "a"]  # the precondition is shown as evidence
    assert evaluate_claim(claim(rule), "c", [result({"a": 0.5, "pre": True})])["verdict"] == HOLDS
    mixed = evaluate_claim(claim(rule), "c", [result({"a": 0.5, "pre": True}),
                                              result({"a": 3.0, "pre": False}, dtype="bfloat16")])
    assert mixed["verdict"] == HOLDS and "not applicable to c/cpu/bfloat16" in mixed["reason"]


@pytest.mark.parametrize("op,value,true_fact,false_fact", [
    ("<", 1, 0, 1), ("<=", 1, 1, 2), (">", 1, 2, 1), (">=", 1, 1, 0), ("==", "left", "left", "right"),
    ("!=", "left", "right", "left"), ("in", ["identical", "within rounding"], "identical", "out of bound"),
    ("not_in", ["out of bound"], "identical", "out of bound"), ("==", True, True, False),
])
def test_every_op_flips(op, value, true_fact, false_fact):
    rule = {"fact": "f", "op": op, "value": value}
    assert evaluate_rule(rule, {"f": true_fact})[0] == "true"
    assert evaluate_rule(rule, {"f": false_fact})[0] == "false"


def test_all_any_not_combine():
    t, f = {"fact": "a", "op": "<", "value": 1}, {"fact": "a", "op": ">", "value": 1}
    facts = {"a": 0}
    assert evaluate_rule({"all": [t, t]}, facts)[0] == "true"
    assert evaluate_rule({"all": [t, f]}, facts)[0] == "false"
    assert evaluate_rule({"any": [f, t]}, facts)[0] == "true"
    assert evaluate_rule({"any": [f, f]}, facts)[0] == "false"
    assert evaluate_rule({"not": f}, facts)[0] == "true"
    missing = {"fact": "nope", "op": "<", "value": 1}
    # Kleene logic: a decisive false settles all(), a decisive true settles any(); otherwise missing wins.
    assert evaluate_rule({"all": [f, missing]}, facts)[0] == "false"
    assert evaluate_rule({"any": [t, missing]}, facts)[0] == "true"
    assert evaluate_rule({"all": [t, missing]}, facts)[0] == "missing"
    assert evaluate_rule({"not": missing}, facts)[0] == "missing"


def test_fact_valued_threshold_with_factor():
    rule = {"fact": "avg", "op": ">", "value": {"fact": "rounding", "times": 100}}
    assert evaluate_rule(rule, {"avg": 1e-3, "rounding": 1e-7})[0] == "true"
    assert evaluate_rule(rule, {"avg": 1e-6, "rounding": 1e-7})[0] == "false"
    assert evaluate_rule(rule, {"avg": 1e-6})[0] == "missing"


def test_nonfinite_values_from_json_compare_as_floats():
    assert evaluate_rule({"fact": "r", "op": ">", "value": 1e9}, {"r": "inf"})[0] == "true"
    assert evaluate_rule({"fact": "r", "op": ">", "value": 1}, {"r": "nan"})[0] == "missing"
    assert evaluate_rule({"fact": "r", "op": "<", "value": 1}, {"r": None})[0] == "missing"


# ----------------------------------------------------------------------------------------------- noise

def test_noisy_fact_near_threshold_is_inconclusive_far_from_it_decides():
    rule = {"fact": "t.ratio", "op": ">", "value": 1.0}
    near = {"t.ratio": 1.05, "t.ratio.noisy": True}
    assert evaluate_rule(rule, near)[0] == "noisy"
    assert evaluate_claim(claim(rule), "c", [result(near)])["verdict"] == INCONCLUSIVE
    assert evaluate_rule(rule, {"t.ratio": 1.05, "t.ratio.noisy": False})[0] == "true"
    assert evaluate_rule(rule, {"t.ratio": 1.5, "t.ratio.noisy": True})[0] == "true"
    assert evaluate_rule(rule, {"t.ratio": 0.5, "t.ratio.noisy": True})[0] == "false"
    assert evaluate_rule({**rule, "margin": 0.01}, near)[0] == "true"


def test_spread_decides_only_when_every_round_agrees():
    rule = {"fact": "r", "op": ">", "value": 1.0, "spread": {"low": "r.min", "high": "r.max"}}
    assert evaluate_rule(rule, {"r": 1.2, "r.min": 1.01, "r.max": 1.4})[0] == "true"
    assert evaluate_rule(rule, {"r": 0.8, "r.min": 0.7, "r.max": 0.95})[0] == "false"
    assert evaluate_rule(rule, {"r": 1.2, "r.min": 0.9, "r.max": 1.4})[0] == "noisy"
    assert evaluate_rule(rule, {"r": 1.2})[0] == "missing"


# ----------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("rule,key", [
    ({"fact": "a", "op": "=~", "value": 1}, "rule.op"),
    ({"fact": "a", "value": 1}, "rule.op"),
    ({"op": "<", "value": 1}, "rule"),
    ({"fact": "a", "op": "<"}, "rule.value"),
    ({"fact": "a", "op": "<", "value": "x"}, "rule.value"),
    ({"fact": "a", "op": "in", "value": 3}, "rule.value"),
    ({"fact": "a", "op": "<", "value": 1, "colour": "red"}, "rule.colour"),
    ({"all": []}, "rule.all"),
    ({"all": [{"fact": "a", "op": "<", "value": 1}, {"nope": 1}]}, "rule.all[1]"),
    ({"any": [{"fact": "a", "op": "<", "value": 1, "requires": {"device": "cuda"}}]}, "rule.any[0].requires"),
    ({"not": [{"fact": "a", "op": "<", "value": 1}]}, "rule.not"),
    ({"all": [LT], "any": [LT]}, "rule"),
    ({**LT, "requires": {"device": "tpu"}}, "rule.requires.device"),
    ({**LT, "requires": {"gpu": True}}, "rule.requires.gpu"),
    ({**LT, "requires": {"facts": "pre"}}, "rule.requires.facts"),
    ({**LT, "requires": {"facts": []}}, "rule.requires.facts"),
    ({**LT, "value": {"fact": "b", "times": "x"}}, "rule.value.times"),
    ({**LT, "margin": -1}, "rule.margin"),
    ({**LT, "spread": {"low": "a"}}, "rule.spread"),
    ("a < 1", "rule"),
])
def test_malformed_rules_name_the_key(rule, key):
    with pytest.raises(UsageError) as err:
        validate_rule(rule, "s.yaml: case 'c' (claim 'x')")
    assert str(err.value).startswith(f"s.yaml: case 'c' (claim 'x'): key '{key}'")


def test_suite_loading_refuses_a_bad_rule_naming_file_case_claim_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        cases:
          - name: drift
            kind: optimizer_drift
            claims:
              - id: my-claim
                text: t
                source: s
                rule: {all: [{fact: a, op: "<", value: 1}, {fact: b, op: "~", value: 1}]}
        """))
    with pytest.raises(UsageError) as err:
        load_suite(str(path))
    msg = str(err.value)
    for part in (str(path), "'drift'", "'my-claim'", "rule.all[1].op", "'~'"):
        assert part in msg


def test_evaluate_covers_every_claim_of_the_suite():
    suite = load_suite("quick")
    verdicts = evaluate(suite, [])
    assert len(verdicts) == sum(len(c.claims) for c in suite.cases)
    assert all(v["verdict"] == NOT_MEASURABLE for v in verdicts)  # nothing ran yet
    assert {"id", "case", "text", "source", "verdict", "reason", "evidence", "anchor"} <= set(verdicts[0])


# ----------------------------------------------------------------------------------------------- the bundled claims

def _rule_facts(rule: dict) -> set[str]:
    if "fact" in rule:
        names = {rule["fact"]}
        if isinstance(rule["value"], dict):
            names.add(rule["value"]["fact"])
        if "spread" in rule:
            names |= {rule["spread"]["low"], rule["spread"]["high"]}  # not its "over" word
        return names
    if "not" in rule:
        return _rule_facts(rule["not"])
    return set().union(*(_rule_facts(r) for r in rule.get("all", rule.get("any", []))))


TINY = {
    "optimizer_drift": {"seeds": 4, "steps": 12, "adam_lrs": [0.5], "sgd_lrs": [0.5], "mse_adam_lrs": [0.5],
                        "mse_sgd_lrs": [0.5], "thread_check_seeds": 0},
    "shared_kernel_conv": {"batch": 1, "channels": 2, "height": 5, "width": 5, "train_batch": 1, "train_size": 4,
                           "train_steps": 3, "train_report_steps": [1, 3]},
    "linear_vs_conv1d": {"batch": 2, "length": 4, "in_features": 3, "out_features": 4, "growth_depths": [1, 2, 3],
                         "growth_width": 4, "growth_in_features": [2, 4], "growth_rows": 4},
}


@pytest.mark.parametrize("case", sorted(TINY))
def test_bundled_claims_read_facts_the_case_publishes(case):
    """Claims written in the suites against this case read facts it really publishes (a typo would otherwise
    show up only as 'not measurable here' in a user's report)."""
    wanted: set[str] = set()
    for name in ("default", "quick"):
        for spec in load_suite(name).cases:
            if spec.kind == case:
                for c in spec.claims:
                    wanted |= _rule_facts({k: v for k, v in c.rule.items() if k != "requires"})
                    wanted |= set(c.rule.get("requires", {}).get("facts", []))
    if not wanted:
        pytest.skip(f"no claims on {case} in the bundled suites")
    params = {**registry.get(case).defaults, **{k: v for k, v in TINY[case].items()
                                                 if k in registry.get(case).defaults}}
    ctx = CaseContext(name=case, params=params, device=torch.device("cpu"), dtype=torch.float32, seed=0,
                      timing_rounds=2, timing_min_sample_s=0.0005)
    facts = registry.get(case).run(ctx).facts
    assert sorted(wanted - set(facts)) == []


# ----------------------------------------------------------------------------------------------- template

def test_claims_template_escapes_and_links_only_the_source():
    from reportgen.render import html
    env = html.environment(ROOT / "templates")  # the report's own filters (evidence_text, ...), autoescape on
    good = evaluate_claim(ClaimSpec(id="x", text="<b>bold</b>", source="https://example.org/?a=1&b=2",
                                    rule=LT), "c", [result({"a": 0.5})])
    bad = dict(good, id="y", source="javascript:alert(1)")
    page = env.get_template("_claims.html.j2").render(claims=[good, bad])
    assert "<b>bold" not in page and "&lt;b&gt;bold" in page
    assert 'href="https://example.org/?a=1&amp;b=2" rel="noreferrer"' in page
    assert 'href="javascript' not in page
    assert f'href="#case-{html.anchor("c/cpu/float32")}"' in page
