"""Prompt-grouped, seeded train/validation/test split."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from rewardlab.data.checks import is_blank

if TYPE_CHECKING:
    import datasets

__all__ = ["group_fraction", "split_train_valid", "split_train_valid_test"]

log = logging.getLogger("rewardlab")


def group_fraction(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by ``(seed, key)``: the same on every run and machine."""
    digest = hashlib.sha1(f"{seed}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_train_valid_test(
    ds: datasets.Dataset, *, valid_frac: float, test_frac: float, seed: int,
    group_by: str = "prompt",
) -> tuple[datasets.Dataset, datasets.Dataset, datasets.Dataset]:
    """Split ``ds`` into ``(train, valid, test)``, keeping each ``group_by`` value on one side.

    Each group's number ``u = group_fraction(key, seed)`` decides: ``u < valid_frac`` is
    validation, ``valid_frac <= u < valid_frac + test_frac`` test, the rest training. So the
    split depends on nothing but the data and the seed (not on row order or on other groups),
    about the given shares of the *groups* are held out, and ``test_frac = 0`` gives exactly the
    two-way split of :func:`split_train_valid`. On small data a split with a positive share
    that drew no group gets the training group whose number lies nearest its band, as long as
    training keeps one, so 30 pairs still give a validation and a test pair. When every prompt
    is empty, each pair is its own group (with a warning).
    """
    if not (0 <= valid_frac < 1 and 0 <= test_frac < 1 and valid_frac + test_frac < 1):
        raise ValueError(f"valid_frac and test_frac must be >= 0 with a sum below 1, got "
                         f"{valid_frac} and {test_frac}")
    if group_by not in ds.column_names:
        raise ValueError(f"cannot group by {group_by!r}: the dataset has no such column "
                         f"(columns: {', '.join(ds.column_names)})")
    keys = [str(value) for value in ds[group_by]]
    if group_by == "prompt" and len(keys) > 1 and all(is_blank(k) for k in keys):
        # One empty prompt for all would be one group: nothing could be held out. Pairs without
        # a prompt share nothing a model could carry across, so each pair is its own group.
        log.warning("every prompt is empty: splitting by pair instead of by prompt (pairs that "
                    "share a question in another column may land on both sides)")
        keys = [str(i) for i in (ds["id"] if "id" in ds.column_names else range(len(keys)))]
    # Hash each distinct key once: datasets often repeat a prompt across many pairs.
    u = {key: group_fraction(key, seed) for key in dict.fromkeys(keys)}
    side = {k: 1 if x < valid_frac else 2 if x < valid_frac + test_frac else 0
            for k, x in u.items()}
    for which, share in ((1, valid_frac), (2, test_frac)):
        train_keys = [k for k in u if side[k] == 0]
        if share > 0 and which not in side.values() and len(train_keys) > 1:
            side[min(train_keys, key=lambda k: abs(u[k] - valid_frac))] = which
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for index, key in enumerate(keys):
        parts[side[key]].append(index)
    return ds.select(parts[0]), ds.select(parts[1]), ds.select(parts[2])


def split_train_valid(
    ds: datasets.Dataset, *, valid_frac: float, seed: int, group_by: str = "prompt"
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split ``ds`` into ``(train, valid)``, keeping each ``group_by`` value on one side.

    ``valid_frac=0`` gives an empty validation set. See :func:`split_train_valid_test`.
    """
    train, valid, _ = split_train_valid_test(ds, valid_frac=valid_frac, test_frac=0.0, seed=seed,
                                             group_by=group_by)
    return train, valid
