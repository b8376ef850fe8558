"""Loading preference pairs: read every input, normalize, validate, flag, build one Dataset.

The returned ``datasets.Dataset`` has the columns ``id``, ``prompt``, ``chosen``, ``rejected``,
``source`` and ``suspicious`` (list of kinds, empty when fine), then every extra input column
as it was (an extra column named like one of those is kept as ``input_<name>``). Rows keep file
order, files the order given.

Ids: an input's own ``id`` column is used (as text) when every record of that input has one and
they are unique within it; otherwise the id is a hash of the pair's text and the input's ids, if
any, are kept as ``input_id``. Ids repeated across the whole dataset (exact duplicate pairs, or
the same id in two files) get ``-1``, ``-2``, ... suffixes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewardlab.config import parse_mapping
from rewardlab.data.checks import content_id, flag_suspicious, unique_ids
from rewardlab.data.errors import (
    EMPTY_INPUT,
    NOT_AN_OBJECT,
    WRONG_TYPE,
    DataError,
    describe_value,
)
from rewardlab.data.formats import Columns, Pair, detect_format, diagnose, normalize
from rewardlab.data.io import Input, resolve_inputs
from rewardlab.data.load_report import LoadReport

if TYPE_CHECKING:
    import datasets

__all__ = ["ON_BAD", "PathsLike", "load_preferences", "read_preferences"]

ON_BAD = ("error", "skip")
PathsLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

logger = logging.getLogger("rewardlab")


@dataclass
class _Rows:
    """The pairs read so far, as parallel lists (what the Arrow table is built from)."""

    pairs: list[Pair] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    wheres: list[str] = field(default_factory=list)


def read_preferences(
    paths: PathsLike,
    *,
    mapping: dict[str, str] | str | None = None,
    on_bad: str = "error",
    drop_suspicious: bool = False,
) -> tuple[datasets.Dataset, LoadReport]:
    """Load preference pairs from ``paths`` and report what was found.

    ``mapping`` maps canonical columns to input columns (dict, or ``prompt=instruction,...``).
    ``on_bad="error"`` stops at the first malformed record with a :class:`DataError` naming file,
    line and field; ``"skip"`` skips such records and counts them in the report. Missing, empty
    or unreadable inputs are always errors. ``drop_suspicious`` removes flagged pairs.
    """
    if on_bad not in ON_BAD:
        raise ValueError(f"on_bad must be one of {', '.join(map(repr, ON_BAD))}; got {on_bad!r}")
    columns = Columns.from_mapping(parse_mapping(mapping))
    report = LoadReport()
    rows = _Rows()
    for unit in resolve_inputs(paths):
        _read_input(unit, columns, on_bad, rows, report)

    pairs = rows.pairs
    flags = flag_suspicious([p.prompt for p in pairs], [p.chosen for p in pairs],
                            [p.rejected for p in pairs], [p.prompt_present for p in pairs],
                            [p.early_divergence for p in pairs])
    ids = unique_ids(rows.ids)
    for i, kinds in enumerate(flags):
        for kind in kinds:
            report.suspicious[kind].append(ids[i])
    keep = [i for i, kinds in enumerate(flags) if not (drop_suspicious and kinds)]
    report.dropped_suspicious = len(pairs) - len(keep)
    for i in keep:
        report.by_file[rows.inputs[i]] = report.by_file.get(rows.inputs[i], 0) + 1
        report.by_format[rows.formats[i]] = report.by_format.get(rows.formats[i], 0) + 1
    report.pairs = len(keep)
    return _build_dataset(rows, ids, flags, keep), report


def load_preferences(
    paths: PathsLike,
    *,
    mapping: dict[str, str] | str | None = None,
    on_bad: str = "error",
    drop_suspicious: bool = False,
) -> datasets.Dataset:
    """:func:`read_preferences` without the report; skipped and suspicious pairs are logged."""
    ds, report = read_preferences(paths, mapping=mapping, on_bad=on_bad,
                                  drop_suspicious=drop_suspicious)
    problems = report.problem_lines()
    if problems:
        logger.warning("loaded %d pairs; %s", report.pairs, "\n".join(problems))
    return ds


def _read_input(unit: Input, columns: Columns, on_bad: str, rows: _Rows,
                report: LoadReport) -> None:
    """Append the pairs of one input to ``rows``; skip or raise on malformed records."""
    fmt = "mapped" if columns.mapped else None
    start, records, skipped = len(rows.pairs), 0, 0
    first_problem = ""
    for where, record in unit.read():
        records += 1
        try:
            if isinstance(record, DataError):
                raise record
            if not isinstance(record, dict):
                raise DataError("expected a JSON object (one record), got "
                                f"{describe_value(record)}", reason=NOT_AN_OBJECT)
            # The first well-formed record decides the file's layout.
            record_fmt = fmt or detect_format(record, columns)
            if record_fmt is None:
                raise diagnose(record)
            pair = normalize(record, record_fmt, columns)
            fmt = record_fmt
        except DataError as exc:
            error = exc.located(unit.name, where)
            if on_bad == "error":
                raise error from None
            report.add_skipped(error.reason, str(error))
            skipped += 1
            first_problem = first_problem or str(error)
            continue
        rows.pairs.append(pair)
        rows.sources.append(pair.source if pair.source is not None else unit.default_source)
        rows.inputs.append(unit.name)
        rows.formats.append(record_fmt)
        rows.wheres.append(where)
    if records == 0:
        raise DataError("holds no records", file=unit.name, reason=EMPTY_INPUT)
    if len(rows.pairs) == start:
        raise DataError(f"no valid records: all {skipped} were skipped; the first: "
                        f"{first_problem}", file=unit.name, reason=EMPTY_INPUT)
    rows.ids.extend(_input_ids(rows.pairs[start:], columns))


def _input_ids(pairs: list[Pair], columns: Columns) -> list[str]:
    """Ids for one input's pairs: its own when complete and unique, else content hashes."""
    own = [p.input_id for p in pairs]
    if all(i is not None for i in own):
        as_text = [str(i) for i in own]
        if len(set(as_text)) == len(as_text):
            return as_text
    # Not usable as ids, but not to be lost either: keep them as an extra column.
    if any(i is not None for i in own):
        name = "input_id" if columns.id == "id" else columns.id
        for pair in pairs:
            pair.extras[name] = pair.input_id
    return [content_id(p.prompt, p.chosen, p.rejected) for p in pairs]


def _build_dataset(rows: _Rows, ids: list[str], flags: list[list[str]],
                   keep: list[int]) -> datasets.Dataset:
    import datasets
    import pyarrow as pa

    pairs = [rows.pairs[i] for i in keep]
    string = pa.string()
    arrays: dict[str, pa.Array] = {
        "id": pa.array([ids[i] for i in keep], string),
        "prompt": pa.array([p.prompt for p in pairs], string),
        "chosen": pa.array([p.chosen for p in pairs], string),
        "rejected": pa.array([p.rejected for p in pairs], string),
        "source": pa.array([rows.sources[i] for i in keep], string),
        "suspicious": pa.array([flags[i] for i in keep], pa.list_(string)),
    }
    extra_names = list(dict.fromkeys(name for p in rows.pairs for name in p.extras))
    for name in extra_names:
        values = [p.extras.get(name) for p in pairs]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            raise _mixed_types(rows, keep, name) from None
    return datasets.Dataset(pa.table(arrays))


def _mixed_types(rows: _Rows, keep: list[int], name: str) -> DataError:
    """Name the first record whose value of extra column ``name`` breaks its column's type."""
    first_type: type | None = None
    for i in keep:
        value = rows.pairs[i].extras.get(name)
        if value is None:
            continue
        if first_type is None:
            first_type = type(value)
        elif type(value) is not first_type:
            return DataError(f"this column holds {describe_value(value)} here but "
                             f"{first_type.__name__} values earlier; one column needs one type",
                             file=rows.inputs[i], where=rows.wheres[i], field=name,
                             reason=WRONG_TYPE)
    return DataError("values of this extra column cannot form one Arrow column", field=name,
                     reason=WRONG_TYPE)
