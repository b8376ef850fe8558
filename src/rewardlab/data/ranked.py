"""Which response is better when the input gives scores or a ranking instead of a label.

Pure decisions on numbers, no records: the ``scores`` and ``ranking`` layouts of
:mod:`rewardlab.data.formats` read the values and build the pairs from what these return.

* Two scores: the higher one wins; a gap of at most ``min_score_gap`` (0: equal scores) is a
  tie, which carries no direction.
* A ranking of K responses (``rank``: 1 is best, or ``score``: higher is better) gives pairs by
  ``ranking_pairs``: ``all`` K(K-1)/2 pairs (every judgement the ranking makes, as InstructGPT
  trains on all comparisons of a prompt), ``best-worst`` one pair (the clearest), or
  ``adjacent`` K-1 pairs (neighbours in the ranking: the finest distinctions only).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = ["RANKING_PAIRS", "rank_pairs", "score_side"]

RANKING_PAIRS = ("all", "best-worst", "adjacent")


def score_side(score_a: float, score_b: float, min_gap: float = 0.0) -> str:
    """``"a"``, ``"b"`` or ``"tie"``: the side with the higher score, a tie within ``min_gap``."""
    if abs(score_a - score_b) <= min_gap:
        return "tie"
    return "a" if score_a > score_b else "b"


def rank_pairs(values: Sequence[float], *, higher_is_better: bool, mode: str = "all",
               min_gap: float = 0.0) -> list[tuple[int, int, bool]]:
    """Pairs ``(better, worse, tie)`` of indices into ``values``, best-ranked first.

    ``values`` are ranks (``higher_is_better=False``: 1 beats 2) or scores. Two values within
    ``min_gap`` are a tie (then the earlier-listed response comes first). Order is stable: equal
    values keep their input order.
    """
    if mode not in RANKING_PAIRS:
        raise ValueError(f"--ranking-pairs: got {mode!r}; choose one of {', '.join(RANKING_PAIRS)}")
    sign = -1.0 if higher_is_better else 1.0
    order = sorted(range(len(values)), key=lambda i: sign * values[i])
    if mode == "all":
        chosen = [(order[x], order[y]) for x in range(len(order)) for y in range(x + 1, len(order))]
    elif mode == "best-worst":
        chosen = [(order[0], order[-1])] if len(order) > 1 else []
    else:
        chosen = list(itertools.pairwise(order))
    out = []
    for i, j in chosen:
        tie = abs(values[i] - values[j]) <= min_gap
        out.append((min(i, j), max(i, j), True) if tie else (i, j, False))
    return out
