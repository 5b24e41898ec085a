import pytest

from reportgen.errors import UsageError
from reportgen.suite import bundled_suites, load_suite


def write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return str(p)


def test_bundled_suites_load():
    suites = bundled_suites()
    assert {"default", "quick"} <= set(suites)
    for name in suites:
        s = load_suite(name)
        assert s.cases


@pytest.mark.parametrize("body, expected", [
    ("cases: [{name: linear_vs_conv1d, params: {batchh: 3}}]", "case 'linear_vs_conv1d': key 'params.batchh'"),
    ("cases: [{name: linear_vs_conv1d, params: {batch: many}}]", "key 'params.batch': expected an integer"),
    ("cases: [{name: nope}]", "case 'nope': key 'kind': unknown case kind 'nope'"),
    ("cases: [{name: linear_vs_conv1d, dtypes: [float8]}]", "key 'dtypes': 'float8' is not one of"),
    ("cases: [{name: linear_vs_conv1d, devices: [tpu]}]", "key 'devices': 'tpu' is not a device"),
    ("cases: [{name: linear_vs_conv1d, colour: red}]", "unknown key 'colour'"),
    ("cases: [{name: linear_vs_conv1d, timing: {rounds: x}}]", "key 'timing'.rounds: expected an integer"),
    ("cases: []", "key 'cases': expected a non-empty list"),
    ("cases: [{name: a, kind: linear_vs_conv1d}, {name: a, kind: linear_vs_conv1d}]", "duplicate case name"),
    ("cases: [{name: linear_vs_conv1d\n", "invalid YAML (line"),
    # the suite name becomes the default run directory's name: no path separators, no markup
    ('name: "a/../../../escaped"\ncases: [{name: linear_vs_conv1d}]',
     "key 'name': 'a/../../../escaped' is not a plain"),
    ('name: "<script>x</script>"\ncases: [{name: linear_vs_conv1d}]', "key 'name': '<script>x</script>' is not"),
    ('name: ".."\ncases: [{name: linear_vs_conv1d}]', "key 'name': '..' is not a plain name"),
    # values the type check lets through but the case cannot run with
    ("cases: [{name: linear_vs_conv1d, timing: {rounds: -3}}]", "key 'timing'.rounds: must be >= 1, got -3"),
    ("cases: [{name: linear_vs_conv1d, timing: {rounds: 0}}]", "key 'timing'.rounds: must be >= 1, got 0"),
    ("cases: [{name: linear_vs_conv1d, timing: {min_sample_s: -1}}]", "key 'timing'.min_sample_s: must be >= 0"),
    ("defaults: {timing: {rounds: 0}}\ncases: [{name: linear_vs_conv1d}]", "defaults.timing.rounds: must be >= 1"),
    ("cases: [{name: linear_vs_conv1d, params: {batch: -1}}]",
     "case 'linear_vs_conv1d': key 'params.batch': must be a positive integer"),
    ("cases: [{name: linear_vs_conv1d, params: {length: 0}}]", "key 'params.length': must be a positive integer"),
    ("cases: [{name: linear_vs_conv1d, params: {growth_depths: [1, -2]}}]",
     "key 'params.growth_depths[1]': must be a positive integer"),
    ("cases: [{name: optimizer_drift, params: {steps: -1}}]", "key 'params.steps': must be a non-negative integer"),
    ("cases: [{name: fc_vs_conv2d_1x1, params: {variants: [{activation: elu}]}}]",
     "key 'params.variants[0]': expected a mapping with keys activation, init"),
    ("cases: [{name: fc_vs_conv2d_1x1, params: {variants: [3]}}]", "key 'params.variants[0]': expected a mapping"),
    ("cases: [{name: fc_vs_conv2d_1x1, params: {variants: [{activation: elu, init: x}]}}]",
     "key 'params.variants[0].init': expected a number"),
    ("cases: [{name: conv1d_cross_framework, params: {same_configs: [[2, 0]]}}]",
     "key 'params.same_configs[0][1]': must be a positive integer"),
    # values only the case knows to be wrong: its validate hook runs at load
    ("cases: [{name: fc_vs_conv2d_1x1, params: {variants: [{activation: relu, init: 1}]}}]",
     "params.variants[0].activation: 'relu' is not one of"),
    ("cases: [{name: conv1d_semantics, params: {init_groups: 7}}]", "params.init_groups: 7 must divide"),
    ("cases: [{name: conv1d_semantics, params: {same_length: 4}}]", "params.same_length (4) must exceed"),
    ("cases: [{name: linear_vs_conv1d, params: {growth_depths: []}}]", "params.growth_depths: expected a non-empty"),
])
def test_validation_errors_name_file_case_and_key(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(UsageError) as err:
        load_suite(path)
    msg = str(err.value)
    assert path in msg and expected in msg and "\n" not in msg


def test_defaults_and_overrides(tmp_path):
    path = write(tmp_path, "defaults: {dtypes: [bfloat16], seed: 7}\ncases: [{name: linear_vs_conv1d, "
                           "params: {batch: 2}}]")
    s = load_suite(path)
    c = s.cases[0]
    assert c.dtypes == ("bfloat16",) and c.seed == 7 and c.params["batch"] == 2
    assert c.params["length"] == 256  # untouched params keep the case's defaults
    o = s.override(devices=("cpu",), dtypes=("float32",), seed=1).cases[0]
    assert o.devices == ("cpu",) and o.dtypes == ("float32",) and o.seed == 1
    with pytest.raises(UsageError, match="--case 'x'"):
        s.select(("x",))


def test_missing_suite_file_is_usage_error():
    with pytest.raises(UsageError, match="not found"):
        load_suite("does/not/exist.yaml")


def test_case_settings_validated_and_applied(tmp_path):
    import json

    import torch
    from click.testing import CliRunner

    from reportgen.cli import main

    bad = write(tmp_path, "cases: [{name: linear_vs_conv1d, settings: {num_threadz: 1}}]")
    with pytest.raises(UsageError, match="key 'settings'.num_threadz: unknown setting"):
        load_suite(bad)
    bad = write(tmp_path, "cases: [{name: linear_vs_conv1d, settings: {num_threads: one}}]")
    with pytest.raises(UsageError, match="num_threads: expected an integer"):
        load_suite(bad)
    before = torch.get_num_threads()
    good = tmp_path / "g.yaml"
    good.write_text("cases: [{name: linear_vs_conv1d, devices: [cpu], settings: {num_threads: 1, "
                    "deterministic_algorithms: true}, timing: {enabled: false}, params: {batch: 2, length: 4, "
                    "growth_depths: [1], growth_in_features: [8], growth_rows: 4}}]")
    result = CliRunner().invoke(main, ["run", "--suite", str(good), "--out", str(tmp_path), "--run-id", "s"])
    assert result.exit_code == 0, result.output
    case = json.loads((tmp_path / "s" / "results.json").read_text())["cases"][0]
    assert case["settings"]["num_threads"] == 1 and case["settings"]["deterministic_algorithms"] is True
    assert torch.get_num_threads() == before and not torch.are_deterministic_algorithms_enabled()


def test_plan_names_the_device_that_will_run(tmp_path):
    import torch

    from reportgen.runner import plan, resolve_device
    suite = load_suite(write(tmp_path, "cases: [{name: linear_vs_conv1d, devices: [auto, cpu, cuda, 'cuda:0']}]"))
    ids = [job.id for job in plan(suite)]
    if torch.cuda.is_available():
        # auto and cuda are the current device by its index; cuda and cuda:0 collapse when 0 is current
        current = f"cuda:{torch.cuda.current_device()}"
        assert f"linear_vs_conv1d/{current}/float32" in ids and "linear_vs_conv1d/cuda/float32" not in ids
        assert resolve_device("cuda")[0] == torch.device(current)
    else:
        # auto is cpu (one job with cpu); a CUDA device stays as named and is skipped with its reason
        assert ids == ["linear_vs_conv1d/cpu/float32", "linear_vs_conv1d/cuda/float32",
                       "linear_vs_conv1d/cuda:0/float32"]
        device, why = resolve_device("cuda")
        assert device is None and why.startswith("CUDA not available")


def test_zero_where_it_switches_a_part_off_and_plain_names_still_load(tmp_path):
    s = load_suite(write(tmp_path, "name: my-suite_2.b\ncases: [{name: optimizer_drift, params: {steps: 0, "
                                   "thread_check_seeds: 0, mse_sgd_lrs: []}}, {name: shared_kernel_conv, "
                                   "params: {train_steps: 0}}, {name: fc_vs_conv2d_1x1, params: {variants: "
                                   "[{activation: sigmoid, init: 1}]}}]"))
    assert s.name == "my-suite_2.b" and s.cases[0].params["steps"] == 0 and s.cases[1].params["train_steps"] == 0
    assert s.cases[2].params["variants"] == [{"activation": "sigmoid", "init": 1.0}]


def test_suite_file_not_utf8_or_a_directory_is_one_line(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="b.yaml: not UTF-8 text"):
        load_suite(str(bad))
    with pytest.raises(UsageError, match="is a directory"):
        load_suite(str(tmp_path))


def test_a_suite_name_with_spaces_loads_and_its_run_id_is_a_plain_directory(tmp_path):
    from reportgen.runner import new_run_id
    s = load_suite(write(tmp_path, "name: Nightly CPU check\ncases: [{name: optimizer_drift}]"))
    assert s.name == "Nightly CPU check"
    assert "Nightly-CPU-check" in new_run_id(s.name) and " " not in new_run_id(s.name)
    # min_sample_s 0: one call per sample, which the timer handles
    assert load_suite(write(tmp_path, "name: q\ncases: [{name: optimizer_drift, timing: {min_sample_s: 0}}]")).cases
