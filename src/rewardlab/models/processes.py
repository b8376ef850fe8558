"""Encoding spread over the processes of a multi-process launch (``accelerate launch``,
``torchrun``).

Each process encodes its own share of the distinct texts missing from the shared feature cache
(accelerate's ``split_between_processes``) and writes them as shards of its own, which the cache
takes atomically. Then the processes wait for each other, and only the main one goes on to train
heads, reading every shard.

A process that fails raises (and exits non-zero); the launcher then stops the others, so a
failure is an error naming the process, never a hang. Processes that finish early wait for the
others for at most :data:`WAIT`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import torch

from rewardlab.config import ModelConfig
from rewardlab.models.base import Pairs
from rewardlab.models.embedding import EmbeddingRewardModel
from rewardlab.models.features import feature_sides

__all__ = ["ProcessShare", "encode_before_training", "encode_in_processes", "launched_processes"]

WAIT = timedelta(hours=12)
"""How long a process that finished its share waits for the slowest one."""


def launched_processes() -> int:
    """How many processes this launch started (``WORLD_SIZE``, set by accelerate and torchrun;
    1 when run directly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


@dataclasses.dataclass(frozen=True)
class ProcessShare:
    """What one process of an encoding launch did."""

    rank: int
    processes: int
    encoded: int
    """Texts this process ran through the backbone."""
    distinct: int
    """Distinct texts (prompts and responses) of the data."""
    cache: str

    @property
    def main(self) -> bool:
        """The process that goes on (trains heads, writes results)."""
        return self.rank == 0

    def line(self) -> str:
        if self.processes == 1:
            return (f"encoded {self.encoded} of {self.distinct} distinct texts into the feature "
                    f"cache ({self.distinct - self.encoded} were cached already)")
        return (f"process {self.rank} of {self.processes}: encoded {self.encoded} of "
                f"{self.distinct} distinct texts into the feature cache (the rest were cached "
                f"already or encoded by the other processes)")


def encode_in_processes(config: ModelConfig, pairs: Pairs, *, progress: bool) -> ProcessShare:
    """Fill the feature cache with every text of ``pairs``, each process of the launch encoding
    its own share of what is missing; returns once all processes have finished. In a single
    process it simply encodes everything missing."""
    from accelerate import PartialState

    cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    state = PartialState(cpu=cpu, timeout=WAIT)
    if config.device == "auto" and not cpu:  # one GPU per process
        config = dataclasses.replace(config, device=str(state.device))
    model = EmbeddingRewardModel(config, progress=progress and state.is_main_process)
    encoder = model.encoder
    sides = feature_sides(pairs, features=config.embedding.features)
    state.wait_for_everyone()  # every process reads the cache before any process writes to it
    todo = {d.side: np.flatnonzero(encoder.cache(d.side).locate(d.keys)[:, 0] < 0)
            for d in sides}
    state.wait_for_everyone()
    encoded = 0
    for d in sides:
        with state.split_between_processes(torch.from_numpy(todo[d.side])) as mine:
            encoded += encoder.encode_missing(d.keys, d.text_of, side=d.side,
                                              positions=mine.numpy())
    state.wait_for_everyone()
    for d in sides:  # index the shards the other processes wrote
        encoder.cache(d.side).refresh()
    folder = encoder.cache_root / "features" if encoder.cache_root else ""
    return ProcessShare(state.process_index, state.num_processes, encoded,
                        sum(len(d.keys) for d in sides), str(folder))


def encode_before_training(config: ModelConfig, pairs: Callable[[], Pairs], *,
                           progress: bool) -> ProcessShare | None:
    """Under a multi-process launch with the embedding backend, :func:`encode_in_processes` on
    ``pairs()``: the result's ``main`` says whether this process goes on to train. ``None``
    (nothing shared: train as usual) for a single process, or a backend without a feature cache,
    whose processes keep their own launch semantics. ``pairs`` is only called when needed: a
    single process never holds a second copy of the texts."""
    if launched_processes() <= 1 or config.backend != "embedding":
        return None
    return encode_in_processes(config, pairs(), progress=progress)
