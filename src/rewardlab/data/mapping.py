"""Column mappings and winner-label values: how the user tells the loader to read another layout.

A mapping names, for each canonical field, the input column that feeds it::

    prompt=instruction,chosen=output_1,rejected=output_2        # the "mapped" layout
    prompt=instruction,a=output_a,b=output_b,winner=preferred  # the "winner" layout

Four families of keys exclude each other, one per way the input says which response is better:

* ``chosen``/``rejected``: the first response is the better one;
* ``a``/``b``/``winner``: two responses and a column saying which won;
* ``a``/``b``/``score_a``/``score_b``: two responses and one score each (the higher wins);
* ``responses`` with ``text`` and ``rank`` or ``score``: a list of K ranked or scored responses,
  expanded into pairs (``text``, ``rank`` and ``score`` name fields *inside* each element).

``a`` and ``b`` alone are refused, because nothing would say which is better.

A column may be a path into nested values, its steps joined by dots: ``prompt=info.post``,
``a=summaries.0.text`` (a number steps into a list). A top-level column whose name itself holds
a dot is taken as it is (see :func:`resolve_path`).

Winner values are read through a table from a normalized value (:func:`winner_key`) to ``"a"``,
``"b"`` or ``"tie"``. The default table (:data:`DEFAULT_WINNER_VALUES`) reads ``a``/``b``,
``model_a``/``model_b`` (Chatbot Arena) and ``0``/``1`` as *the index of the better response*
(PKU-SafeRLHF's ``better_response_id``: 0 = a, 1 = b), and the tie words of :data:`TIE_VALUES`.
Some sets use the opposite 0/1 convention -- SHP's ``labels`` is 1 when A is preferred -- so a
user table (``winner_values="1=a,0=b"``) *replaces* the default one: then only its values are
accepted, and everything else is an unknown winner.

Problems with a mapping or a table are the user's configuration, not the data, so they raise
:class:`ValueError` whose message names the CLI flag (``--map``, ``--winner-values``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_WINNER_VALUES",
    "INDEX_COLUMNS",
    "MAPPING_KEYS",
    "TIE_VALUES",
    "WINNER_SIDES",
    "as_number",
    "looks_like_score",
    "looks_like_winner",
    "parse_mapping",
    "parse_winner_values",
    "resolve_path",
    "winner_key",
]

MAPPING_KEYS = ("id", "prompt", "chosen", "rejected", "a", "b", "winner", "score_a", "score_b",
                "responses", "text", "rank", "score")
_FAMILIES = {
    "chosen/rejected": ("chosen", "rejected"),
    "winner": ("winner",),
    "score_a/score_b": ("score_a", "score_b"),
    "responses": ("responses", "text", "rank", "score"),
}
"""The mapping keys of each way to say which response is better; two families never mix."""
INDEX_COLUMNS = ("better_response_id", "safer_response_id")
"""Winner columns documented to hold the index (0/1) of the better response (PKU-SafeRLHF):
the only numeric winner columns read without ``--winner-values``."""
WINNER_SIDES = ("a", "b", "tie")
TIE_VALUES = ("tie", "both", "neither", "tie (bothbad)", "both_bad")
"""Winner values that mean "no preference" (compared after :func:`winner_key`)."""
DEFAULT_WINNER_VALUES: dict[str, str] = {
    "a": "a", "b": "b",
    "model_a": "a", "model_b": "b",
    # 0/1 is the index of the better response (PKU-SafeRLHF); SHP users pass "1=a,0=b".
    "0": "a", "1": "b",
    **{tie: "tie" for tie in TIE_VALUES},
}


def parse_mapping(text: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """Parse ``prompt=instruction,a=output_a,b=output_b,winner=preferred`` into a dict.

    Keys are canonical fields (:data:`MAPPING_KEYS`); values are the input's column names. A
    dict passes through after the same checks. ``None`` or ``""`` means no mapping. Raises
    :class:`ValueError` (message starting ``--map:``) for unknown keys, a column named twice
    for one key, or a combination that cannot be read (see the module docstring).
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    items: list[tuple[str, str]] = []
    if isinstance(text, Mapping):
        items = [(str(k).strip(), v.strip() if isinstance(v, str) else v)
                 for k, v in text.items()]
    else:
        for part in text.split(","):
            key, sep, value = part.partition("=")
            _check(bool(sep and key.strip() and value.strip()), "--map",
                   f"expected canonical=column pairs like prompt=instruction, got {part!r}")
            items.append((key.strip(), value.strip()))
    mapping: dict[str, str] = {}
    for key, value in items:
        _check(key in MAPPING_KEYS, "--map",
               f"unknown canonical column {key!r}; use {', '.join(MAPPING_KEYS)}")
        _check(isinstance(value, str) and bool(value), "--map",
               f"{key} must name an input column, got {value!r}")
        _check(key not in mapping, "--map", f"{key} is mapped twice")
        mapping[key] = value
    _check_combination(mapping)
    return mapping or None


def _check_combination(mapping: Mapping[str, str]) -> None:
    used = [name for name, keys in _FAMILIES.items() if set(keys) & set(mapping)]
    _check(len(used) <= 1, "--map",
           f"{' and '.join(used)} exclude each other: map chosen/rejected when the first "
           "response is the better one; a, b and winner when a column says which response won; "
           "a, b, score_a and score_b when each response has a score; or responses with text "
           "and rank (or score) for a ranked list")
    family = used[0] if used else None
    if family in ("winner", "score_a/score_b"):
        need = ("a", "b", *_FAMILIES[family])
        missing = [k for k in need if k not in mapping]
        _check(not missing, "--map",
               f"{', '.join(missing)} missing: {family} needs "
               + ", ".join(f"{k}=COLUMN" for k in need))
    else:
        _check(not ({"a", "b"} & set(mapping)), "--map",
               "winner missing: a and b need winner=COLUMN (a label naming the better one) or "
               "score_a=COLUMN,score_b=COLUMN (one score each)")
    if family == "responses":
        _check("responses" in mapping and "text" in mapping, "--map",
               "a ranking needs responses=COLUMN (the list) and text=FIELD (the response text "
               "in each element)")
        _check(("rank" in mapping) != ("score" in mapping), "--map",
               "a ranking needs exactly one of rank=FIELD (1 is best) or score=FIELD (higher is "
               "better)")
    columns = [mapping[k] for k in MAPPING_KEYS
               if k in mapping and k not in ("id", "text", "rank", "score")]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    _check(not repeated, "--map", f"column {', '.join(map(repr, repeated))} feeds two fields")


def parse_winner_values(spec: str | Mapping[Any, str] | None) -> dict[str, str] | None:
    """Parse a user table of winner values, e.g. ``"1=a,0=b,tie=tie"``, into key -> side.

    Keys are winner values as found in the data (compared after :func:`winner_key`: strip,
    case-insensitive, ``1`` == ``"1"`` == ``1.0``); sides are ``a``, ``b`` or ``tie``. A dict
    such as ``{1: "a", 0: "b"}`` works too. ``None`` or ``""`` means the default table. Raises
    :class:`ValueError` (message starting ``--winner-values:``) when malformed.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = []
        for part in spec.split(","):
            value, sep, side = part.rpartition("=")
            _check(bool(sep and value.strip() and side.strip()), "--winner-values",
                   f"expected value=side pairs like 1=a,0=b,tie=tie, got {part!r}")
            items.append((value, side))
    table: dict[str, str] = {}
    for value, side in items:
        key = winner_key(value)
        _check(key is not None and key != "", "--winner-values",
               f"{value!r} cannot be a winner value (use text or finite numbers)")
        norm = side.strip().lower() if isinstance(side, str) else side
        _check(norm in WINNER_SIDES, "--winner-values",
               f"{value!r} maps to {side!r}; a winner value must map to a, b or tie")
        _check(table.get(key, norm) == norm, "--winner-values", f"{value!r} is mapped twice")
        table[key] = norm
    return table


def winner_key(value: Any) -> str | None:
    """The normalized form under which a winner value is looked up, or ``None`` if unusable.

    Text is stripped and lower-cased; numbers read as their value, so whole numbers (``1``,
    ``1.0``, ``" 1 "``, ``"1.0"``) all become ``"1"`` and others their shortest repr
    (``2/3`` and ``"0.6666666666666666"`` both become ``"0.6666666666666666"``). Booleans,
    non-finite numbers, lists and objects give ``None``: ``true`` is not silently read as ``1``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_key(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    number = as_number(text)
    # A numeric string such as "1" or "1.0" reads like the number; "nan" stays text.
    return text if number is None else _number_key(number)


def _number_key(number: float) -> str | None:
    if not math.isfinite(number):
        return None
    return str(int(number)) if number.is_integer() else repr(float(number))


def as_number(value: Any) -> float | None:
    """``value`` as a finite number: ints, floats and numeric text (CSV cells); else ``None``
    (booleans, ``NaN``, words)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _check(ok: bool, flag: str, problem: str) -> None:
    if not ok:
        raise ValueError(f"{flag}: {problem}")


# Column names that usually hold a winner label ("preferred", "labels", "better_response_id").
_LABEL_NAME = re.compile(r"prefer|winner|label|better|safer|choice|chose|chosen|pick|verdict|win$")
_SIDE_WORDS = frozenset({"a", "b", "model_a", "model_b"})
_MAX_DISTINCT = 8


def looks_like_winner(name: str, values: Iterable[Any]) -> list[str] | None:
    """The distinct values of an extra column if it looks like a winner label, else ``None``.

    It does when every non-null value reads as a winner value (default table) and either the
    values name sides in words (``a``/``b``, ``model_a``/``model_b``, with or without ties) or
    the column name says so (``preferred``, ``winner``, ``label(s)``, ``better_*``, ``choice``)
    and the values are ``0``/``1`` or side words. 0/1 columns with other names are left alone:
    counts and flags (PandaLM's ``votes_against``) are 0/1 too.
    """
    seen: dict[str, None] = {}
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # missing labels (pandas writes NaN) do not make it less of a label
        key = winner_key(value)
        if key is None or key not in DEFAULT_WINNER_VALUES:
            return None
        seen.setdefault(key)
        if len(seen) > _MAX_DISTINCT:
            return None
    sides = {key for key in seen if key not in TIE_VALUES}
    if not sides:
        return None
    hinted = bool(_LABEL_NAME.search(name.lower()))
    if sides <= _SIDE_WORDS and (hinted or len(sides) > 1 or "model_a" in sides
                                 or "model_b" in sides):
        return list(seen)
    return list(seen) if hinted and sides <= {"0", "1"} else None


# Numeric columns named like a score or a preference (HelpSteer2's "preference_strength",
# WebGPT's "score_0", "rating", "overall_preference"): when left behind, they may say that
# chosen and rejected should be the other way round.
_SCORE_NAME = re.compile(r"score|rating|prefer|label|choice|winner|better|verdict|judg|rank")


def looks_like_score(name: str, values: Iterable[Any]) -> list[str] | None:
    """The first distinct values of an extra column if it holds numbers and is named like a
    score, rating or preference (:data:`_SCORE_NAME`), else ``None``. Missing values are
    ignored; one value that is not a number clears the column."""
    if not _SCORE_NAME.search(name.lower()):
        return None
    seen: dict[str, None] = {}
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if as_number(value) is None:
            return None
        if len(seen) < _MAX_DISTINCT:
            seen.setdefault(winner_key(value) or str(value))
    return list(seen) or None


def resolve_path(record: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """``(found, value)`` of a column path in ``record``: the column itself when the record has
    it (a name may hold dots), else the dotted steps walked through objects and lists
    (``summaries.0.text``); ``(False, None)`` when a step is missing."""
    if path in record:
        return True, record[path]
    value: Any = record
    for step in path.split("."):
        if isinstance(value, Mapping) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.lstrip("-").isdigit() and \
                -len(value) <= int(step) < len(value):
            value = value[int(step)]
        else:
            return False, None
    return True, value
