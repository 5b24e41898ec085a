"""`reportgen compare`: environment diff, verdict/claim/status changes, the timing test, warnings, outputs.

The second run is the fixture (a real tiny run) with known changes applied, so every assertion knows what truly
differs; one test compares the fixture with itself, where nothing may be reported.
"""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.render import compare as cmp
from reportgen.render.files import load_input
from reportgen.render.html import render_html

FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"
OK_ID = "linear_vs_conv1d/cpu/float32"


@pytest.fixture(scope="module")
def base():
    return load_input(FIXTURE)


def _case(run, cid=OK_ID):
    return next(c for c in run["cases"] if c["id"] == cid)


def _changed(base):
    """B: one thread instead of two, a newer torch, forward Linear 200x slower, one verdict and the claim flipped,
    the errored case gone and a new one added. (The fixture's 5 real samples include a 60x outlier: only a change
    beyond it separates the samples enough for p < 0.01, which is the test doing its job.)"""
    b = copy.deepcopy(base)
    b["run_id"] = "changed"
    b["environment"]["torch"]["version"] = "2.99.0+cpu"
    b["environment"]["settings"]["num_threads"] = 1
    b["environment"]["memory"]["available_bytes"] = 1  # machine state: listed apart, never headlines
    ok = _case(b)
    ok["settings"]["num_threads"] = 1
    for t in ok["timings"]:
        t["num_threads"] = 1
        if t["name"] == "forward" and t["label"] == "Linear":
            t["samples_s"] = [200 * s for s in t["samples_s"]]
            t["median_s"] *= 200
    ok["comparisons"][0]["verdict"] = "out of bound"
    b["claims"][0]["verdict"] = "does not hold"
    b["cases"] = [c for c in b["cases"] if c["status"] != "error"]
    b["cases"].append(dict(copy.deepcopy(ok), id="new_case/cpu/float32", case="new_case"))
    return b


# ------------------------------------------------------------------------------------------------ timing test

def test_timing_change_detects_a_clear_slowdown_and_speedup():
    a = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01]
    slow = cmp.timing_change(a, [2 * x for x in a])
    assert slow["verdict"] == cmp.SLOWER and slow["p"] < 0.01 and slow["ratio"] == pytest.approx(2.0)
    assert slow["ci"][0] > 1.5
    fast = cmp.timing_change(a, [x / 2 for x in a])
    assert fast["verdict"] == cmp.FASTER and fast["ratio"] == pytest.approx(0.5)


def test_timing_change_same_samples_and_small_effect_are_no_difference():
    a = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01]
    same = cmp.timing_change(a, a)
    assert same["verdict"] == cmp.SAME and same["p"] > 0.5
    # 2 % slower, perfectly separated, many samples: significant, but below the 5 % minimum effect
    rng = np.random.default_rng(0)
    x = 1 + 0.001 * rng.standard_normal(40)
    small = cmp.timing_change(x, 1.02 * x)
    assert small["p"] < 1e-6 and small["verdict"] == cmp.SAME and "smaller than 5 %" in small["detail"]
    # the same 2 % with a 1 % minimum effect is a slowdown: the threshold decides, not the wording
    assert cmp.timing_change(x, 1.02 * x, min_effect=0.01)["verdict"] == cmp.SLOWER


def test_timing_change_too_few_samples_says_so():
    ch = cmp.timing_change([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    assert ch["verdict"] == cmp.SAME and "too few samples" in ch["detail"]
    assert cmp.min_p_value(3, 3) == pytest.approx(0.1) and cmp.min_p_value(5, 5) < 0.01


def test_timing_change_without_scipy_uses_the_bootstrap_interval(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    a = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01]
    slow = cmp.timing_change(a, [2 * x for x in a])
    assert slow["p"] is None and slow["verdict"] == cmp.SLOWER and slow["ci"][0] > 1
    assert cmp.timing_change(a, a)["verdict"] == cmp.SAME
    assert "bootstrap" in cmp.significance_method()


# ------------------------------------------------------------------------------------------------ model

def test_run_compared_with_itself_reports_nothing(base):
    m = cmp.compare_runs([base, copy.deepcopy(base)], ["a", "b"])
    s = m["summary"]
    assert m["env_diff"] == [] and m["warnings"] == []
    assert s["verdict_changes"] == [] and s["claim_changes"] == [] and s["status_changes"] == []
    assert s["timing_counts"]["B"][cmp.SAME] == len(_case(base)["timings"]) and s["timing_moved"] == []


def test_changes_are_found_and_ordered(base):
    m = cmp.compare_runs([base, _changed(base)], ["a.json", "b.json"])
    keys = [d["key"] for d in m["env_diff"]]
    assert keys == ["torch.version", "settings.num_threads"]  # torch before threads; nothing else differs
    assert [d["key"] for d in m["env_state"]] == ["memory.available_bytes"]
    s = m["summary"]
    assert [(v["id"], v["verdict"]) for v in s["verdict_changes"]] == [
        (OK_ID, ["within rounding", "out of bound"])]
    assert [c["verdict"] for c in s["claim_changes"]] == [["holds", "does not hold"]]
    assert [(t["name"], t["label"], t["verdict"]) for t in s["timing_moved"]] == [("forward", "Linear", "slower")]
    assert s["timing_moved"][0]["ratio"] == pytest.approx(200.0)
    assert set(s["only_in_some"]) == {"boom/cpu/float32", "new_case/cpu/float32"}
    assert any("num_threads differs (A: 2, B: 1)" in w for w in m["warnings"])


def test_comparisons_sharing_a_name_are_kept_apart_by_their_sides(base):
    # fc_vs_conv2d_1x1 names three pairs "…: feats" (Linear vs 1x1 Conv2d and each side vs float64): keyed by name
    # alone, compare saw only the first, and a change in the others went unreported.
    from reportgen.render.markdown import render_markdown
    a = copy.deepcopy(base)
    first = _case(a)["comparisons"][0]
    twin = dict(copy.deepcopy(first), actual="Conv1d", expected="float64 reference", name="feats")
    first.update(actual="Linear", expected="Conv1d", name="feats")
    _case(a)["comparisons"][1:1] = [twin]
    b = copy.deepcopy(a)
    _case(b)["comparisons"][1]["verdict"] = "out of bound"
    m = cmp.compare_runs([a, b], ["a", "b"])
    assert [(v["name"], v["verdict"]) for v in m["summary"]["verdict_changes"]] == [
        ("feats (Conv1d vs float64 reference)", ["within rounding", "out of bound"])]
    md = render_markdown(a)
    assert "feats (Linear vs Conv1d)" in md and "feats (Conv1d vs float64 reference)" in md


def test_status_changes_error_and_skipped(base):
    b = copy.deepcopy(base)
    ok = _case(b)
    ok.update(status="error", reason="RuntimeError: <boom>", comparisons=[], timings=[], facts={})
    m = cmp.compare_runs([base, b], ["a", "b"])
    row = next(c for c in m["cases"] if c["id"] == OK_ID)
    assert row["status"] == ["ok", "error"] and row["status_changed"]
    assert row["timings"][0]["changes"][0]["verdict"] == "missing"
    skipped = next(c for c in m["cases"] if c["status"] == ["skipped", "skipped"])
    assert not skipped["status_changed"] and skipped["timings"] == []
    assert "ok → error" in cmp.terminal_summary(m)


def test_three_inputs_are_each_compared_with_the_first(base):
    c = copy.deepcopy(base)
    for t in _case(c)["timings"]:
        t["samples_s"] = [s / 200 for s in t["samples_s"]]  # beyond the outliers (see _changed)
    m = cmp.compare_runs([base, _changed(base), c], ["a", "b", "c"])
    assert [i["label"] for i in m["inputs"]] == ["A", "B", "C"]
    row = next(r for r in m["cases"] if r["id"] == OK_ID)
    assert [ch["vs"] for ch in row["timings"][0]["changes"]] == ["B", "C"]
    assert m["summary"]["timing_counts"]["C"][cmp.FASTER] == len(row["timings"])
    assert row["comparisons"][0]["verdict"] == ["within rounding", "out of bound", "within rounding"]


def test_dtype_and_params_mismatch_warn(base):
    b = copy.deepcopy(base)
    for c in b["cases"]:
        if c["case"] == "linear_vs_conv1d":
            c["dtype"] = "bfloat16"
            c["id"] = c["id"].replace("float32", "bfloat16")
    m = cmp.compare_runs([base, b], ["a", "b"])
    assert any("linear_vs_conv1d ran in dtype float32 in A but bfloat16 in B" in w for w in m["warnings"])
    p = copy.deepcopy(base)
    _case(p)["params"]["batch"] = 99
    assert any("parameters differ" in w for w in cmp.compare_runs([base, p], ["a", "b"])["warnings"])


def test_terminal_summary_fits_one_screen_in_order(base):
    b = _changed(base)
    for i in range(60):  # many differing fields and changed comparisons must not grow the summary
        b["environment"]["packages"][f"pkg{i}"] = "1.0"
    for x in _case(b)["comparisons"]:
        x["verdict"] = "out of bound"
    text = cmp.terminal_summary(cmp.compare_runs([base, b], ["a", "b"]), report="out/compare.html")
    lines = text.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 100
    order = [next(i for i, line in enumerate(lines) if line.startswith(h))
             for h in ("Environment", "Warnings", "Verdict changes", "Timing")]
    assert order == sorted(order)
    assert "more fields in the report" in text and "torch.version" in text


def test_compare_markdown_has_the_changes_and_respects_the_limit(base):
    b = _changed(base)
    m = cmp.compare_runs([base, b], ["a", "b"])
    md = cmp.render_compare_markdown(m)
    assert "### Verdict changes: 1" in md and "**out of bound**" in md and "**slower**" in md
    assert "`torch.version`" in md
    for i in range(3000):
        b["environment"]["packages"][f"p{i}"] = "x" * 50
    big = cmp.render_compare_markdown(cmp.compare_runs([base, b], ["a", "b"]))
    assert len(big) <= 65_000 and "more fields in compare.html" in big


def test_compare_html_is_escaped_deterministic_and_draws_the_ratios(base):
    b = _changed(base)
    b["environment"]["platform"]["os"] = "<script>alert(1)</script>"
    m = cmp.compare_runs([base, b], ["a", "b"])
    page = cmp.render_compare_html(m)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("<svg") == 1 and 'id="reportgen-compare"' in page
    assert page == cmp.render_compare_html(cmp.compare_runs([base, b], ["a", "b"]))
    assert 'class="changed"' in page


def test_claims_untestable_in_every_run_are_listed_by_id(base):
    def with_claims(run, verdicts):
        r = copy.deepcopy(run)
        r["claims"] = [dict(copy.deepcopy(run["claims"][0]), id=f"c{i}", text=f"claim {i}", verdict=v)
                       for i, v in enumerate(verdicts)]
        return r
    a = with_claims(base, ["holds", "not measurable here", "not measurable here"])
    b = with_claims(base, ["holds", "not measurable here", "holds"])
    section = cmp.render_compare_html(cmp.compare_runs([a, b], ["a", "b"])).split('<h2 id="claims">')[1]
    section = section.split("<h2")[0]
    assert "Not measurable in any of these runs (1):\n<code>linear_vs_conv1d/c1</code>." in section
    assert "1 claim(s) with the same verdict in every run" in section and "claim 0" in section
    assert "claim 2" in section.split("claim verdict(s) changed")[1]  # measurable in b: a change, in the table
    assert "claim 1" not in section


def _on_device(run, device):
    r = copy.deepcopy(run)
    r["run_id"] = f"on-{device}"
    for c in r["cases"]:
        c["id"] = c["id"].replace(f"/{c['device']}/", f"/{device}/")
        c["device"] = device
    return r


def test_cpu_run_and_gpu_run_pair_results_of_the_same_case_and_dtype(base):
    # ids differ by device (linear_vs_conv1d/cpu/float32 vs .../cuda:0/float32): without pairing, a CPU-vs-GPU
    # comparison would have nothing in common
    base = copy.deepcopy(base)
    base["cases"] = [c for c in base["cases"] if c["device"] == "cpu"]  # the fixture's skipped cuda result out
    gpu = _on_device(base, "cuda:0")
    m = cmp.compare_runs([base, gpu], ["a", "b"])
    row = next(c for c in m["cases"] if c["id"] == OK_ID)
    assert row["present"] == [True, True] and row["across_devices"] and row["devices"][1] == "cuda:0"
    assert row["timings"] and all(len(t["changes"]) == 1 for t in row["timings"])
    assert any("compared across devices" in w and "cuda:0 in B" in w for w in m["warnings"])
    assert "devices " in cmp.render_compare_html(m)
    # two candidates on one side (cuda:0 and cuda:1 for the same case and dtype): ambiguous, nothing is paired
    two = copy.deepcopy(gpu)
    twin = copy.deepcopy(next(c for c in two["cases"] if c["case"] == "linear_vs_conv1d" and c["status"] == "ok"))
    twin["id"], twin["device"] = twin["id"].replace("cuda:0", "cuda:1"), "cuda:1"
    two["cases"].append(twin)
    row = next(c for c in cmp.compare_runs([base, two], ["a", "b"])["cases"] if c["id"] == OK_ID)
    assert row["present"] == [True, False]
    # the same device in both runs: paired by id, no device warning
    assert not any("across devices" in w for w in cmp.compare_runs([base, base], ["a", "b"])["warnings"])
    # a run from before result ids named the GPU index ("cuda") against a new one ("cuda:0"): the same device
    old = _on_device(base, "cuda")
    assert not any("across devices" in w for w in cmp.compare_runs([old, gpu], ["a", "b"])["warnings"])
    assert any("across devices" in w for w in cmp.compare_runs([old, _on_device(base, "cuda:1")],
                                                                ["a", "b"])["warnings"])


# ------------------------------------------------------------------------------------------------ CLI

def test_compare_cli_reads_json_and_html_and_refuses_to_overwrite(base, tmp_path):
    b = _changed(base)
    bj = tmp_path / "b.json"
    bj.write_text(json.dumps(b))
    ah = tmp_path / "report.html"
    ah.write_text(render_html(base), encoding="utf-8")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", str(ah), str(bj), "--out", str(out), "--format", "html,md"])
    assert result.exit_code == 0, result.output
    assert "Verdict changes: 1" in result.output and "slower" in result.output
    assert (out / "compare.html").exists() and (out / "compare.md").exists()
    again = CliRunner().invoke(main, ["compare", str(ah), str(bj), "--out", str(out)])
    assert again.exit_code == 2 and "compare.html: already exists" in again.output


def test_compare_cli_bad_inputs_exit_2(tmp_path):
    one = CliRunner().invoke(main, ["compare", str(FIXTURE), "--format", "none"])
    assert one.exit_code == 2 and "at least two inputs" in one.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(main, ["compare", str(FIXTURE), str(bad), "--format", "none"])
    assert result.exit_code == 2 and str(bad) in result.output and result.output.count("\n") == 1


@pytest.mark.parametrize("key, value, expected", [
    ("comparisons", "x", "key 'cases[0].comparisons': expected a list"),
    ("facts", None, "key 'cases[0].facts': expected an object, got null"),
    ("timings", [1], "key 'cases[0].timings[0]': expected an object"),
])
def test_compare_malformed_case_field_is_one_line_exit_2(tmp_path, key, value, expected):
    data = json.loads(FIXTURE.read_text())
    data["cases"][0][key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    for args in ([str(bad), str(FIXTURE)], [str(FIXTURE), str(bad)]):
        result = CliRunner().invoke(main, ["compare", *args, "--format", "none"])
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert str(bad) in result.output and expected in result.output


def _noisy(run, flag):
    for c in run["cases"]:
        for t in c.get("timings", []):
            t["noisy"] = flag
    return run


def test_noisy_timing_changes_are_marked_and_counted_in_terminal_and_markdown(base):
    b = _changed(base)  # forward · Linear 200x slower
    noisy = cmp.compare_runs([_noisy(copy.deepcopy(base), True), _noisy(b, False)], ["a", "b"])
    assert noisy["summary"]["timing_moved"][0]["noisy"] == ["A"]
    text = cmp.terminal_summary(noisy)
    row = next(line for line in text.splitlines() if line.lstrip().startswith("slower"))
    assert "noisy A" in row and "1 slower (1 noisy)" in text
    md = cmp.render_compare_markdown(noisy)
    assert "**slower** ⚠ noisy (A)" in md and "1 slower (1 noisy)" in md
    quiet = cmp.compare_runs([_noisy(copy.deepcopy(base), False), _noisy(_changed(base), False)], ["a", "b"])
    assert "noisy" not in cmp.terminal_summary(quiet) and "noisy" not in cmp.render_compare_markdown(quiet)


def test_terminal_summary_keeps_labels_whole_and_wraps_between_phrases(base):
    a, b = copy.deepcopy(base), _changed(base)
    b["run_id"] = "20260101-120000-shared-kernel-conv-suite-ab12"
    b["environment"]["cpu"]["model"] = "Intel(R) Xeon(R) Platinum 8480+ Sapphire Rapids 56-Core Processor"
    for run in (a, b):
        for t in _case(run)["timings"]:
            t["label"] = "(c) loop of single-channel convs" if t["label"] == "Linear" else t["label"]
            t["name"] = "forward+backward" if t["name"] == "forward" else t["name"]
    text = cmp.terminal_summary(cmp.compare_runs([a, b], ["a", "b"]), report="out/compare.html")
    lines = text.splitlines()
    assert len(lines) <= cmp.SCREEN_LINES and max(map(len, lines)) <= 100
    assert "(c) loop of single-channel convs" in text and "(c) …" not in text
    assert any(line.startswith(f"B: {b['run_id']} (fixture-v1, complete)") for line in lines)
    assert any("Sapphire Rapids 56-Core Processor" in line for line in lines)  # not cut mid-phrase
