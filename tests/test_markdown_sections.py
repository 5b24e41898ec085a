"""report.md's sections for what report.html already shows: a ``kind: pair`` result's answer and the code that ran,
the published code a case ran (folded), the launch a rank belongs to, minimum tolerances, claims' robustness.
Real runs on tiny sizes (the GELU pair of examples/, shared_kernel_conv with the conformance test's params), then
the same results edited to carry hostile or oversized data."""

import copy
import json
import re
from pathlib import Path

import pytest

import reportgen
from reportgen import runner
from reportgen.render.files import load_input
from reportgen.render.html import fmt_num, render_html
from reportgen.render.markdown import GITHUB_LIMIT, esc, render_markdown
from reportgen.results import dumps
from reportgen.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_v1.json"
EXAMPLE = ROOT / "examples" / "gelu_tanh_vs_exact.py"
HOSTILE = "<script>alert(1)</script>|`x`"
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("pair")
    res = reportgen.check(f"{EXAMPLE}:a", f"{EXAMPLE}:b", f"{EXAMPLE}:inputs", labels=(HOSTILE, "tanh"), out=out,
                          formats=("md",))
    return load_input(res.results)


@pytest.fixture(scope="module")
def published_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("published")
    suite = tmp / "tiny.yaml"
    # tests/test_facts.py TINY's shared_kernel_conv params; timing off
    suite.write_text("name: tiny\ncases:\n  - name: shared_kernel_conv\n    devices: [cpu]\n    dtypes: [float32]\n"
                     "    timing: {enabled: false}\n    params: {batch: 2, channels: 3, height: 5, width: 5, "
                     "train_steps: 3, train_report_steps: [1, 3], train_size: 4, train_batch: 2}\n")
    run, path = runner.run_suite(load_suite(str(suite)), tmp / "out", command=["pytest"])
    return run.to_dict(), load_input(path)


@pytest.fixture(scope="module")
def published_data(published_run):
    return published_run[1]


def _case(data):
    return data["cases"][0]


def _table_rows(md: str, first_cell: str) -> list[list[str]]:
    return [_CELL_SPLIT.split(line)[1:-1] for line in md.splitlines() if line.startswith(f"| {first_cell}")]


# ------------------------------------------------------------------------------------------------ pair

def test_pair_says_the_answer_first_and_the_code_that_ran(pair_data):
    md = render_markdown(pair_data)
    case = _case(pair_data)
    facts, pair = case["facts"], case["extra"]["pair"]
    # the GELU pair: different functions, the tanh side (b) farther from the reference
    assert facts["reference.same_function"] is False and facts["worse_side"] == "b"
    line = next(ln for ln in md.splitlines() if ln.startswith("a ("))
    assert line == (f"a ({esc(HOSTILE, 80)}) vs b (tanh): **{facts['verdict']}**; farther from the reference: b; "
                    f"the float64 reruns differ by {fmt_num(facts['reference.twins_max_rel'])} (relative): "
                    "**not the same function**.")
    assert md.index(line) < md.index("| comparison |")  # at the top of the result, before its numbers
    for key in ("a", "b", "inputs"):
        p = pair["provenance"][key]
        assert f"- {key}: `{p['name']}`, sha256 `{p['sha256'][:16]}`" in md


def test_pair_same_function_reads_one_function(pair_data):
    data = copy.deepcopy(pair_data)
    facts = _case(data)["facts"]
    facts.update({"reference.same_function": True, "reference.twins_max_rel": 5e-16, "verdict": "within rounding",
                  "worse_side": "a"})
    md = render_markdown(data)
    assert (f"vs b (tanh): within rounding; farther from the reference: a; the float64 reruns agree to 5.00e-16 "
            "(one function).") in md


def test_pair_that_errored_says_so(pair_data):
    data = copy.deepcopy(pair_data)
    case = _case(data)
    case.update(status="error", reason="RuntimeError: boom", comparisons=[], facts={})
    assert "a (" + esc(HOSTILE, 80) + ") vs b (tanh): **error**." in render_markdown(data)


def test_hostile_label_is_inert_and_keeps_the_table_shape(pair_data):
    md = render_markdown(pair_data)
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;\\|\\`x\\`" in md
    header = _table_rows(md, "comparison |")
    assert len(header) == 1 and header[0][-1].strip() == "min rtol / atol"
    rows = _table_rows(md, "forward")
    assert len(rows) == len(_case(pair_data)["comparisons"]) == 3
    assert all(len(r) == len(header[0]) for r in rows)  # the label's "|" did not split a cell


def test_relative_rule_rows_are_compact_and_min_tolerances_listed(pair_data):
    md = render_markdown(pair_data)
    comps = _case(pair_data)["comparisons"]
    assert all(c["rule"] == "relative" for c in comps)
    for c, row in zip(comps, _table_rows(md, "forward")):
        assert f"RMS error {fmt_num(c['error_ratio'])}× the better side's" in row[1]
        assert row[-1].strip() == f"{fmt_num(c['min_rtol'])} / {fmt_num(c['min_atol'])}"
    # the rule's statement (with its factor) once under the table, not in every row
    assert md.count(comps[0]["bound_desc"]) == 1 and len(comps[0]["bound_desc"]) > 40


# ------------------------------------------------------------------------------------------------ published

def test_published_block_has_snippet_edits_departures(published_data):
    md = render_markdown(published_data)
    pub = _case(published_data)["extra"]["published"]
    start = md.index("<details><summary>shared_kernel_conv/cpu/float32: the published code it ran")
    block = md[start: md.index("</details>", start)]
    assert "```python\n" + pub["snippet"].rstrip("\n") + "\n```" in block  # verbatim, fenced
    assert pub["edits"] and all(f"- {esc(e, 600)}" in block for e in pub["edits"])
    assert pub["departures"] and all(f"- {esc(d, 600)}" in block for d in pub["departures"])
    # this case's source is a citation, not a URL: text, escaped
    assert f"Source: {esc(pub['source'], 300)}" in block


def test_published_source_linked_only_when_http(published_data):
    data = copy.deepcopy(published_data)
    pub = _case(data)["extra"]["published"]
    pub["source"] = "javascript:alert(document.cookie)"
    md = render_markdown(data)
    assert "Source: javascript:alert(document.cookie)" in md
    assert "](javascript" not in md and "<javascript" not in md and 'href="javascript' not in md
    pub["source"] = "https://discuss.pytorch.org/t/grouped-convolution/129823"
    assert "Source: https://discuss.pytorch.org/t/grouped-convolution/129823\n" in render_markdown(data)


def test_hostile_snippet_cannot_close_its_fence_or_the_details(published_data):
    data = copy.deepcopy(published_data)
    pub = _case(data)["extra"]["published"]
    pub["snippet"] = "x = 1\n```\n</details>\n<script>alert(1)</script>\n````\ny = 2"
    pub["title"] = HOSTILE
    pub["printed"] = "\x1b[31mred\x1b[0m\n"
    md = render_markdown(data)
    assert "\x1b" not in md and "```\n[31mred[0m\n```" in md
    # the fence is longer than any backtick run inside, so the snippet stays code, verbatim
    assert "`````python\n" + pub["snippet"] + "\n`````\n" in md
    summary = next(ln for ln in md.splitlines() if ln.startswith("<details><summary>shared"))
    assert "<script>" not in summary and "&lt;script&gt;" in summary


def test_huge_snippet_is_cut_and_the_cap_holds(published_data):
    data = copy.deepcopy(published_data)
    case = _case(data)
    case["extra"]["published"]["snippet"] = "\n".join(f"y{i} = torch.randn({i})  # " + "z" * 60 for i in range(5000))
    md = render_markdown(data)
    assert len(md) <= GITHUB_LIMIT
    assert re.search(r"_Cut at \d+ of \d+ characters; report.html has all of it._", md)
    # many results with huge snippets: still under the cap, the cut announced
    data["cases"] = []
    for i in range(60):
        c = copy.deepcopy(case)
        c["id"] = f"shared_kernel_conv/cpu/float32#{i}"
        data["cases"].append(c)
    md = render_markdown(data)
    assert len(md) <= GITHUB_LIMIT and "see report.html" in md


def test_same_results_same_markdown(published_run, pair_data):
    at_run_time, from_file = published_run
    assert render_markdown(at_run_time) == render_markdown(from_file)
    assert render_markdown(json.loads(dumps(pair_data))) == render_markdown(pair_data)


# ------------------------------------------------------------------------------------------------ launch, claims

def test_launch_in_header_only_for_a_rank_of_a_launch(pair_data):
    data = copy.deepcopy(pair_data)
    env = data["environment"]
    assert env["launch"]["launcher"] == "none"  # this test process runs alone
    assert " of 1 (" not in render_markdown(data)
    assert "<h3>Launch</h3>" not in render_html(data)  # nor a Launch table in report.html
    env["launch"] = {"launcher": "slurm", "rank": 0, "world_size": 1}  # a plain run inside a job: alone too
    assert "<h3>Launch</h3>" not in render_html(data)
    env["launch"] = {"rank": 0}  # an archive without launcher / world size renders (StrictUndefined)
    assert "<h3>Launch</h3>" not in render_html(data)
    env["launch"] = {"launcher": "torchrun", "rank": 1, "world_size": 4, "local_rank": 1, "local_world_size": 2,
                     "node_rank": 0, "host": "node-a|<b>"}
    md = render_markdown(data)
    header = md.split("### Verdicts")[0]
    assert "rank 1 of 4 (torchrun, local rank 1, node 0, host node-a\\|&lt;b&gt;)" in header
    page = render_html(data)
    assert "<h3>Launch</h3>" in page and "node-a|&lt;b&gt;" in page


def test_fragile_claim_is_shown(pair_data):
    data = copy.deepcopy(load_input(FIXTURE))
    claim = data["claims"][0]
    claim["robustness"] = {"seeds": 20, "verdicts": {"holds": 14, "does not hold": 6}, "fragile": True}
    claim["fragile"] = True
    assert "**fragile (holds 14/20, does not hold 6/20)**" in render_markdown(data)


def test_old_archive_has_none_of_the_new_parts():
    data = load_input(FIXTURE)
    assert "launch" not in data["environment"]
    assert all("pair" not in c.get("extra", {}) and "published" not in c.get("extra", {}) for c in data["cases"])
    assert not any("min_atol" in x for c in data["cases"] for x in c["comparisons"])
    md = render_markdown(data)
    for new in ("Code that ran", "### Published code", "min rtol / atol", "Relative rule", " of 1 ("):
        assert new not in md
    old_header = "| comparison | verdict | max abs | max abs/bound | max ULP | bitwise equal |"
    assert old_header in md
    assert "<h3>Launch</h3>" not in render_html(data)
