"""Loading, splitting and noise injection shared by every training stage."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.config import LoadConfig, NoiseConfig, SplitConfig
from rewardlab.noise import inject_flips

__all__ = ["Prepared", "prepare_data"]

log = logging.getLogger("rewardlab")


@dataclass
class Prepared:
    """Training and validation pairs, and what loading them reported."""

    train: Any
    valid: Any
    report: dict[str, Any]


def prepare_data(paths: Sequence[str], *, load: LoadConfig, split: SplitConfig, seed: int,
                 noise: NoiseConfig | None = None) -> Prepared:
    """Load ``paths``; take validation from ``--valid`` or a prompt-grouped ``--valid-frac`` split;
    inject known flips into the *training* pairs only (``--inject-flips``).
    """
    from rewardlab.data import read_preferences, split_train_valid

    ds, report = read_preferences(list(paths), **load.read_kwargs())
    info: dict[str, Any] = {"train_data": report.to_dict()}
    for line in report.summary_lines():
        log.info("%s", line)
    if split.valid:
        train = ds
        valid, vreport = read_preferences(split.valid.split(","), **load.read_kwargs())
        info["valid_data"] = vreport.to_dict()
    else:
        train, valid = split_train_valid(ds, valid_frac=split.valid_frac, seed=seed)
    if noise is not None:
        train = inject_flips(train, noise.inject_flips, seed=noise.inject_seed)
    info["split"] = {"train": len(train), "valid": len(valid)}
    return Prepared(train=train, valid=valid, report=info)
