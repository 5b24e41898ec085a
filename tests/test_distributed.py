"""reportgen run under torchrun and Slurm-style launches, on this CPU with gloo: one archive from every rank.

Real launches of real processes: torchrun with two local workers, two torchrun "nodes" meeting through a c10d
rendezvous on 127.0.0.1, and two processes started the way srun starts tasks (SLURM_* variables, rank and world
size taken from them). One small case keeps each under a few seconds of work.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


from reportgen import distributed

SUITE = str(Path(__file__).parent / "fixtures" / "fleet_suite.yaml")
CASE = "fc_vs_conv2d_1x1"
TIMEOUT = 240


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "MASTER_", "RANK", "LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC"))}
    env.update(extra)
    return env


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def _reportgen_run(out: Path, *extra: str) -> list[str]:
    return ["-m", "reportgen", "run", "--suite", SUITE, "--case", CASE, "--device", "cpu", "--out", str(out), *extra]


def _check_fleet(path: Path, world: int, backend: str | None = "gloo") -> dict:
    archive = json.loads(path.read_text())
    assert archive["kind"] == "reportgen-fleet" and archive["world_size"] == world and archive["failures"] == []
    assert archive["backend"] == backend
    launches = [r["environment"]["launch"] for r in archive["runs"]]
    assert [x["rank"] for x in launches] == list(range(world))
    assert all(x["world_size"] == world and x["host"] for x in launches)
    assert len({r["run_id"] for r in archive["runs"]}) == 1  # one launch, one run id
    for r in archive["runs"]:
        assert [c["id"] for c in r["cases"]] == [f"{CASE}/cpu/float32"] and r["cases"][0]["status"] == "ok"
        assert all(x["actual_sha256"] for x in r["cases"][0]["comparisons"])
    # every rank kept its own archive too, in its own directory
    ranks = sorted(p.parent.name for p in path.parent.glob("rank-*/results.json"))
    assert ranks == [f"rank-{r}" for r in range(world)]
    return archive


def test_detect_reads_torchrun_and_slurm_variables():
    assert distributed.detect({}) is None
    assert distributed.detect({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None  # a world of one
    t = distributed.detect({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    assert (t.launcher, t.rank, t.world_size, t.local_rank, t.rendezvous) == ("torchrun", 3, 4, 1, True)
    s = distributed.detect({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"})
    assert (s.launcher, s.rank, s.world_size, s.local_rank, s.rendezvous) == ("slurm", 5, 8, 1, False)


def test_torchrun_two_workers_write_one_archive_with_both_ranks(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(_torchrun("--nproc-per-node=2", "--master-port", str(_port()),
                                    *_reportgen_run(out, "--run-id", "launch", "--format", "html,md")),
                          env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    archive = _check_fleet(out / "launch" / "fleet.json", 2)
    # torchrun gives each worker one thread: the two ranks computed the same bits, and the screen says so
    assert "Fleet: 2 device(s) in 2 run(s): 2 OK" in proc.stdout
    assert (out / "launch" / "compare.html").exists() and (out / "launch" / "compare.md").exists()
    a, b = (r["cases"][0]["comparisons"] for r in archive["runs"])
    assert [x["actual_sha256"] for x in a] == [x["actual_sha256"] for x in b]


def test_two_torchrun_nodes_meet_on_loopback(tmp_path):
    out, port = tmp_path / "out", _port()
    procs = [subprocess.Popen(_torchrun("--nnodes=2", "--nproc-per-node=1", f"--node-rank={n}",
                                        "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=t",
                                        *_reportgen_run(out, "--run-id", "nodes", "--format", "none")),
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (0, 1)]
    results = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    archive = _check_fleet(out / "nodes" / "fleet.json", 2)
    assert sorted(r["environment"]["launch"]["node_rank"] for r in archive["runs"]) == [0, 1]


def test_srun_style_tasks_meet_through_master_addr(tmp_path):
    # What srun does: start N tasks with SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; MASTER_ADDR/PORT from the job.
    out, port = tmp_path / "out", _port()
    procs = [subprocess.Popen([sys.executable, *_reportgen_run(out, "--run-id", "job", "--format", "none")],
                              env=_env(SLURM_PROCID=str(r), SLURM_NTASKS="2", SLURM_LOCALID=str(r),
                                       SLURM_NTASKS_PER_NODE="2", SLURM_NODEID="0", MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    results = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    archive = _check_fleet(out / "job" / "fleet.json", 2)
    assert {r["environment"]["launch"]["launcher"] for r in archive["runs"]} == {"slurm"}


def test_slurm_tasks_without_rendezvous_write_their_own_and_merge_joins_them(tmp_path):
    out = tmp_path / "out"
    for r in (0, 1):
        proc = subprocess.run([sys.executable, *_reportgen_run(out, "--format", "none")],
                              env=_env(SLURM_PROCID=str(r), SLURM_NTASKS="2", SLURM_LOCALID=str(r),
                                       SLURM_JOB_ID="77", SLURM_STEP_ID="0"),
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "reportgen merge" in proc.stderr
    launch = out / "slurm-77.0"
    assert sorted(p.name for p in launch.iterdir()) == ["rank-0", "rank-1"]
    merged = tmp_path / "fleet.json"
    proc = subprocess.run([sys.executable, "-m", "reportgen", "merge", str(launch), "--out", str(merged)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(merged.read_text())["runs"]
    assert [r["environment"]["launch"]["rank"] for r in runs] == [0, 1]


def test_an_existing_run_directory_stops_every_rank_with_one_line(tmp_path):
    out = tmp_path / "out"
    (out / "taken").mkdir(parents=True)
    proc = subprocess.run(_torchrun("--nproc-per-node=2", "--master-port", str(_port()),
                                    *_reportgen_run(out, "--run-id", "taken", "--format", "none")),
                          env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode != 0
    # both ranks said why (rank 0 found it, rank 1 learnt it from the broadcast), neither waited for a timeout
    assert proc.stderr.count("already exists; refusing to overwrite") == 2, proc.stderr[-3000:]
    # (the traceback that follows is torchrun's own report of failed workers, not ours)
    assert sum(line.startswith("reportgen: error:") for line in proc.stderr.splitlines()) == 2
    assert list((out / "taken").iterdir()) == []
