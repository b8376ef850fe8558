"""Stage: fill the embedding backend's feature cache, spread over the processes of a launch.

``rewardlab encode DATA...`` encodes every distinct text of the data that the cache lacks. Under
``accelerate launch --num_processes P`` (add ``--multi_gpu`` on a machine without GPUs: it is
accelerate's name for its torchrun launcher) or ``torchrun --nproc_per_node P``, each process
encodes its own share into the shared cache; a later ``rewardlab strength`` (or ``run``) on one
process then encodes nothing.
"""

from __future__ import annotations

from rewardlab.config import CommonConfig, InputConfig, LoadConfig, ModelConfig
from rewardlab.stages.command import CommandResult

__all__ = ["encode_command"]


def encode_command(*, data: InputConfig, load: LoadConfig, model: ModelConfig,
                   common: CommonConfig) -> CommandResult:
    """``rewardlab encode``: every text of the data into the feature cache."""
    from pathlib import Path

    from rewardlab.data import read_preferences
    from rewardlab.models import Pairs
    from rewardlab.models.processes import encode_in_processes

    ds, _ = read_preferences(data.data, **load.read_kwargs())
    share = encode_in_processes(model, Pairs.from_dataset(ds), progress=not common.quiet)
    outputs = {"feature cache": Path(share.cache)} if share.main and share.cache else {}
    return CommandResult([share.line()], outputs, share)
