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
    """Training, validation and test pairs, and what loading them reported."""

    train: Any
    valid: Any
    test: Any
    report: dict[str, Any]

    @property
    def held_out(self) -> list[Any]:
        """The splits no denoising may learn from: validation and test."""
        return [self.valid, self.test]


def prepare_data(paths: Sequence[str], *, load: LoadConfig, split: SplitConfig, seed: int,
                 noise: NoiseConfig | None = None) -> Prepared:
    """Load ``paths``; take validation and test from ``--valid``/``--test`` files or a
    prompt-grouped ``--valid-frac``/``--test-frac`` split; inject known flips into the
    *training* pairs only (``--inject-flips``).
    """
    from rewardlab.data import read_preferences, split_train_valid_test

    ds, report = read_preferences(list(paths), **load.read_kwargs())
    info: dict[str, Any] = {"train_data": report.to_dict()}
    problems = report.problem_lines()
    for line in report.summary_lines():
        # Skips, ties and warnings are warnings: --quiet hides progress, never these.
        log.log(logging.WARNING if line in problems else logging.INFO, "%s", line)
    train, valid, test = split_train_valid_test(
        ds, valid_frac=0.0 if split.valid else split.valid_frac,
        test_frac=0.0 if split.test else split.test_frac, seed=seed)
    for name, files in (("valid", split.valid), ("test", split.test)):
        if files:
            part, part_report = read_preferences(files.split(","), **load.read_kwargs())
            info[f"{name}_data"] = part_report.to_dict()
            valid, test = (part, test) if name == "valid" else (valid, part)
    if noise is not None:
        train = inject_flips(train, noise.inject_flips, seed=noise.inject_seed)
    info["split"] = {"train": len(train), "valid": len(valid), "test": len(test)}
    return Prepared(train=train, valid=valid, test=test, report=info)


def require_validation(prep: Prepared, split: SplitConfig) -> None:
    """Stages that pick (a method, a group) need validation pairs: one clear error otherwise,
    with what would fix it."""
    if len(prep.valid):
        return
    if split.valid:
        raise ValueError(f"--valid {split.valid}: holds no pairs")
    raise ValueError(
        f"the validation split is empty: --valid-frac {split.valid_frac} of "
        f"{len(prep.train) + len(prep.test)} pairs left no prompt group for validation. This "
        f"command needs at least one validation pair: use more data (a few dozen pairs at "
        f"least), a larger --valid-frac, or --valid FILE")
