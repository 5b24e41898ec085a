import json

import pytest

from click.testing import CliRunner

from reportgen.cli import main
from reportgen.measure import environment as envmod


def test_capture_has_every_section_with_typed_fields():
    env = envmod.collect_environment()
    assert set(env) == {"platform", "cpu", "memory", "torch", "cuda", "packages", "settings", "env_vars",
                        "launch"}
    assert isinstance(env["cpu"]["logical_cpus"], int)
    assert env["torch"]["version"].startswith("2.")
    assert env["torch"]["blas"]  # parsed from torch.__config__.show()
    assert isinstance(env["cuda"]["available"], bool)
    s = env["settings"]
    for key in ("deterministic_algorithms", "cudnn.benchmark", "cudnn.allow_tf32", "cuda.matmul.allow_tf32",
                "float32_matmul_precision", "num_threads", "env.CUBLAS_WORKSPACE_CONFIG"):
        assert key in s
    assert isinstance(s["num_threads"], int) and isinstance(s["deterministic_algorithms"], bool)
    json.dumps(env)  # JSON-able as is


def test_planted_secret_never_appears_while_allowlisted_var_does(monkeypatch):
    secret = "ghp_" + "A1b2C3d4" * 5
    monkeypatch.setenv("TORCH_SECRET_TOKEN", "plain-value-123")  # allowlisted prefix, secret-looking name
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", f"expandable_segments:True,{secret}")  # secret-looking value
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")  # not allowlisted
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    result = CliRunner().invoke(main, ["env", "--json"])
    assert result.exit_code == 0, result.output
    out = result.output
    for leaked in (secret, "plain-value-123", "wJalrXUtnFEMI", "AWS_SECRET_ACCESS_KEY"):
        assert leaked not in out
    env_vars = json.loads(out)["env_vars"]
    assert env_vars["OMP_NUM_THREADS"] == "2"
    assert env_vars["TORCH_SECRET_TOKEN"] == envmod.REDACTED
    assert env_vars["PYTORCH_CUDA_ALLOC_CONF"].startswith("expandable_segments:True,")


def test_redact_patterns():
    assert "hunter2" not in envmod.redact("https://user:hunter2@example.com/x")
    assert envmod.redact("OMP_PROC_BIND=close") == "OMP_PROC_BIND=close"
    assert envmod.REDACTED in envmod.redact("key AKIAIOSFODNN7EXAMPLE here")


def test_env_text_output_runs():
    result = CliRunner().invoke(main, ["env"])
    assert result.exit_code == 0 and "[torch]" in result.output


def test_password_and_bearer_names_and_values_are_redacted(monkeypatch):
    monkeypatch.setenv("TORCH_PASS", "s7pass")
    monkeypatch.setenv("PYTORCH_BEARER", "s9bear")
    monkeypatch.setenv("TORCH_PWD", "s8pwd")
    monkeypatch.setenv("CUDA_SESSION_ID", "s6sess")
    monkeypatch.setenv("PYTORCH_EXTRA_HEADER", "Authorization: Bearer abc123def456")  # secret by value only
    monkeypatch.setenv("TORCH_PROXY_HEADER", "Authorization: BASIC dXNlcjpwYXNzd29yZA==")
    monkeypatch.setenv("TORCH_PASSCODE", "s5code")
    monkeypatch.setenv("TORCH_PW", "s4pw")
    monkeypatch.setenv("TORCH_HUB_PAT", "s3pat")
    ordinary = {"CUDA_VISIBLE_DEVICES": "0,1", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
                "OMP_NUM_THREADS": "2", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "TORCH_COMPILE_BYPASS_X": "1",
                "TORCH_AUTHOR": "someone", "TORCH_HOME": "/data/experiments/run-2024-01-05/torch_cache_dir"}
    for k, v in ordinary.items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(main, ["env", "--json"])
    assert result.exit_code == 0, result.output
    for leaked in ("s7pass", "s9bear", "s8pwd", "s6sess", "abc123def456", "dXNlcjpwYXNzd29yZA", "s5code", "s4pw",
                   "s3pat"):
        assert leaked not in result.output
    env_vars = json.loads(result.output)["env_vars"]
    assert env_vars["TORCH_PASS"] == env_vars["PYTORCH_BEARER"] == envmod.REDACTED
    assert {k: env_vars[k] for k in ordinary} == ordinary


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "200000 100000\n"}, "2 CPUs"),
    ({"cpu.max": "max 100000\n"}, "unlimited"),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, "0.5 CPUs"),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "unlimited"),
    ({}, "not exposed"),
])
def test_cgroup_cpu_limit_v1_and_v2(tmp_path, files, expected):
    from reportgen.measure.environment import cgroup_cpu_limit
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == expected


def test_a_process_alone_records_no_host_name_a_launch_does():
    """Reports of one process go onto public tickets: its host name is not recorded (nor shown); a rank of a
    torchrun/srun launch records it, since a fleet comparison names each device by its host."""
    from reportgen.measure.environment import collect_launch

    alone = collect_launch({})
    assert alone["launcher"] == "none" and alone["world_size"] == 1 and "host" not in alone
    ranked = collect_launch({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                             "GROUP_RANK": "0"})
    assert ranked["launcher"] == "torchrun" and ranked["rank"] == 1 and ranked["host"]
    # a plain run inside a Slurm job (or torchrun of one process) is alone too
    in_job = collect_launch({"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"})
    assert in_job["launcher"] == "slurm" and in_job["world_size"] == 1 and "host" not in in_job
