"""Writes the hostile corpus next to this file (the files are committed; rerun after changing an entry).

Each entry: file name -> content. tests/test_hostile.py feeds every file through the CLI in a subprocess
(``suite_*`` to ``run --suite``, ``results_*``/``report_*`` to ``render`` and ``compare``) and checks the expected
one-line error and exit code from EXPECT.tsv. Inputs too large to commit (a suite over the size cap, a results.json
over the read limit, nesting 100,000 deep) are made by the test itself.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
TINY = "{batch: 2, length: 8, growth_depths: [1], growth_in_features: [8], growth_rows: 8}"


def case(extra: str, kind: str = "linear_vs_conv1d") -> str:
    return f"cases:\n  - name: c\n    kind: {kind}\n{extra}"


def laughs(levels: int = 8, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\ncases: [{{name: c, kind: linear_vs_conv1d, params: {{growth_depths: *a{levels - 1}}}}}]\n"


BASE_RESULTS = {"schema_version": 1, "run_id": "r", "started": "2026-01-01T00:00:00+00:00", "command": [],
                "suite": {"name": "s"}, "environment": {}, "tool_version": "0", "status": "complete", "cases": []}


def results_with(raw_value: str) -> str:
    text = json.dumps(BASE_RESULTS)
    return text[:-1] + f', "x": {raw_value}}}'


def html_with(block: str) -> str:
    return f'<!doctype html><html><body><script type="application/json" id="reportgen-results">{block}</script></body></html>\n'


SUITES: dict[str, str | bytes] = {
    # seeds (torch.Generator.manual_seed: "Overflow when unpacking long long" past 2**64-1)
    "suite_seed_2_70.yaml": case(f"    seed: {2**70}\n    params: {TINY}\n"),
    "suite_seed_negative.yaml": f"defaults: {{seed: -1}}\n" + case(f"    params: {TINY}\n"),
    "suite_seed_float.yaml": case("    seed: 1.5\n"),
    "suite_seed_bigint.yaml": case("    seed: " + "7" * 5000 + "\n"),
    # YAML structure
    "suite_deep_nesting.yaml": "cases: " + "[" * 5000 + "]" * 5000 + "\n",
    "suite_deep_mapping.yaml": "cases: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "suite_alias_bomb.yaml": laughs(),
    "suite_alias_recursive.yaml": "loop: &x [*x]\ncases: [*x]\n",
    "suite_duplicate_case_key.yaml": case(f"    params: {TINY}\n    kind: conv1d_semantics\n"),
    "suite_duplicate_top_key.yaml": case(f"    params: {TINY}\n") + "cases: []\n",
    "suite_duplicate_param.yaml": case("    params: {batch: 2, batch: 3}\n"),
    "suite_not_utf8.yaml": b"cases:\n  - name: c\xe9\n    kind: linear_vs_conv1d\n",
    "suite_nul_bytes.yaml": b"cases:\x00\x00\n",
    "suite_top_level_list.yaml": "- name: c\n  kind: linear_vs_conv1d\n",
    "suite_python_tag.yaml": "cases: !!python/object/apply:os.system ['true']\n",
    # settings
    "suite_num_threads_0.yaml": case("    settings: {num_threads: 0}\n"),
    "suite_num_threads_negative.yaml": case("    settings: {num_threads: -4}\n"),
    "suite_num_threads_100000.yaml": case("    settings: {num_threads: 100000}\n"),
    "suite_num_threads_string.yaml": case("    settings: {num_threads: four}\n"),
    "suite_matmul_precision_garbage.yaml": case("    settings: {float32_matmul_precision: garbage}\n"),
    "suite_mkldnn_matmul_precision.yaml": case("    settings: {mkldnn_matmul_fp32_precision: fp8}\n"),
    "suite_mkldnn_conv_precision.yaml": "defaults:\n  settings: {mkldnn_conv_fp32_precision: highest}\n"
                                        + case(f"    params: {TINY}\n"),
    "suite_unknown_setting.yaml": case("    settings: {allow_everything: true}\n"),
    # framework interpreters given in the suite
    "suite_framework_missing.yaml": "frameworks: {mindspore: /nonexistent/python}\n" + case(f"    params: {TINY}\n"),
    "suite_framework_bin_true.yaml": "frameworks: {mindspore: /bin/true}\n" + case(f"    params: {TINY}\n"),
    "suite_framework_not_executable.yaml": "frameworks: {jax: /etc/hostname}\n" + case(f"    params: {TINY}\n"),
    "suite_framework_not_on_path.yaml": "frameworks: {jax: no-such-python-3x}\n" + case(f"    params: {TINY}\n"),
    # case params outside their meaning, sizes without an upper limit
    "suite_init_alpha_2.yaml": case("    params: {init_alpha: 2.0}\n", "conv1d_semantics"),
    "suite_init_alpha_negative.yaml": case("    params: {init_alpha: -0.5}\n", "conv1d_semantics"),
    "suite_init_control_scale.yaml": case("    params: {init_control_scale: 0.5}\n", "conv1d_semantics"),
    "suite_cross_alpha.yaml": case("    params: {alpha: 1.0}\n", "conv1d_cross_framework"),
    "suite_cross_timeout.yaml": case("    params: {timeout_s: 1000000000.0}\n", "conv1d_cross_framework"),
    "suite_report_steps_beyond.yaml": case("    params: {train_steps: 5, train_report_steps: [1, 50]}\n",
                                           "shared_kernel_conv"),
    "suite_seeds_1e9.yaml": case("    params: {seeds: 1000000000}\n", "optimizer_drift"),
    "suite_seeds_200000.yaml": case("    params: {seeds: 200000}\n", "optimizer_drift"),
    "suite_steps_1e7.yaml": case("    params: {steps: 10000000}\n", "optimizer_drift"),
    "suite_rounds_1e9.yaml": case("    timing: {rounds: 1000000000}\n"),
    "suite_rounds_bigint.yaml": case("    timing: {rounds: " + "9" * 400 + "}\n"),
    "suite_min_sample_s_huge.yaml": case("    timing: {min_sample_s: 86400}\n"),
    "suite_min_sample_s_bigint.yaml": case("    timing: {min_sample_s: " + "9" * 400 + "}\n"),
    "suite_batch_1e12.yaml": case("    params: {batch: 1000000000000}\n"),
    "suite_lr_bigint.yaml": case("    params: {onestep_lr: " + "9" * 400 + "}\n", "optimizer_drift"),
    "suite_bound_factor_nan.yaml": case("    tolerances: {bound_factor: .nan}\n"),
    "suite_device_bogus.yaml": case("    devices: [tpu]\n"),
}

RESULTS: dict[str, str | bytes] = {
    "results_bigint.json": results_with("9" * 5000),
    "results_deep_500.json": results_with("[" * 500 + "]" * 500),
    "results_not_utf8.json": json.dumps(BASE_RESULTS)[:-1].encode() + b', "x": "\xff\xfe"}',
    "results_top_level_list.json": "[1, 2, 3]\n",
    "results_empty.json": "",
    "results_truncated.json": json.dumps(BASE_RESULTS)[:40],
    "results_schema_newer.json": json.dumps({**BASE_RESULTS, "schema_version": 999}),
    "results_schema_string.json": json.dumps({**BASE_RESULTS, "schema_version": "1"}),
    "results_cases_not_list.json": json.dumps({**BASE_RESULTS, "cases": {"a": 1}}),
    "results_case_field_wrong_type.json": json.dumps({**BASE_RESULTS, "cases": [{"id": 3, "status": []}]}),
    "report_bigint.html": html_with(results_with("9" * 5000)),
    "report_deep_500.html": html_with(results_with("[" * 500 + "]" * 500)),
    "report_not_utf8.html": html_with("{}").encode().replace(b"<body>", b"<body>\xff"),
    "report_no_block.html": "<!doctype html><p>not a report</p>\n",
    "report_block_not_json.html": html_with("{not json"),
}


def main() -> None:
    for name, content in {**SUITES, **RESULTS}.items():
        path = HERE / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    print(f"{len(SUITES)} suites, {len(RESULTS)} archives written to {HERE}")


if __name__ == "__main__":
    main()
