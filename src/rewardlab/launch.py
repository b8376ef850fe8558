"""Where this process stands in a multi-process launch (``accelerate launch``, ``torchrun``).

The launchers describe the job in environment variables: ``RANK`` (this process, 0..P-1),
``WORLD_SIZE`` (P) and ``LOCAL_RANK`` (its device on this machine). ``--parallel data`` hands
them to accelerate, which joins a process group and keeps one model in step on every rank.
``--parallel members`` reads them only to choose this rank's share of the work; each rank then
trains alone, and :func:`alone` hides them from accelerate so that it does not join a group.
No ``torch.distributed`` group is needed then: ranks exchange finished work through files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Ranks", "alone", "launch_command"]

_DISTRIBUTED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                    "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                    "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE")
_SHARDING_ENV = ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP")


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` processes, and its ``local_rank`` on its machine
    (all 0 and 1 outside a launcher)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        """Read ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (or the MPI equivalents)."""
        def first(*names: str, default: int) -> int:
            for name in names:
                if os.environ.get(name, "").strip():
                    return int(os.environ[name])
            return default

        world = first("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", default=1)
        rank = first("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", default=0)
        local = first("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", default=rank)
        if not 0 <= rank < world:
            raise ValueError(f"launcher environment: RANK {rank} is not in [0, WORLD_SIZE "
                             f"{world})")
        return cls(rank, world, local)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def alone() -> Iterator[Ranks]:
    """Hide the launcher's process-group variables inside the block (restored after), so a
    library that reads them (accelerate) sets up a single process; yields the ranks they said.

    Refuses a sharded launch (DeepSpeed, FSDP): those split one model over every rank and
    cannot train members apart.
    """
    for name in _SHARDING_ENV:
        if os.environ.get(name, "").lower() == "true":
            raise ValueError(f"--parallel members trains each member on one device, but this "
                             f"launch shards one model over all of them ({name}=true); use "
                             f"--parallel data with DeepSpeed or FSDP")
    ranks = Ranks.from_env()
    saved = {name: os.environ.pop(name) for name in _DISTRIBUTED_ENV if name in os.environ}
    try:
        yield ranks
    finally:
        os.environ.update(saved)


def launch_command(processes: int, target: Sequence[str]) -> list[str]:
    """The command that runs ``target`` (``["-m", "rewardlab.cli", ...]`` or a script and its
    arguments) as ``processes`` processes on this machine through ``accelerate launch``.

    On CPUs too: accelerate's own ``--cpu`` starts several processes only through ``mpirun``, so
    the torchrun launcher behind ``--multi_gpu`` starts them, and ``--device cpu`` (the
    Accelerator's ``cpu=True``) keeps them on the CPU, talking over gloo.
    """
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    return [launcher, "launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", "0", *target]
