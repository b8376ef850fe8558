"""Prompt-grouped, seeded train/validation split."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

__all__ = ["group_fraction", "split_train_valid"]


def group_fraction(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by ``(seed, key)``: the same on every run and machine."""
    digest = hashlib.sha1(f"{seed}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_train_valid(
    ds: datasets.Dataset, *, valid_frac: float, seed: int, group_by: str = "prompt"
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split ``ds`` into ``(train, valid)``, keeping each ``group_by`` value on one side.

    Each group lands in validation when the hash of ``seed`` and its key falls below
    ``valid_frac``, so the split depends on nothing but the data and the seed (not on row order
    or on other groups), and about ``valid_frac`` of the groups are held out.
    ``valid_frac=0`` gives an empty validation set.
    """
    if not 0 <= valid_frac < 1:
        raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac}")
    if group_by not in ds.column_names:
        raise ValueError(f"cannot group by {group_by!r}: the dataset has no such column "
                         f"(columns: {', '.join(ds.column_names)})")
    train: list[int] = []
    valid: list[int] = []
    # Hash each distinct key once: datasets often repeat a prompt across many pairs.
    decided: dict[str, bool] = {}
    for index, value in enumerate(ds[group_by]):
        key = str(value)
        in_valid = decided.get(key)
        if in_valid is None:
            in_valid = decided[key] = group_fraction(key, seed) < valid_frac
        (valid if in_valid else train).append(index)
    return ds.select(train), ds.select(valid)
