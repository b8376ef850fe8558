"""Where the û that denoises training comes from: a strength file joined by id, or a strength
measurement on the training pairs alone.

Both ``train --strength-file`` and ``groups``/``compare`` go through here, so the join and the
leak check live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from rewardlab.stages.tables import join_strength, read_strength_table

__all__ = ["strength_for_training"]

log = logging.getLogger("rewardlab")


def strength_for_training(prep: Any, *, strength_file: str | None,
                          measure: Callable[[], np.ndarray] | None = None) -> np.ndarray | None:
    """û ``[N_train]`` of ``prep.train``'s pairs, in their order.

    From ``strength_file`` when given (joined by id; strength measured on validation pairs is
    reported, since it lets validation labels leak into denoising); otherwise from ``measure()``
    (which must use the training pairs only), or ``None`` when there is nothing to measure with.
    """
    if strength_file:
        table = read_strength_table(strength_file)
        leaked = set(prep.valid["id"]) & set(table.column("id").to_pylist())
        if leaked:
            log.warning("warning: %d validation pairs are in %s: strength measured on them "
                        "lets validation labels leak into denoising", len(leaked), strength_file)
        return join_strength(list(prep.train["id"]), table, source=strength_file)
    return measure() if measure is not None else None
