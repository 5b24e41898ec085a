"""Fleet compare: fingerprints of comparison bits, the N-run screen (OK / DIFFERS / SLOWER / ERROR), --fail-on,
directories and fleet archives as inputs, merge, --device all, and the size of its reports at 256 runs.

The differing runs are real: the tiny suite run with one intra-op thread instead of two gives other bits for
shared_kernel_conv (its convolutions split their reductions by thread count) and, on some CPUs (an Intel Xeon
with AVX-512; not an AMD EPYC with MKL), for fc_vs_conv2d_1x1 too; with oneDNN off shared_kernel_conv differs;
optimizer_drift runs with one thread inside the case whatever the suite says, so its bits agree. The tests
measure which cases differ on this machine (``_thread_cases``) and rely on that, not on a list.
"""

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from reportgen import fleet, runner
from reportgen.cli import main
from reportgen.measure.numerics import compare, fingerprint
from reportgen.render import compare as cmp
from reportgen.render.files import load_input
from reportgen.suite import load_suite

SUITE = Path(__file__).parent / "fixtures" / "fleet_suite.yaml"
FIXTURE = Path(__file__).parent / "fixtures" / "results_v1.json"


def _suite(tmp: Path, name: str, settings: dict) -> Path:
    data = yaml.safe_load(SUITE.read_text())
    data["defaults"]["settings"] = settings
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs of the tiny suite: two with the same settings (two threads), one with one thread, one with
    oneDNN off."""
    tmp = tmp_path_factory.mktemp("fleet")
    out = {}
    for name, settings in [("base", {"num_threads": 2}), ("again", {"num_threads": 2}),
                           ("one_thread", {"num_threads": 1}), ("no_onednn", {"num_threads": 2, "mkldnn_enabled": False})]:
        _, path = runner.run_suite(load_suite(str(_suite(tmp, name, settings))), tmp / "out", command=["test"],
                                   run_id=name)
        out[name] = load_input(path)
    return out


def _fps(run):
    return {c["id"]: [(x["actual_sha256"], x["expected_sha256"]) for x in c["comparisons"]] for c in run["cases"]}


def _differing(a, b):
    fa, fb = _fps(a), _fps(b)
    return sorted(k.rsplit("/", 2)[0] for k in fa if fa[k] != fb.get(k))


# ------------------------------------------------------------------------------------------------ fingerprints

def test_fingerprint_is_the_bits_shape_and_dtype_recorded():
    x = torch.randn(3, 5)
    c = compare(x, x.double(), 1e-6, name="n", actual_label="a", expected_label="b").to_dict()
    assert c["actual_sha256"] == fingerprint(x) and c["expected_sha256"] == fingerprint(x.double())
    assert c["shape"] == (3, 5) and c["dtype"] == "float32" and c["expected_dtype"] == "float64"
    assert fingerprint(x.t()) == fingerprint(x.t().contiguous()) != fingerprint(x)  # bytes in logical order
    y = x.clone()
    y[1, 2] = torch.nextafter(y[1, 2], torch.tensor(10.0))  # one ULP in one element
    assert fingerprint(y) != fingerprint(x)
    assert fingerprint(torch.tensor([0.0])) != fingerprint(torch.tensor([-0.0]))  # bits, not values
    assert len(fingerprint(torch.zeros(2, dtype=torch.bfloat16))) == 64
    assert fingerprint(torch.tensor(1.5)) == fingerprint(torch.tensor([1.5]))  # a 0-dim tensor: its one value


def _thread_cases(runs) -> list[str]:
    """The cases whose bits the thread count changes on this machine (sorted)."""
    return _differing(runs["base"], runs["one_thread"])


def test_thread_count_and_onednn_really_change_bits_here(runs):
    assert _differing(runs["base"], runs["again"]) == []  # the same settings give the same bits
    changed = _thread_cases(runs)
    assert "shared_kernel_conv" in changed and set(changed) <= {"fc_vs_conv2d_1x1", "shared_kernel_conv"}
    assert "shared_kernel_conv" in _differing(runs["base"], runs["no_onednn"])
    assert "optimizer_drift" not in _differing(runs["base"], runs["no_onednn"])


# ------------------------------------------------------------------------------------------------ fleet screen

def _fleet(runs, n=64, outliers=None):
    """n runs: copies of the base run (as if each node ran it), the outliers at the given positions."""
    outliers = outliers or {}
    items = []
    for i in range(n):
        r = copy.deepcopy(outliers.get(i, runs["base"]))
        r["run_id"] = f"node{i:03d}"
        items.append((f"node{i:03d}/results.json", r))
    return items


def test_64_run_fleet_names_exactly_the_genuine_outliers_by_run_and_case(runs):
    outliers = {7: runs["one_thread"], 33: runs["one_thread"], 50: runs["no_onednn"]}
    model = fleet.fleet_model(_fleet(runs, 64, outliers))
    bad = {m["label"]: m for m in model["members"] if m["status"] != fleet.OK}
    assert set(bad) == {"node007", "node033", "node050"}
    assert all(m["status"] == fleet.DIFFERS for m in bad.values())
    for label in ("node007", "node033"):
        bits = {r["case"] for r in bad[label]["reasons"] if r["kind"] == "bits-env"}
        assert bits == {f"{c}/float32" for c in _thread_cases(runs)}
        # their environment differs from the majority: the cause is named, not "possible corruption"
        cause = " ".join(c for r in bad[label]["reasons"] if r["kind"] == "bits-env" for c in r["cause"])
        assert "case.settings.num_threads=1 (majority 2)" in cause
        assert not any(r["kind"] == "bits" for r in bad[label]["reasons"])
    assert "mkldnn.enabled=false" in " ".join(r["text"] for r in bad["node050"]["reasons"])
    assert model["counts"] == {"OK": 61, "DIFFERS": 3, "SLOWER": 0, "ERROR": 0}
    assert [m["label"] for m in model["members"][:3]] == ["node007", "node033", "node050"]  # worst first
    cases = model["cases"]
    row = next(m for m in model["members"] if m["label"] == "node007")
    assert row["cells"][cases.index(f"{_thread_cases(runs)[0]}/float32")] == "env"
    assert row["cells"][cases.index("optimizer_drift/float32")] == "none"  # no comparisons in this case


def test_bits_differing_with_the_same_environment_are_possible_corruption(runs):
    # One node's stored bits of one comparison differ while everything it records is the majority's: no
    # environment explains it. (A changed hash stands for a device that computed other bits.)
    odd = copy.deepcopy(runs["base"])
    case = next(c for c in odd["cases"] if c["case"] == "shared_kernel_conv")
    case["comparisons"][0]["actual_sha256"] = fingerprint(torch.tensor([1.0]))
    model = fleet.fleet_model(_fleet(runs, 16, {4: odd}))
    bad = [m for m in model["members"] if m["status"] != fleet.OK]
    assert [m["label"] for m in bad] == ["node004"]
    (reason,) = bad[0]["reasons"]
    assert reason["kind"] == "bits" and "possible corruption" in reason["text"]
    assert reason["comparisons"] == [case["comparisons"][0]["name"]]
    assert "15 of 16 devices with the same GPU model" in reason["text"]


def test_timing_outlier_is_slower_unless_noisy(runs):
    slow = copy.deepcopy(runs["base"])
    case = next(c for c in slow["cases"] if c["case"] == "shared_kernel_conv")
    for t in case["timings"][:1]:
        t["median_s"] *= 3
        t["noisy"] = False
    items = _fleet(runs, 8, {2: slow})
    # the others differ a little, as real timings do, so that the MAD is not zero
    for i, (_, r) in enumerate(items):
        if i != 2:
            c = next(c for c in r["cases"] if c["case"] == "shared_kernel_conv")
            c["timings"][0]["median_s"] *= 1 + 0.01 * i
    model = fleet.fleet_model(items)
    bad = [m for m in model["members"] if m["status"] != fleet.OK]
    assert [(m["label"], m["status"]) for m in bad] == [("node002", fleet.SLOWER)]
    assert 2.7 < bad[0]["reasons"][0]["ratio"] < 3.0  # 3x its own, against a median of 1.00-1.07x the others
    slow_case = next(c for c in items[2][1]["cases"] if c["case"] == "shared_kernel_conv")
    slow_case["timings"][0]["noisy"] = True  # the run itself said this timing was noisy
    model = fleet.fleet_model(items)
    assert all(m["status"] == fleet.OK for m in model["members"])
    assert any(r["kind"] == "noisy" for m in model["members"] for r in m["reasons"])


def test_error_and_env_field_differences(runs):
    broken = copy.deepcopy(runs["base"])
    broken["cases"][0]["status"], broken["cases"][0]["reason"] = "error", "RuntimeError: boom"
    driver = copy.deepcopy(runs["base"])
    driver["environment"]["torch"]["version"] = "2.99.0"
    model = fleet.fleet_model(_fleet(runs, 5, {1: broken, 3: driver}))
    status = {m["label"]: m["status"] for m in model["members"]}
    assert status == {"node000": "OK", "node001": "ERROR", "node002": "OK", "node003": "DIFFERS", "node004": "OK"}
    text = " ".join(r["text"] for m in model["members"] for r in m["reasons"])
    assert "RuntimeError: boom" in text and "torch.version=2.99.0 (majority 2.13.0+cpu, 4 of 5)" in text


def test_old_archives_without_fingerprints_still_load_and_compare():
    base = load_input(FIXTURE)
    assert "actual_sha256" not in base["cases"][0]["comparisons"][0]
    items = [(f"r{i}", dict(copy.deepcopy(base), run_id=f"r{i}")) for i in range(3)]
    model = cmp.compare_inputs(items)
    assert "nofp" in model["fleet"]["members"][0]["cells"]
    assert cmp.render_compare_html(model) and cmp.render_compare_markdown(model)


# ------------------------------------------------------------------------------------------------ CLI and outputs

def _write_fleet(tmp, runs, n, outliers):
    for src, r in _fleet(runs, n, outliers):
        p = tmp / "fleet" / src
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(r))
    return tmp / "fleet"


def test_compare_cli_on_a_directory_with_fail_on(runs, tmp_path):
    d = _write_fleet(tmp_path, runs, 6, {2: runs["one_thread"]})
    res = CliRunner().invoke(main, ["compare", str(d), "--out", str(tmp_path / "o"), "--format", "html,md",
                                    "--fail-on", "differs,error"])
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert lines[0] == "Fleet: 6 device(s) in 6 run(s): 5 OK, 1 DIFFERS, 0 SLOWER, 0 ERROR"
    assert lines[1].startswith(f"  DIFFERS node002: {_thread_cases(runs)[0]}/float32: bits differ")
    assert not any(line.startswith("  DIFFERS node00") for line in lines[2:6])  # one line per non-OK run
    html = (tmp_path / "o" / "compare.html").read_text()
    assert 'class="heatmap"' in html and "<script>" not in html.replace('<script type="application/json"', "")
    ok = CliRunner().invoke(main, ["compare", str(d), "--format", "none", "--fail-on", "slower"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, ["compare", str(d), "--format", "none", "--fail-on", "weird"])
    assert bad.exit_code == 2 and "--fail-on" in bad.output


def test_256_runs_html_readable_and_markdown_under_the_limit(runs):
    outliers = {i: runs["one_thread"] for i in range(0, 256, 9)}
    model = cmp.compare_inputs(_fleet(runs, 256, outliers))
    assert "cases" not in model  # no 256-column pairwise tables
    md = cmp.render_compare_markdown(model)
    assert len(md) <= 65_000 and "29 DIFFERS" in md
    html = cmp.render_compare_html(model)
    assert html == cmp.render_compare_html(cmp.compare_inputs(_fleet(runs, 256, outliers)))  # deterministic
    assert html.count('<td class="hm hm-env"') == len(_thread_cases(runs)) * len(outliers)
    assert len(html) < 3_000_000


def test_merge_joins_rank_archives_and_compare_reads_the_result(runs, tmp_path):
    d = _write_fleet(tmp_path, runs, 3, {1: runs["no_onednn"]})
    out = tmp_path / "merged.json"
    res = CliRunner().invoke(main, ["merge", str(d), "--out", str(out)])
    assert res.exit_code == 0, res.output
    archive = json.loads(out.read_text())
    assert archive["kind"] == fleet.FLEET_KIND and len(archive["runs"]) == 3
    items = fleet.load_inputs([str(out)])
    assert [s for s, _ in items] == [f"{out}#runs[{i}]" for i in range(3)]
    again = CliRunner().invoke(main, ["merge", str(d), "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    render = CliRunner().invoke(main, ["render", str(out), "--out", str(tmp_path / "r")])
    assert render.exit_code == 2 and "a fleet archive of 3 runs" in render.output


def test_one_run_of_several_devices_is_a_fleet_of_its_devices(runs, tmp_path):
    # What `--device all` writes on a machine with three GPUs: one run, each case once per device (here the
    # CPU run's results relabelled, the third device's bits those of the one-thread run).
    run = copy.deepcopy(runs["base"])
    odd = {c["id"]: c for c in runs["one_thread"]["cases"]}
    run["cases"] = [dict(copy.deepcopy(odd[c["id"]] if i == 2 else c), device=f"cuda:{i}",
                         id=c["id"].replace("/cpu/", f"/cuda:{i}/")) for i in range(3) for c in run["cases"]]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(run))
    res = CliRunner().invoke(main, ["compare", str(path), "--format", "none", "--fail-on", "differs"])
    assert res.exit_code == 1, res.output
    assert res.output.splitlines()[0] == "Fleet: 3 device(s) in 1 run(s): 2 OK, 1 DIFFERS, 0 SLOWER, 0 ERROR"
    assert res.output.splitlines()[1].startswith(f"  DIFFERS base cuda:2: {_thread_cases(runs)[0]}/float32")


def test_device_all_is_every_gpu_or_the_cpu(tmp_path):
    suite = load_suite(str(SUITE)).select(("optimizer_drift",)).override(("all",), (), None)
    ids = [j.id for j in runner.plan(suite)]
    if torch.cuda.is_available():
        assert ids == [f"optimizer_drift/cuda:{i}/float32" for i in range(torch.cuda.device_count())]
    else:
        assert ids == ["optimizer_drift/cpu/float32"]
    bad = CliRunner().invoke(main, ["run", "--suite", str(SUITE), "--device", "every", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "all" in bad.output


def test_gpu_members_judged_on_gpu_fields_not_the_host_cpu(runs):
    # Five GPU nodes as their archives record them (the CPU run's results relabelled as cuda:0): another host CPU
    # model does not set a GPU apart; another driver does, and is named.
    def gpu_run(cpu="Intel Xeon", driver="550.54.15"):
        r = copy.deepcopy(runs["base"])
        for c in r["cases"]:
            c["device"], c["id"] = "cuda:0", c["id"].replace("/cpu/", "/cuda:0/")
        r["environment"]["cpu"]["model"] = cpu
        r["environment"]["cuda"] = {"available": True, "runtime": "12.8", "devices": [
            {"index": 0, "name": "NVIDIA H100 80GB HBM3", "capability": "9.0", "uuid": f"GPU-{cpu}-{driver}",
             "nvml": {"driver": driver, "ecc_mode": [1, 1], "temperature_c": 40}}]}
        return r
    model = fleet.fleet_model(_fleet(runs, 5, {0: gpu_run(), 1: gpu_run(cpu="AMD EPYC"), 2: gpu_run(),
                                                3: gpu_run(driver="535.104"), 4: gpu_run()}))
    status = {m["label"]: m["status"] for m in model["members"]}
    assert status == {"node000": "OK", "node001": "OK", "node002": "OK", "node003": "DIFFERS", "node004": "OK"}
    bad = next(m for m in model["members"] if m["label"] == "node003")
    assert [r["key"] for r in bad["reasons"]] == ["gpu.nvml.driver"] and bad["gpu"] == "NVIDIA H100 80GB HBM3"


def test_no_majority_of_bits_is_a_note_not_a_verdict_on_each_device(runs):
    # Four devices, same environment, four different fingerprints of one comparison (what nondeterministic
    # kernels give): no device can be called the odd one.
    items = _fleet(runs, 4)
    for i, (_, r) in enumerate(items):
        c = next(c for c in r["cases"] if c["case"] == "fc_vs_conv2d_1x1")
        c["comparisons"][0]["actual_sha256"] = fingerprint(torch.tensor([float(i)]))
    model = fleet.fleet_model(items)
    assert model["counts"]["OK"] == 4
    col = model["cases"].index("fc_vs_conv2d_1x1/float32")
    assert {m["cells"][col] for m in model["members"]} == {"nomaj"}
    (note,) = model["notes"]
    assert note.startswith("fc_vs_conv2d_1x1/float32: 4 device(s) in 1 environment(s) have no majority")
