"""Robustness of claim verdicts over seeds: suite key, runner reruns, claims.robustness/fragile, rendering."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
import torch

from reportgen import cases
from reportgen.cases import CaseContext, CaseOutput, register
from reportgen.errors import UsageError
from reportgen.render.html import render_html, robustness_note
from reportgen.render.markdown import render_markdown
from reportgen.results import load_dict
from reportgen.runner import run_suite
from reportgen.facts import FactSpec
from reportgen.suite import ROBUSTNESS_MAX_SEEDS, load_suite

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"


# A tiny case whose one fact depends on the seed (the mean of 32 standard normals drawn from the case generator),
# plus what the runner told it: robustness reruns must see robustness_run and timing off.
@register("_test_seeded", "Seed-dependent mean (tests only).",
          defaults={"n": 32, "sleep_s": 0.0, "interrupt_reruns": False},
          facts=[FactSpec("draw.mean", "number"), FactSpec("ctx.robustness_run", "bool"),
                 FactSpec("ctx.timing_enabled", "bool")])
def _seeded(ctx: CaseContext) -> CaseOutput:
    if ctx.robustness_run and ctx.params["interrupt_reruns"]:
        raise KeyboardInterrupt  # as Ctrl-C during the robustness reruns
    out = CaseOutput()
    x = torch.randn(ctx.params["n"], generator=ctx.generator(), dtype=torch.float64)
    out.fact("draw.mean", float(x.mean()))
    out.fact("ctx.robustness_run", ctx.robustness_run)
    out.fact("ctx.timing_enabled", ctx.timing_enabled)
    if ctx.params["sleep_s"]:
        time.sleep(ctx.params["sleep_s"])
    return out


def _suite(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


_CLAIMS = """
    claims:
      - {id: flips, text: "mean > 0", source: "test", rule: {fact: draw.mean, op: ">", value: 0.0}}
      - {id: stable, text: "mean > -100", source: "test", rule: {fact: draw.mean, op: ">", value: -100.0}}
      - {id: main-only, text: "not a rerun", source: "test", rule: {fact: ctx.robustness_run, op: "==", value: false}}
"""


def _expected_positive(seeds: range) -> int:
    # independently of the runner: the same draw the case makes for each seed
    return sum(float(torch.randn(32, generator=torch.Generator().manual_seed(s), dtype=torch.float64).mean()) > 0
               for s in seeds)


def test_suite_robustness_key_defaults_cap_and_errors(tmp_path):
    path = _suite(tmp_path, "defaults: {robustness: {seeds: 5}}\ncases:\n  - {name: a, kind: _test_seeded}\n"
                            "  - {name: b, kind: _test_seeded, robustness: {seeds: 3, budget_s: 2}}\n"
                            "  - {name: c, kind: _test_seeded, robustness: {seeds: 1}}\n")
    a, b, c = load_suite(str(path)).cases
    assert (a.robustness.seeds, b.robustness.seeds, b.robustness.budget_s, c.robustness.seeds) == (5, 3, 2.0, 1)
    p1 = _suite(tmp_path, "cases:\n  - {name: a, kind: _test_seeded}\n", "off.yaml")
    assert load_suite(str(p1)).cases[0].robustness.seeds == 1  # off unless a suite asks
    assert load_suite("default").cases[0].robustness.seeds >= 20  # the default suite asks for at least 20
    for bad, key in ((0, "seeds"), (ROBUSTNESS_MAX_SEEDS + 1, "seeds"), ("'x'", "seeds")):
        p = _suite(tmp_path, f"cases: [{{name: a, kind: _test_seeded, robustness: {{seeds: {bad}}}}}]", "bad.yaml")
        with pytest.raises(UsageError, match=rf"case 'a'.*robustness'?.*{key}"):
            load_suite(str(p))
    p = _suite(tmp_path, "cases: [{name: a, kind: _test_seeded, robustness: {seeds: 2, budget_s: 0}}]", "b2.yaml")
    with pytest.raises(UsageError, match="budget_s"):
        load_suite(str(p))
    p = _suite(tmp_path, "cases: [{name: a, kind: _test_seeded, robustness: {sedes: 2}}]", "b3.yaml")
    with pytest.raises(UsageError, match="unknown key 'sedes'"):
        load_suite(str(p))


def test_flipping_claim_is_fragile_stable_one_is_not(tmp_path):
    n = 12
    expected = _expected_positive(range(n))
    assert 0 < expected < n  # the premise: the fact's sign really changes over these seeds
    path = _suite(tmp_path, f"cases:\n  - name: s\n    kind: _test_seeded\n    devices: [cpu]\n"
                            f"    robustness: {{seeds: {n}}}\n{_CLAIMS}")
    run, out = run_suite(load_suite(str(path)), tmp_path / "out", command=["test"])
    claims = {c["id"]: c for c in run.claims}
    flips, stable, main_only = claims["flips"], claims["stable"], claims["main-only"]
    assert flips["robustness"]["seeds"] == n and flips["fragile"] is True
    assert flips["robustness"]["verdicts"] == {"holds": expected, "does not hold": n - expected}
    assert list(flips["robustness"]["per_seed"]) == [str(s) for s in range(n)]
    assert stable["fragile"] is False and stable["robustness"]["verdicts"] == {"holds": n}
    # reruns were told they are reruns (and ran with timing off); the main run was not
    assert main_only["robustness"]["per_seed"]["0"] == "holds"
    assert set(list(main_only["robustness"]["per_seed"].values())[1:]) == {"does not hold"}
    # the archive carries it, and both reports show it
    data = load_dict(out)
    assert {c["id"]: c.get("fragile") for c in data["claims"]} == {"flips": True, "stable": False, "main-only": True}
    note = f"fragile (holds {expected}/{n}, does not hold {n - expected}/{n})"
    assert robustness_note(flips) == note
    assert note in render_html(data) and note in render_markdown(data)
    assert f"same verdict on every seed measured ({n} seeds): holds {n}/{n}" in render_markdown(data)
    assert any("Robustness: the claims were also judged on seeds 1-11" in x for x in data["cases"][0]["notes"])


def test_robustness_note_says_how_many_seeds_measured_the_claim():
    def note(**verdicts):
        return robustness_note({"robustness": {"seeds": sum(verdicts.values()), "fragile": False,
                                               "verdicts": {k.replace("_", " "): v for k, v in verdicts.items()}}})

    assert note(holds=5) == "same verdict on every seed measured (5 seeds): holds 5/5"
    assert note(holds=3, not_measurable_here=2) == ("same verdict on every seed measured (3 of 5 seeds): holds 3/5, "
                                                     "not measurable here 2/5")
    # a timing claim: only the main run measures it (reruns run with timing off)
    assert note(holds=1, not_measurable_here=13) == ("not judged over seeds (measured on 1 of 14 seeds): holds 1/14, "
                                                      "not measurable here 13/14")


def test_reruns_have_timing_off_and_the_flag(tmp_path):
    path = _suite(tmp_path, "cases:\n  - name: s\n    kind: _test_seeded\n    devices: [cpu]\n"
                            "    robustness: {seeds: 3}\n    claims:\n"
                            "      - {id: t, text: t, source: t, rule: {fact: ctx.timing_enabled, op: '==', "
                            "value: true}}\n")
    run, _ = run_suite(load_suite(str(path)), tmp_path / "out", command=["test"])
    assert run.claims[0]["robustness"]["per_seed"] == {"0": "holds", "1": "does not hold", "2": "does not hold"}


def test_budget_stops_starting_seeds(tmp_path):
    path = _suite(tmp_path, "cases:\n  - name: s\n    kind: _test_seeded\n    devices: [cpu]\n"
                            "    params: {sleep_s: 0.05}\n    robustness: {seeds: 20, budget_s: 0.01}\n" + _CLAIMS)
    run, _ = run_suite(load_suite(str(path)), tmp_path / "out", command=["test"])
    # the first rerun starts (budget not yet spent), takes 0.05 s, and no further seed is started
    assert run.claims[0]["robustness"]["seeds"] == 2


def test_without_robustness_no_key_and_old_results_render():
    data = json.loads(FIXTURE.read_text())
    assert all("robustness" not in c for c in data.get("claims", []))
    page, md = render_html(data), render_markdown(data)
    assert "fragile" not in md and "same verdict on every seed" not in page


def test_existing_case_claim_near_its_measured_value_is_fragile(tmp_path):
    """fc_vs_conv2d_1x1 on tiny sizes: a threshold at the median of a seed-dependent fact (the largest |logit|,
    which follows the input drawn from the seed) flips over seeds; the same fact against 0 does not."""
    tiny = ("{batch_size: 2, samples: 2, input_dim: 8, widths: [4, 4, 8], num_classes: 2, "
            "variants: [{activation: elu, init: 1.0}]}")
    fact = "fwd.elu_w1.logits.value_max_abs"
    info = cases.get("fc_vs_conv2d_1x1")
    params = {**info.defaults, "batch_size": 2, "samples": 2, "input_dim": 8, "widths": [4, 4, 8],
              "num_classes": 2, "variants": [{"activation": "elu", "init": 1.0}]}
    n = 4
    values = [info.run(CaseContext(name="t", params=params, device=torch.device("cpu"), dtype=torch.float32,
                                   seed=s, timing_enabled=False)).facts[fact] for s in range(n)]
    assert len(set(values)) == n  # the fact follows the seed
    threshold = statistics.median(values)
    path = _suite(tmp_path, f"cases:\n  - name: fc\n    kind: fc_vs_conv2d_1x1\n    devices: [cpu]\n"
                            f"    timing: {{enabled: false}}\n    params: {tiny}\n    robustness: {{seeds: {n}}}\n"
                            f"    claims:\n"
                            f"      - {{id: near, text: t, source: t, rule: {{fact: {fact}, op: '>', "
                            f"value: {threshold!r}}}}}\n"
                            f"      - {{id: far, text: t, source: t, rule: {{fact: {fact}, op: '>', value: 0.0}}}}\n")
    run, _ = run_suite(load_suite(str(path)), tmp_path / "out", command=["test"])
    near, far = run.claims
    above = sum(v > threshold for v in values)
    assert near["fragile"] is True
    assert near["robustness"]["verdicts"] == {"holds": above, "does not hold": n - above}
    assert far["fragile"] is False and far["robustness"]["verdicts"] == {"holds": n}


def test_interrupt_during_reruns_keeps_the_main_verdict(tmp_path):
    path = _suite(tmp_path, "cases:\n  - name: s\n    kind: _test_seeded\n    devices: [cpu]\n"
                            "    params: {interrupt_reruns: true}\n    robustness: {seeds: 5}\n" + _CLAIMS)
    run, out = run_suite(load_suite(str(path)), tmp_path / "out", command=["test"])
    data = load_dict(out)
    assert run.status == data["status"] == "interrupted" and len(data["cases"]) == 1
    stable = next(c for c in data["claims"] if c["id"] == "stable")
    assert stable["verdict"] == "holds" and "robustness" not in stable  # judged on the main run, no reruns
