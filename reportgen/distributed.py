"""``reportgen run`` as one rank of a torchrun or Slurm launch: every rank runs the suite on its local device and
rank 0 writes one archive (fleet.json) holding every rank's results, gathered with torch.distributed.

The launchers do the launching and torch.distributed the transport (gloo on CPU, NCCL on GPU for the process
group; the results, Python objects, go through a gloo group either way: they live on the CPU). Layout of a
launch's directory ``OUT/<run-id>/``:

* ``rank-<r>/results.json``: each rank's own archive, written after every case as in a plain run, so a rank
  that dies leaves what it finished, and ``reportgen merge`` can join the ranks of launches that never met;
* ``fleet.json``: written by rank 0 after the gather; ``reportgen compare`` reads it as one input per rank;
* ``compare.*``: the fleet comparison of the ranks (``--format``).

Errors: a rank whose suite raises still joins the gather with its error (the others do not wait for it); every
collective has the process group's timeout (``--dist-timeout``), so a rank that vanished ends the others with an
error instead of a hang. torchrun also stops the other workers when one exits non-zero.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from reportgen.errors import UsageError

DEFAULT_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch, read from the launcher's variables."""

    launcher: str  # torchrun | slurm
    rank: int
    world_size: int
    local_rank: int
    rendezvous: bool  # MASTER_ADDR/MASTER_PORT known: the ranks can meet (torchrun always sets them)


def detect(environ: dict[str, str] | None = None) -> Launch | None:
    """The launch this process belongs to, or None when it runs alone (no launcher, or a world of one)."""
    from reportgen.measure.environment import collect_launch

    env = dict(os.environ if environ is None else environ)
    info = collect_launch(env)
    if info["launcher"] == "none" or not isinstance(info["world_size"], int) or info["world_size"] < 2:
        return None
    return Launch(launcher=info["launcher"], rank=int(info["rank"]), world_size=int(info["world_size"]),
                  local_rank=int(info["local_rank"] or 0),
                  rendezvous=bool(env.get("MASTER_ADDR")) and bool(env.get("MASTER_PORT")))


def select_local_device(launch: Launch) -> str:
    """Make this rank's GPU current (LOCAL_RANK / SLURM_LOCALID modulo the visible devices: with
    ``--gpus-per-task=1`` each task sees one GPU, as cuda:0) and say which device the rank runs on."""
    if not torch.cuda.is_available():
        return "cpu"
    index = launch.local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return f"cuda:{index}"


def _init(launch: Launch, timeout_s: float) -> tuple[Any, Any, str]:
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    timeout = _dt.timedelta(seconds=timeout_s)
    # rank and world size passed explicitly: srun exports SLURM_PROCID/SLURM_NTASKS, not RANK/WORLD_SIZE.
    dist.init_process_group(backend=backend, init_method="env://", rank=launch.rank, world_size=launch.world_size,
                            timeout=timeout)
    # The results are Python objects on the CPU: a gloo group carries them on GPU nodes too (NCCL would copy each
    # pickle to the GPU and back), so the NCCL communicator is never even created for them.
    objects = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD
    return dist, objects, backend


def run_ranks(launch: Launch, out_dir: Path, run_id: str | None, suite_name: str,
              run_one: Callable[[Path, str, dict[str, Any]], dict[str, Any]], *, timeout_s: float = DEFAULT_TIMEOUT_S,
              progress: Callable[[str], None] = lambda m: None) -> tuple[int, Path | None, dict[str, Any] | None]:
    """Run this rank's share and meet the others.

    ``run_one(run_dir_parent, run_id, launch_info)`` runs the suite into ``run_dir_parent/rank-<r>/`` and returns
    the RunResult dict. Returns (exit code for this rank, fleet.json path on rank 0, fleet archive on rank 0)."""
    from reportgen import runner
    from reportgen.fleet import fleet_archive
    from reportgen.results import write_json_atomic

    if not launch.rendezvous:
        # Slurm without MASTER_ADDR/PORT: no way to meet; each rank keeps its own archive for `reportgen merge`.
        rid = run_id or f"slurm-{os.environ.get('SLURM_JOB_ID', 'job')}.{os.environ.get('SLURM_STEP_ID', '0')}"
        runner.check_run_id(rid, "--run-id")
        progress(f"rank {launch.rank}: MASTER_ADDR/MASTER_PORT not set: writing this rank's archive only "
                 f"(join them with: reportgen merge {out_dir / rid})")
        data = run_one(out_dir / rid, rid, {"backend": None})
        return (1 if _errored(data) else 0), None, None

    dist, group, backend = _init(launch, timeout_s)
    try:
        # Rank 0 names the launch and claims its directory; everyone learns the outcome before running anything.
        decision: list[Any] = [None, None]
        if launch.rank == 0:
            try:
                rid = run_id or runner.new_run_id(suite_name)
                runner.check_run_id(rid, "--run-id")
                top = out_dir / rid
                if top.exists():
                    raise UsageError(f"{top}: already exists; refusing to overwrite an earlier run (choose another "
                                     "--run-id or --out)")
                top.mkdir(parents=True)
                decision = [rid, None]
            except (UsageError, OSError) as exc:
                decision = [None, str(exc)]
        dist.broadcast_object_list(decision, src=0, group=group)
        if decision[1] is not None:
            raise UsageError(decision[1])
        rid = decision[0]
        payload: dict[str, Any]
        try:
            payload = {"run": run_one(out_dir / rid, rid, {"backend": backend})}
        except (Exception, KeyboardInterrupt) as exc:  # join the gather anyway: the others must not wait
            payload = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
        gathered: list[Any] | None = [None] * launch.world_size if launch.rank == 0 else None
        dist.gather_object(payload, gathered, dst=0, group=group)
        # Leave together: a rank that tore its gloo group down while rank 0 was still receiving aborted
        # ("terminate called without an active exception") on a loaded machine.
        dist.barrier(group=group)
        code = 1 if "error" in payload or _errored(payload["run"]) else 0
        if launch.rank != 0:
            return code, None, None
        assert gathered is not None
        runs = [g["run"] for g in gathered if "run" in g]
        failures = [{"rank": r, "error": g["error"]} for r, g in enumerate(gathered) if "error" in g]
        archive = fleet_archive(rid, runs, failures, world_size=launch.world_size, backend=backend)
        path = out_dir / rid / "fleet.json"
        write_json_atomic(path, archive)
        code = 1 if failures or any(_errored(r) for r in runs) else 0
        return code, path, archive
    finally:
        dist.destroy_process_group()


def _errored(run: dict[str, Any]) -> bool:
    return any(c.get("status") == "error" for c in run.get("cases", [])) or run.get("status") != "complete"
