"""Single responses to score, one (prompt, response) per record, and telling them from pairs.

A response file is read like a preference file (the same file kinds, folders, globs and Hub ids,
through :func:`rewardlab.data.io.resolve_inputs`), but each record holds one response:

``explicit``
    ``response`` (or ``completion``, TRL's name) is a string; ``prompt`` is an optional string.
``conversational``
    ``response`` / ``completion`` is a list of ``{role, content}`` messages, and ``prompt`` a
    list of messages too (or absent). Rendered by the pair loader's own conversational rules
    (:func:`rewardlab.data.formats.normalize`), so a response scores exactly as it would as the
    chosen side of a conversational pair.
``messages``
    only ``messages``, a whole conversation: the response is its last assistant turn, the prompt
    everything before it.

Output columns: ``id`` (the input's own when complete and unique, else a content hash; repeats
get ``-1``, ``-2`` suffixes), ``prompt``, ``response``, ``source``, then every other input column
(one named like an output column is kept as ``input_<name>``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rewardlab.data.checks import content_id, unique_ids
from rewardlab.data.errors import (
    EMPTY_INPUT,
    MISSING_FIELD,
    WRONG_TYPE,
    DataError,
    as_object,
    describe_value,
)
from rewardlab.data.formats import Columns, normalize
from rewardlab.data.io import Input, resolve_inputs
from rewardlab.data.load_report import LoadReport
from rewardlab.data.streams import DEFAULT_MAX_RECORD_BYTES

if TYPE_CHECKING:
    import datasets

__all__ = ["RESPONSE_COLUMNS", "detect_input_kind", "read_responses", "render_conversation"]

RESPONSE_COLUMNS = ("response", "completion")
"""Where a record's response may be, in this order."""
_OUTPUT = frozenset({"id", "prompt", "response", "source"})


def detect_input_kind(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                      mapping: Mapping[str, str] | str | None = None) -> str:
    """``"pairs"`` or ``"responses"``: what the first record of the first input holds.

    A record with ``chosen`` or ``rejected`` (or any ``--map``) makes pairs, read by
    :func:`rewardlab.data.read_preferences`; anything else is read as single responses.
    Unparseable records are passed over (the reader then reports them where they are).
    """
    if mapping:
        return "pairs"
    for _, record in resolve_inputs(paths)[0].read(DEFAULT_MAX_RECORD_BYTES):
        if isinstance(record, dict):
            return "pairs" if ("chosen" in record or "rejected" in record) else "responses"
    return "responses"


def render_conversation(prompt: str | list[Any] | None,
                        response: str | list[Any]) -> tuple[str, str]:
    """The (prompt, response) texts a reward model reads, from strings or message lists.

    Message lists (``[{"role": ..., "content": ...}]``, as TRL's conversational format) are
    rendered by the pair loader's conversational rules; strings pass through (a missing prompt
    is empty). Raises :class:`DataError` naming the field for anything else.
    """
    if isinstance(response, str):
        if prompt is None or isinstance(prompt, str):
            return prompt or "", response
        raise DataError(f"is {describe_value(prompt)} while the response is a string; both must "
                        "be strings or both lists of messages", field="prompt", reason=WRONG_TYPE)
    if not isinstance(response, list):
        raise DataError(f"expected a string or a list of messages, got "
                        f"{describe_value(response)}", field="response", reason=WRONG_TYPE)
    if prompt is not None and not isinstance(prompt, list):
        raise DataError(f"is {describe_value(prompt)} while the response is a list of messages; "
                        "both must be strings or both lists", field="prompt", reason=WRONG_TYPE)
    record = {"chosen": response, "rejected": response}
    if prompt:
        record["prompt"] = prompt
    try:
        pair = normalize(record, "conversational", Columns())[0]
    except DataError as exc:  # the pair rules name the response 'chosen': name it as given
        field = exc.field.replace("chosen", "response", 1) if exc.field else None
        raise DataError(exc.problem, field=field, reason=exc.reason) from None
    return pair.prompt, pair.chosen


def _split_messages(messages: Any) -> tuple[list[Any], list[Any]]:
    """A whole conversation -> (everything before its last assistant turn, that turn)."""
    if not isinstance(messages, list) or not messages:
        raise DataError(f"expected a non-empty list of messages, got {describe_value(messages)}",
                        field="messages", reason=WRONG_TYPE)
    last = max((i for i, m in enumerate(messages)
                if isinstance(m, dict) and m.get("role") == "assistant"), default=None)
    if last is None:
        raise DataError("has no assistant message to score", field="messages",
                        reason=MISSING_FIELD)
    return messages[:last], messages[last:last + 1]


def _normalize(record: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    """``(prompt, response, format, consumed response column)`` of one record."""
    column = next((c for c in RESPONSE_COLUMNS if c in record), None)
    if column is None:
        if "messages" not in record:
            keys = ", ".join(map(str, list(record)[:12])) or "none"
            raise DataError(f"missing (the record has: {keys}); a single-response file needs "
                            f"'response' or 'completion' (or 'messages')", field="response",
                            reason=MISSING_FIELD)
        prompt_msgs, turn = _split_messages(record["messages"])
        return (*render_conversation(prompt_msgs, turn), "messages", None)
    prompt, response = record.get("prompt"), record[column]
    try:
        texts = render_conversation(prompt, response)
    except DataError as exc:
        field = exc.field.replace("response", column, 1) if exc.field else None
        raise DataError(exc.problem, field=field, reason=exc.reason) from None
    return (*texts, "conversational" if isinstance(response, list) else "explicit", column)


def _extras(record: Mapping[str, Any], column: str | None) -> dict[str, Any]:
    consumed = {"prompt", "messages", "source", "id", column}
    return {(f"input_{k}" if k in _OUTPUT else k): v for k, v in record.items()
            if k not in consumed}


def _read_input(unit: Input, on_bad: str, rows: list[dict[str, Any]],
                report: LoadReport) -> None:
    """Append one input's responses to ``rows``; skip or raise on malformed records."""
    start, records, first_problem = len(rows), 0, ""
    for where, record in unit.read(DEFAULT_MAX_RECORD_BYTES):
        records += 1
        try:
            record = as_object(record)
            if "chosen" in record or "rejected" in record:
                raise DataError("holds a preference pair (chosen/rejected) while the first "
                                "input holds single responses; score pairs and responses "
                                "separately", reason=WRONG_TYPE)
            prompt, response, fmt, column = _normalize(record)
            source = record.get("source")
            source = unit.default_source if source is None else source
            if not isinstance(source, str):
                raise DataError(f"expected a string, got {describe_value(source)}",
                                field="source", reason=WRONG_TYPE)
        except DataError as exc:
            problem = report.skip_or_raise(exc, unit.name, where, on_bad)
            first_problem = first_problem or problem
            continue
        rows.append({"input_id": record.get("id"), "prompt": prompt, "response": response,
                     "source": source, "input": unit.name, "format": fmt,
                     "extras": _extras(record, column)})
    if records == 0:
        raise DataError("holds no records", file=unit.name, reason=EMPTY_INPUT)
    if len(rows) == start:
        raise DataError(f"no valid records: all were skipped; the first: {first_problem}",
                        file=unit.name, reason=EMPTY_INPUT)
    _assign_ids(rows[start:])


def _assign_ids(rows: list[dict[str, Any]]) -> None:
    """The input's own ids when every record has one and they are unique, else content hashes
    (the input's ids, if any, stay as an ``input_id`` column)."""
    own = [r["input_id"] for r in rows]
    usable = all(i is not None for i in own) and len({str(i) for i in own}) == len(own)
    for row in rows:
        if usable:
            row["id"] = str(row["input_id"])
        else:
            row["id"] = content_id(row["prompt"], row["response"], "")
            if row["input_id"] is not None:
                row["extras"]["input_id"] = row["input_id"]


def read_responses(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                   on_bad: str = "error") -> tuple[datasets.Dataset, LoadReport]:
    """Load single responses from ``paths`` (see the module docstring for the layouts).

    Returns the dataset and a :class:`LoadReport` whose ``pairs`` counts responses. Malformed
    records stop the load with a :class:`DataError` naming file, line and field, or are skipped
    and counted with ``on_bad="skip"``.
    """
    if on_bad not in ("error", "skip"):
        raise ValueError(f"on_bad must be 'error' or 'skip'; got {on_bad!r}")
    report, rows = LoadReport(), []
    for unit in resolve_inputs(paths):
        _read_input(unit, on_bad, rows, report)
    for row in rows:
        report.by_file[row["input"]] = report.by_file.get(row["input"], 0) + 1
        report.by_format[row["format"]] = report.by_format.get(row["format"], 0) + 1
    report.pairs = len(rows)
    return _build_dataset(rows), report


def _build_dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
    import datasets
    import pyarrow as pa

    ids = unique_ids([r["id"] for r in rows])
    arrays: dict[str, Any] = {"id": pa.array(ids, pa.string())}
    for name in ("prompt", "response", "source"):
        arrays[name] = pa.array([r[name] for r in rows], pa.string())
    for name in dict.fromkeys(k for r in rows for k in r["extras"]):
        try:
            arrays[name] = pa.array([r["extras"].get(name) for r in rows])
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            raise DataError("values of this extra column differ in type across records; one "
                            "column needs one type", field=name, reason=WRONG_TYPE) from None
    return datasets.Dataset(pa.table(arrays))
