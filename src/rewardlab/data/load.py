"""Loading preference pairs: read every input, normalize, validate, flag, build one Dataset.

The returned ``datasets.Dataset`` has the columns ``id``, ``prompt``, ``chosen``, ``rejected``,
``source`` and ``suspicious`` (list of kinds, empty when fine), with ``ties="half"`` also
``target`` (float, P(chosen preferred): 0.5 for ties, 1.0 otherwise), then every extra input
column as it was (an extra column named like one of those is kept as ``input_<name>``). Rows
keep file order, files the order given.

Extra columns keep their values as parsed: JSON ``NaN`` / ``Infinity`` / ``-Infinity`` (which
Python's JSON reader accepts, and pandas writes) stay float NaN / inf, which Arrow stores as
ordinary float64 values; CSV cells stay text (``"nan"``). A value that cannot join its column's
Arrow type (an integer over 64 bits, a string among numbers, ...) is a :class:`DataError` naming
the record.

Ids: an input's own ``id`` column is used (as text) when every record of that input has one and
they are unique within it; otherwise the id is a hash of the pair's text and the input's ids, if
any, are kept as ``input_id``. Ids repeated across the whole dataset (exact duplicate pairs, or
the same id in two files) get ``-1``, ``-2``, ... suffixes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rewardlab.data.checks import content_id, flag_suspicious, unique_ids
from rewardlab.data.errors import (
    EMPTY_INPUT,
    WRONG_TYPE,
    DataError,
    as_object,
    describe_value,
)
from rewardlab.data.formats import (
    Columns,
    NumericWinner,
    Pair,
    detect_format,
    diagnose,
    normalize,
)
from rewardlab.data.io import Input, resolve_inputs
from rewardlab.data.load_report import LoadReport
from rewardlab.data.mapping import (
    as_number,
    looks_like_score,
    looks_like_winner,
    parse_mapping,
    parse_winner_values,
    resolve_path,
    winner_key,
)
from rewardlab.data.ranked import RANKING_PAIRS
from rewardlab.data.readers import RawRecords
from rewardlab.data.streams import DEFAULT_MAX_RECORD_BYTES

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "ON_BAD",
    "RANKING_PAIRS",
    "TIES",
    "PathsLike",
    "load_preferences",
    "read_preferences",
]

ON_BAD = ("error", "skip")
TIES = ("drop", "half")
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
    winner_values: dict[Any, str] | str | None = None,
    ties: str = "drop",
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    min_score_gap: float = 0.0,
    ranking_pairs: str = "all",
) -> tuple[datasets.Dataset, LoadReport]:
    """Load preference pairs from ``paths`` and report what was found.

    ``mapping`` maps canonical fields to input columns (dict, or ``prompt=instruction,...``):
    ``prompt``, ``id`` and either ``chosen``/``rejected`` or ``a``/``b``/``winner`` (two
    responses and a column naming the better one; see :mod:`rewardlab.data.mapping`).
    ``winner_values`` replaces the default table of winner values (``"1=a,0=b,tie=tie"``, or a
    dict); the default reads a/b, model_a/model_b, 0/1 as the index of the better response, and
    tie words. ``ties="drop"`` drops pairs whose winner is a tie (counted in
    ``report.ties_dropped``); ``"half"`` keeps them (a as chosen) and adds a float ``target``
    column: 0.5 for ties, 1.0 for every other row. ``min_score_gap``: two scores (``score_a``/
    ``score_b``, or a ranking's ``score``) at most this far apart are a tie. ``ranking_pairs``
    (``all``, ``best-worst``, ``adjacent``) says which pairs a ranked list of responses gives.
    A numeric winner column other than ``better_response_id``/``safer_response_id`` is refused
    (``ValueError`` naming ``--map``) unless ``winner_values`` says what its numbers mean.
    ``on_bad="error"`` stops at the first malformed record with a :class:`DataError` naming file,
    line and field; ``"skip"`` skips such records and counts them in the report. Missing, empty
    or unreadable inputs are always errors. ``drop_suspicious`` removes flagged pairs.
    ``max_record_bytes`` bounds one record (a JSON line, a JSON array element, a CSV cell or
    line; default 64 MiB): a longer JSON line is a malformed record (``record_too_large``), a
    longer JSON element or CSV cell stops the file. Files are streamed, never read whole.
    """
    columns = _columns(mapping, on_bad, winner_values, ties, max_record_bytes)
    columns = dataclasses.replace(columns, min_score_gap=_gap(min_score_gap),
                                  ranking_pairs=_ranking_mode(ranking_pairs))
    report = LoadReport()
    rows = _Rows()
    for unit in resolve_inputs(paths):
        _read_input(unit, columns, on_bad, max_record_bytes, rows, report)

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
    report.ties_kept = sum(rows.pairs[i].tie for i in keep)
    return _build_dataset(rows, ids, flags, keep, columns.keep_ties), report


def load_preferences(
    paths: PathsLike,
    *,
    mapping: dict[str, str] | str | None = None,
    on_bad: str = "error",
    drop_suspicious: bool = False,
    winner_values: dict[Any, str] | str | None = None,
    ties: str = "drop",
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    min_score_gap: float = 0.0,
    ranking_pairs: str = "all",
) -> datasets.Dataset:
    """:func:`read_preferences` without the report; skipped and suspicious pairs are logged."""
    ds, report = read_preferences(paths, mapping=mapping, on_bad=on_bad,
                                  drop_suspicious=drop_suspicious, winner_values=winner_values,
                                  ties=ties, max_record_bytes=max_record_bytes,
                                  min_score_gap=min_score_gap, ranking_pairs=ranking_pairs)
    problems = report.problem_lines()
    if problems:
        logger.warning("loaded %d pairs; %s", report.pairs, "\n".join(problems))
    return ds


def _columns(mapping: dict[str, str] | str | None, on_bad: str,
             winner_values: dict[Any, str] | str | None, ties: str,
             max_record_bytes: int) -> Columns:
    """Check the options (``ValueError`` naming the CLI flag) and build the column plan."""
    if on_bad not in ON_BAD:
        raise ValueError(f"on_bad must be one of {', '.join(map(repr, ON_BAD))}; got {on_bad!r}")
    if ties not in TIES:
        raise ValueError(f"--ties: got {ties!r}; choose one of {', '.join(TIES)}")
    if isinstance(max_record_bytes, bool) or not isinstance(max_record_bytes, int) \
            or max_record_bytes < 1:
        raise ValueError(f"--max-record-bytes: expected a positive whole number of bytes, got "
                         f"{max_record_bytes!r}")
    parsed = parse_mapping(mapping)
    table = parse_winner_values(winner_values)
    if table is not None and not (parsed and "winner" in parsed):
        raise ValueError("--winner-values: given, but the mapping names no winner column "
                         "(map a=COLUMN,b=COLUMN,winner=COLUMN)")
    return Columns.from_mapping(parsed, table, keep_ties=ties == "half")


def _gap(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"--min-score-gap: expected a number >= 0, got {value!r}")
    return float(value)


def _ranking_mode(value: str) -> str:
    if value not in RANKING_PAIRS:
        raise ValueError(f"--ranking-pairs: got {value!r}; choose one of "
                         f"{', '.join(RANKING_PAIRS)}")
    return value


def _read_input(unit: Input, columns: Columns, on_bad: str, max_record_bytes: int,
                rows: _Rows, report: LoadReport) -> None:
    """Append the pairs of one input to ``rows``; skip or raise on malformed records."""
    fmt = detect_format({}, columns) if columns.mapped else None
    start, records, skipped, ties = len(rows.pairs), 0, 0, 0
    first_problem = ""
    raw = unit.read(max_record_bytes)
    for where, record in raw:
        records += 1
        try:
            record = as_object(record)
            # The first well-formed record decides the file's layout.
            record_fmt = fmt or detect_format(record, columns)
            if record_fmt is None:
                raise diagnose(record)
            pairs = normalize(record, record_fmt, columns)
            fmt = record_fmt
        except DataError as exc:
            problem = report.skip_or_raise(exc, unit.name, where, on_bad)
            skipped += 1
            first_problem = first_problem or problem
            continue
        except NumericWinner as exc:
            raise _numeric_winner(unit.name, exc, raw) from None
        for pair in pairs:
            if pair.tie and not columns.keep_ties:
                ties += 1
                continue
            rows.pairs.append(pair)
            rows.sources.append(pair.source if pair.source is not None else unit.default_source)
            rows.inputs.append(unit.name)
            rows.formats.append(record_fmt)
            rows.wheres.append(where)
    report.ties_dropped += ties
    _check_not_empty(unit, records, skipped, ties, first_problem, len(rows.pairs) - start)
    rows.ids.extend(_input_ids(rows.pairs[start:], columns))
    kept = sum(pair.source_kept for pair in rows.pairs[start:])
    if kept:
        report.warnings.append(
            f"{unit.name}: column 'source' is not a string in {kept:,} pair(s) (rewardlab's "
            "own source column is one name per pair): kept as 'input_source'; those pairs' "
            f"source is {unit.default_source!r}")
    report.warnings.extend(_label_warnings(unit.name, rows.pairs[start:], columns))


_VALUES_SHOWN = 8


def _numeric_winner(name: str, exc: NumericWinner, rest: RawRecords) -> DataError:
    """The refusal of a numeric winner column, naming the values the input holds."""
    seen = {winner_key(exc.value): None}
    for _, record in rest:
        if len(seen) >= _VALUES_SHOWN:
            break
        found, value = (resolve_path(record, exc.column) if isinstance(record, dict)
                        else (False, None))
        if found and winner_key(value) is not None:
            seen.setdefault(winner_key(value))
    values = ", ".join(str(v) for v in sorted(seen, key=lambda k: float(k)
                                              if _numeric(k) else math.inf))
    # Never skipped: every record of the column would be read the same wrong way.
    return DataError(
        f"the --map winner column holds numbers (values seen: {values}), and no "
        "--winner-values says what they mean; read through the default table, 0 would "
        "mean a wins, 1 b wins, and any other number would be refused. If the column is a's "
        f"score, map both scores instead: score_a={exc.column},score_b=COLUMN (the higher wins; "
        "--min-score-gap G makes closer scores ties). If its numbers say which response won, "
        "say what each means, e.g. --winner-values 1=a,0=b,0.5=tie", file=name, field=exc.column)


def _numeric(key: str | None) -> bool:
    try:
        float(key or "")
    except ValueError:
        return False
    return True


def _check_not_empty(unit: Input, records: int, skipped: int, ties: int, first_problem: str,
                     kept: int) -> None:
    """An input that gives no pairs is an error, even when skipping: say why it gave none."""
    if records == 0:
        raise DataError("holds no records", file=unit.name, reason=EMPTY_INPUT)
    if kept:
        return
    if not ties:
        raise DataError(f"no valid records: all {skipped} were skipped; the first: "
                        f"{first_problem}", file=unit.name, reason=EMPTY_INPUT)
    raise DataError(f"no pairs left: {ties} tie(s) dropped (ties='half' keeps them), "
                    f"{skipped} record(s) skipped", file=unit.name, reason=EMPTY_INPUT)


def _label_warnings(name: str, pairs: list[Pair], columns: Columns) -> list[str]:
    """Warnings for extra columns of one input that look like an unused winner label, score or
    preference, or per-side scores that disagree with the chosen/rejected order."""
    warnings = []
    extra_names = dict.fromkeys(key for pair in pairs for key in pair.extras)
    for column in extra_names:
        if column == columns.winner or column in columns.reserved():
            continue  # the label this input was read with, or a column rewardlab wrote
        values = [pair.extras.get(column) for pair in pairs]
        twin = _twin(column, extra_names)
        if twin is not None:
            warning = _side_warning(name, column, twin, pairs)
        elif _twin(column.replace("rejected", "chosen"), extra_names) is not None:
            continue  # the rejected side of a pair of side columns, checked with its twin
        else:
            # Where a label, two scores or a ranking decided, a numeric leftover is metadata
            # (SHP's score_A); where nothing did, it may be the label that was missed.
            decided = columns.winner or columns.score_a or columns.responses
            warning = _leftover_warning(name, column, values, scores=not decided)
        if warning:
            warnings.append(warning)
    return warnings


def _twin(column: str, names: Mapping[str, None]) -> str | None:
    """The ``rejected`` twin of a ``chosen`` column (``chosen_rating`` -> ``rejected_rating``)."""
    twin = column.replace("chosen", "rejected")
    return twin if "chosen" in column and twin in names and twin != column else None


def _side_warning(name: str, chosen: str, rejected: str, pairs: list[Pair]) -> str | None:
    """Per-side scores (``chosen_rating``/``rejected_rating``) that rank rejected higher."""
    below = 0
    for pair in pairs:
        c, r = as_number(pair.extras.get(chosen)), as_number(pair.extras.get(rejected))
        below += c is not None and r is not None and c < r
    if not below:
        return None
    return (f"{name}: column {chosen!r} is below {rejected!r} in {below:,} of {len(pairs):,} "
            "pairs, so those pairs may be backwards; to let the scores decide, map a=CHOSEN,"
            f"b=REJECTED,score_a={chosen},score_b={rejected}")


def _leftover_warning(name: str, column: str, values: list[Any], *, scores: bool) -> str | None:
    """A leftover column that looks like a winner label, score or preference."""
    shown = looks_like_winner(column, values)
    if shown is not None:
        return (f"{name}: column {column!r} looks like a winner label (values: "
                f"{', '.join(shown[:6])}) but did not decide which response is chosen; if it "
                "says which response won, map the two responses as a and b and the label as "
                f"winner, e.g. a=COLUMN,b=COLUMN,winner={column}")
    shown = looks_like_score(column, values) if scores else None
    if shown is None:
        return None
    return (f"{name}: column {column!r} holds numbers and is named like a score, rating or "
            f"preference (values: {', '.join(shown[:6])}) but did not decide which response "
            "is chosen; if it says which response is better, map the two responses as a and b "
            f"and read it with winner={column} and --winner-values (what each value means), "
            "or, for one score per response, score_a=COLUMN,score_b=COLUMN")


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
                   keep: list[int], with_target: bool) -> datasets.Dataset:
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
    if with_target:
        arrays["target"] = pa.array([0.5 if p.tie else 1.0 for p in pairs], pa.float64())
    extra_names = list(dict.fromkeys(name for p in rows.pairs for name in p.extras))
    for name in extra_names:
        values = [p.extras.get(name) for p in pairs]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            raise _unstorable(rows, keep, name) from None
    table = pa.table(arrays)
    return datasets.Dataset(table, fingerprint=_fingerprint(table))


def _fingerprint(table: pa.Table) -> str:
    """A content hash of ``table``, read from its Arrow buffers in place.

    Without one, ``datasets`` fingerprints an in-memory table by pickling it: a full copy,
    which doubled the peak memory of a large load. Same content, same fingerprint.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    for name, column in zip(table.column_names, table.columns, strict=True):
        digest.update(name.encode("utf-8", "surrogatepass") + b"\0" + str(column.type).encode())
        for chunk in column.chunks:
            digest.update(f"{chunk.offset}:{len(chunk)}".encode())
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(memoryview(buffer))
    return digest.hexdigest()[:16]


def _unstorable(rows: _Rows, keep: list[int], name: str) -> DataError:
    """Name the first record whose value of extra column ``name`` cannot join the column."""
    import pyarrow as pa

    values = [rows.pairs[i].extras.get(name) for i in keep]
    # The shortest failing prefix ends at the culprit; Arrow's conversion is monotone enough
    # (a prefix that fails keeps failing when extended) for a binary search.
    lo, hi = 0, len(values)  # values[:lo] converts, values[:hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pa.array(values[:mid])
            lo = mid
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            hi = mid
    i = keep[hi - 1]
    value = values[hi - 1]
    earlier = {type(v).__name__ for v in values[:hi - 1] if v is not None}
    problem = (f"this column holds {describe_value(value)} here but "
               f"{'/'.join(sorted(earlier))} values earlier; one column needs one type"
               if earlier and type(value).__name__ not in earlier
               else f"{describe_value(value)} that cannot be stored in an Arrow column with the "
                    "values before it (too large a number, or a differently shaped value)")
    return DataError(problem, file=rows.inputs[i], where=rows.wheres[i], field=name,
                     reason=WRONG_TYPE)
