"""Where the û that denoises training comes from: a strength file joined by id, or a strength
measurement on the training pairs alone.

Both ``train --strength-file`` and ``groups``/``compare`` go through here, so the join and the
leak check live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.files import read_json
from rewardlab.layout import find_strength_file, find_strength_summary
from rewardlab.stages.strength import noise_floor
from rewardlab.stages.tables import join_strength, read_strength_table
from rewardlab.strength import NoiseFloor

__all__ = ["strength_floor", "strength_for_training"]

log = logging.getLogger("rewardlab")


def strength_for_training(prep: Any, *, strength_file: str | None, allow_overlap: bool = False,
                          measure: Callable[[], np.ndarray] | None = None) -> np.ndarray | None:
    """û ``[N_train]`` of ``prep.train``'s pairs, in their order.

    From ``strength_file`` when given: joined by id and orientation, and refused when the file
    also holds validation or test pairs (strength measured on them lets held-out labels leak
    into denoising) unless ``allow_overlap``. Otherwise from ``measure()`` (which must use the
    training pairs only), or ``None`` when there is nothing to measure with.
    """
    if not strength_file:
        return measure() if measure is not None else None
    table = read_strength_table(strength_file)
    in_table = set(table.column("id").to_pylist())
    leaked = sum(len(in_table.intersection(part["id"])) for part in prep.held_out)
    if leaked and not allow_overlap:
        raise ValueError(
            f"{strength_file}: {leaked} validation/test pairs were measured in this strength "
            f"file, so their labels would leak into denoising and make held-out accuracy "
            f"optimistic. Measure strength on the training split (`groups`/`compare`/`run` do "
            f"this themselves), or pass --allow-overlap to accept the leak")
    if leaked:
        log.warning("warning: %d validation/test pairs are in %s (--allow-overlap): held-out "
                    "accuracy is optimistic", leaked, strength_file)
    return join_strength(prep.train, table, source=strength_file)


def strength_floor(source: str | Path) -> NoiseFloor | None:
    """The noise floor (with the self-test's verdict) recorded beside a strength table:
    ``source`` is a strength file or a folder holding one. ``None`` when there is no summary,
    or it predates the floor (the auto and posterior methods then fit û alone)."""
    table = find_strength_file(source)
    summary = find_strength_summary(Path(source) if table is None else table.parent, table)
    return noise_floor(read_json(summary)) if summary is not None else None
