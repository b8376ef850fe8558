"""MetaRM's meta set: unlabeled prompts, each with several responses from the shifted
distribution (a policy's samples, another dataset's responses).

Two record layouts, mixed freely, read like any other input (files, folders, globs, Hub ids):

``responses``
    ``{"prompt": ..., "responses": [r_1, r_2, ...]}``: one prompt and its responses, each a string
    (or each a list of messages, with the prompt a list of messages too).
``response``
    ``{"prompt": ..., "response": ...}`` (or ``completion``, or a whole ``messages``
    conversation): one response per row, as :mod:`rewardlab.data.responses` reads them; rows with
    the same prompt text are grouped.

A prompt's responses are deduplicated (two identical responses have the same reward, so they
add a constant to J and nothing to its gradient). Prompts left with fewer than 2 distinct
responses cannot enter J; they are left out and counted in the report's warnings, never silently.
Labels (``chosen``/``rejected``) are refused: a meta set is unlabeled by definition, and a pair
file given here is a mistake worth naming.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.data.errors import EMPTY_INPUT, WRONG_TYPE, DataError, as_object, describe_value
from rewardlab.data.io import Input, resolve_inputs
from rewardlab.data.load_report import LoadReport
from rewardlab.data.responses import normalize_response, render_conversation
from rewardlab.data.streams import DEFAULT_MAX_RECORD_BYTES

__all__ = ["MetaSet", "read_meta"]


@dataclass(frozen=True)
class MetaSet:
    """``prompts[g]`` with its distinct ``responses[g]`` (at least 2 each), in first-seen order."""

    prompts: list[str]
    responses: list[list[str]]

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def texts(self) -> int:
        """Responses over all prompts."""
        return sum(len(r) for r in self.responses)


def _record_items(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(prompt, response)`` texts of one record, in either layout."""
    if "chosen" in record or "rejected" in record:
        raise DataError("holds a labelled pair (chosen/rejected); a meta set is unlabeled: give "
                        "prompts with 'responses' (a list) or 'response' rows",
                        reason=WRONG_TYPE)
    if "responses" not in record:
        return [normalize_response(record)[:2]]
    responses = record["responses"]
    if not isinstance(responses, list) or not responses:
        raise DataError(f"expected a non-empty list of responses, got "
                        f"{describe_value(responses)}", field="responses", reason=WRONG_TYPE)
    items = []
    for k, response in enumerate(responses):
        try:
            items.append(render_conversation(record.get("prompt"), response))
        except DataError as exc:  # name the list entry, not a 'response' column
            field = f"responses[{k}]" if exc.field == "response" else exc.field
            raise DataError(exc.problem, field=field, reason=exc.reason) from None
    return items


def _read_input(unit: Input, on_bad: str, groups: dict[str, dict[str, None]],
                report: LoadReport) -> None:
    """Add one input's responses to ``groups`` (prompt -> ordered set of responses)."""
    records = kept = 0
    for where, record in unit.read(DEFAULT_MAX_RECORD_BYTES):
        records += 1
        try:
            items = _record_items(as_object(record))
        except DataError as exc:
            report.skip_or_raise(exc, unit.name, where, on_bad)
            continue
        kept += 1
        for prompt, response in items:
            groups.setdefault(prompt, {})[response] = None
    if records == 0:
        raise DataError("holds no records", file=unit.name, reason=EMPTY_INPUT)
    if kept == 0:
        raise DataError("no valid records: all were skipped", file=unit.name, reason=EMPTY_INPUT)
    report.by_file[unit.name] = kept


def read_meta(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
              on_bad: str = "error") -> tuple[MetaSet, LoadReport]:
    """Read a meta set from ``paths`` (layouts in the module docstring).

    Returns the :class:`MetaSet` and a :class:`LoadReport` whose ``pairs`` counts the prompts
    kept. A malformed record stops the read with a :class:`DataError` naming file, line and
    field, or is skipped and counted with ``on_bad="skip"``. Raises when no prompt has two
    distinct responses.
    """
    if on_bad not in ("error", "skip"):
        raise ValueError(f"on_bad must be 'error' or 'skip'; got {on_bad!r}")
    report = LoadReport()
    groups: dict[str, dict[str, None]] = {}
    for unit in resolve_inputs(paths):
        _read_input(unit, on_bad, groups, report)
    kept = {p: list(r) for p, r in groups.items() if len(r) >= 2}
    if len(kept) < len(groups):
        report.warnings.append(f"{len(groups) - len(kept):,} prompt(s) with fewer than 2 "
                               "distinct responses left out (the difference loss compares a "
                               "prompt's responses with each other)")
    if not kept:
        names = ", ".join(str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike))
                                           else paths))
        raise DataError("no prompt has 2 or more distinct responses; a meta set needs several "
                        "responses per prompt", file=names, reason=EMPTY_INPUT)
    report.pairs = len(kept)
    report.by_format = {"meta": len(kept)}
    return MetaSet(list(kept), list(kept.values())), report
