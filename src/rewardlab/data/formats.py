"""Input layouts of preference data, detected per file and normalized to prompt/chosen/rejected.

The layouts are the table :data:`LAYOUTS`: each entry has its own detection rule and its own
reader, tried in the table's order (the names are the keys of ``LoadReport.by_format``):

``explicit``
    ``prompt``, ``chosen`` and ``rejected`` strings. ``prompt`` may be absent (empty prompt).
``hh``
    Anthropic HH-RLHF: only ``chosen`` and ``rejected``, each a whole dialogue
    ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. The prompt is the longest shared prefix of the two
    dialogues, cut back to end right after an ``"\\n\\nAssistant:"`` marker; the responses are the
    exact remainders, so they keep the space that follows the marker (``" Sure, ..."``) and
    ``prompt + response`` rebuilds each dialogue byte for byte.
``conversational``
    TRL style: ``chosen``/``rejected`` (and optional ``prompt``) are lists of ``{role, content}``
    messages. A ``prompt`` that is a string beside message-list responses (UltraFeedback-
    binarized, most DPO mixes) is read like no prompt, since the responses repeat it as their
    opening user turn: the shared leading messages are the prompt and are stripped from the
    responses (responses that repeat nothing get the string as one user turn); the string is kept
    as ``prompt_text`` so an export writes the same shape back.
    Without ``prompt``, the prompt is the shared leading messages, cut back (like HH) so
    that both responses start with an assistant message. Messages are rendered to HH-style text:
    ``"\\n\\n{Role}: {content}"`` with user -> Human, assistant -> Assistant, system -> System
    (other roles capitalized); the prompt ends with ``"\\n\\nAssistant:"`` and a response that
    starts with an assistant message continues it as ``" {content}"``, exactly as in HH data.
``mapped``
    Any layout, with a mapping canonical -> input column (``prompt=instruction,chosen=output_1``);
    the mapped columns hold strings (or message lists, read as ``conversational``). Canonical
    columns left out of the mapping keep their names. A mapped column may be a dotted path into
    nested values (``prompt=info.post``, ``a=summaries.0.text``).
``winner``
    Two responses and a label saying which won, read with a mapping of ``a``, ``b`` and
    ``winner`` (and optionally ``prompt``, ``id``): SHP (``a=human_ref_A,b=human_ref_B,
    winner=labels`` with ``winner_values="1=a,0=b"``), PKU-SafeRLHF (``a=response_0,
    b=response_1,winner=better_response_id``), Chatbot Arena (``a=conversation_a,
    b=conversation_b,winner=winner``). ``a``/``b`` are both strings -- read like ``explicit``,
    or like ``hh`` when there is no prompt and both are HH dialogues -- or both message lists,
    read like ``conversational`` (without a prompt column, the shared leading messages are the
    prompt). The winner value picks which becomes ``chosen``; how values read (``a``/``b``,
    ``0``/``1`` = index of the better response, ``model_a``/``model_b``, tie words, or the
    user's ``winner_values`` table) is described in :mod:`rewardlab.data.mapping`. A value that
    is not in the table is a malformed record (reason ``unknown_winner``). Ties are dropped and
    counted (``LoadReport.ties_dropped``), or, with ``ties="half"``, kept with ``a`` as chosen,
    ``b`` as rejected and ``target`` 0.5. The winner column itself is kept as an extra column.
    A numeric winner column is refused without ``winner_values`` unless it is one of the
    documented index columns (:data:`~rewardlab.data.mapping.INDEX_COLUMNS`): a score read as a
    label loads pairs backwards without a trace.
``scores``
    Two responses ``a``/``b`` and one score each (``score_a``/``score_b``: WebGPT's ``score_0``/
    ``score_1``, rating sets): the higher score wins, a gap of at most ``min_score_gap`` is a tie
    (:func:`~rewardlab.data.ranked.score_side`). The scores follow the sides as
    ``chosen_score``/``rejected_score``.
``ranking``
    One record holds K responses (``responses``, a list of objects with ``text`` and ``rank``
    or ``score`` fields: Nectar's ``answers``, UltraFeedback's ``completions``), expanded into
    pairs by ``ranking_pairs`` (:func:`~rewardlab.data.ranked.rank_pairs`); equal ranks are ties.
    The ranks (or scores) follow the sides as ``chosen_rank``/``rejected_rank``.

A file's layout is decided by its first well-formed record and then holds for the whole file.
Early divergence: an HH pair whose dialogues differ before the last assistant turn of both (or a
conversational pair whose responses contain non-assistant messages) gets responses that run over
several turns; such pairs are flagged ``early_divergence``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rewardlab.data.dialogue import (
    ASSISTANT_MARKER,
    Message,
    is_dialogue,
    render_messages,
    split_hh,
    split_messages,
)
from rewardlab.data.errors import (
    BAD_COLUMN_NAME,
    MISSING_FIELD,
    TOO_FEW_RESPONSES,
    UNKNOWN_WINNER,
    WRONG_TYPE,
    DataError,
    describe_value,
)
from rewardlab.data.mapping import (
    DEFAULT_WINNER_VALUES,
    INDEX_COLUMNS,
    as_number,
    resolve_path,
    winner_key,
)
from rewardlab.data.ranked import rank_pairs, score_side

__all__ = [
    "ASSISTANT_MARKER",
    "FORMATS",
    "LAYOUTS",
    "MESSAGE_COLUMNS",
    "PROMPT_TEXT_COLUMN",
    "RESERVED_COLUMNS",
    "Columns",
    "Layout",
    "NumericWinner",
    "Pair",
    "detect_format",
    "diagnose",
    "normalize",
    "render_messages",
    "split_hh",
]

MESSAGE_COLUMNS = ("prompt_messages", "chosen_messages", "rejected_messages")
"""Conversational pairs also keep their messages (``[{role, content}, ...]``, prompt and the two
responses as split), so an export can write TRL's conversational format instead of flattened
text."""
PROMPT_TEXT_COLUMN = "prompt_text"
"""Conversational pairs whose input prompt was a string beside message-list responses keep that
string here, so an export writes the input's shape back."""
RESERVED_COLUMNS = frozenset({"id", "prompt", "chosen", "rejected", "source", "suspicious",
                              *MESSAGE_COLUMNS, PROMPT_TEXT_COLUMN})
"""Output columns the loader writes itself; an extra input column of the same name is kept as
``input_<name>`` so that nothing is overwritten (``target`` too, when ties are kept)."""


@dataclass(frozen=True)
class Columns:
    """Which input column feeds each canonical field (identity unless mapped), and how the
    ``winner`` layout reads its labels."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    id: str = "id"
    a: str = "a"
    b: str = "b"
    winner: str | None = None
    """The winner column; set only by a mapping, and then the layout is ``winner``."""
    score_a: str | None = None
    """a's score column (with ``score_b``): the ``scores`` layout."""
    score_b: str | None = None
    responses: str | None = None
    """The column holding a list of ranked responses: the ``ranking`` layout."""
    text: str = "text"
    """Field of a ranked response holding its text."""
    rank: str | None = None
    """Field of a ranked response holding its rank (1 is best)."""
    score: str | None = None
    """Field of a ranked response holding its score (higher is better)."""
    mapped: frozenset[str] = frozenset()
    """Canonical fields named by the user's mapping: those columns are required."""
    winner_values: Mapping[str, str] = field(default_factory=lambda: DEFAULT_WINNER_VALUES)
    """Normalized winner value (:func:`~rewardlab.data.mapping.winner_key`) -> a, b or tie."""
    custom_winner_values: bool = False
    """``winner_values`` came from the user, who has said what the column's numbers mean."""
    keep_ties: bool = False
    """Keep tied pairs (with a ``target`` column) instead of dropping them."""
    min_score_gap: float = 0.0
    """Scores at most this far apart are a tie."""
    ranking_pairs: str = "all"
    """Which pairs a ranking gives (:data:`~rewardlab.data.ranked.RANKING_PAIRS`)."""

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str] | None,
                     winner_values: Mapping[str, str] | None = None,
                     keep_ties: bool = False, min_score_gap: float = 0.0,
                     ranking_pairs: str = "all") -> Columns:
        """Columns of a parsed mapping (see :func:`~rewardlab.data.mapping.parse_mapping`)."""
        values = winner_values or DEFAULT_WINNER_VALUES
        return cls(**(mapping or {}), mapped=frozenset(mapping or ()), winner_values=values,
                   custom_winner_values=winner_values is not None, keep_ties=keep_ties,
                   min_score_gap=min_score_gap, ranking_pairs=ranking_pairs)

    def consumed(self) -> frozenset[str]:
        """Input columns turned into canonical fields (the rest are kept as extras)."""
        if self.responses is not None:
            return frozenset({self.prompt, self.responses, self.id, "source"})
        if self.score_a is not None and self.score_b is not None:
            return frozenset({self.prompt, self.a, self.b, self.score_a, self.score_b, self.id,
                              "source"})
        if self.winner is not None:
            return frozenset({self.prompt, self.a, self.b, self.id, "source"})
        return frozenset({self.prompt, self.chosen, self.rejected, self.id, "source"})

    def side_columns(self) -> tuple[str, str] | None:
        """The per-side value columns this layout writes (they follow chosen and rejected)."""
        if self.score_a is not None or (self.responses is not None and self.score is not None):
            return "chosen_score", "rejected_score"
        if self.responses is not None:
            return "chosen_rank", "rejected_rank"
        return None

    def reserved(self) -> frozenset[str]:
        """Output column names an extra column must not take."""
        names = RESERVED_COLUMNS | {"target"} if self.keep_ties else RESERVED_COLUMNS
        return names | set(self.side_columns() or ())

    def note(self, canonical: str) -> str:
        """Message suffix telling the user a column came from their mapping."""
        return f" (the mapping's {canonical} column)" if canonical in self.mapped else ""

    def paths(self) -> list[str]:
        """Mapped record-level columns that may be dotted paths into nested values."""
        names = (self.prompt, self.chosen, self.rejected, self.id, self.a, self.b, self.winner,
                 self.score_a, self.score_b, self.responses)
        return [n for n in names if n is not None and "." in n]


@dataclass
class Pair:
    """One normalized record, before ids and suspicious flags are assigned."""

    prompt: str
    chosen: str
    rejected: str
    prompt_present: bool
    """Whether the input had a prompt at all (explicit data may have none: not suspicious)."""
    early_divergence: bool = False
    input_id: Any = None
    source: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    tie: bool = False
    """The winner label said neither response is better (then chosen is a, rejected b)."""
    messages: tuple[list[Message], list[Message], list[Message]] | None = None
    """Conversational input: the prompt, chosen and rejected messages as split."""
    prompt_text: str | None = None
    """A string prompt read beside message-list responses (kept to export the same shape)."""
    source_kept: bool = False
    """The input's ``source`` was not a string: kept as ``input_source`` instead."""


class NumericWinner(Exception):
    """A winner column holds numbers that no table says how to read (internal: the loader turns
    it into an error listing the values seen)."""

    def __init__(self, column: str, value: Any) -> None:
        super().__init__(column)
        self.column, self.value = column, value


def detect_format(record: Mapping[str, Any], columns: Columns) -> str | None:
    """The layout of ``record`` (the first of :data:`LAYOUTS` whose rule holds), or ``None``
    when it fits none (then :func:`diagnose` says why)."""
    return next((name for name, layout in LAYOUTS.items() if layout.detect(record, columns)),
                None)


def diagnose(record: Mapping[str, Any]) -> DataError:
    """The first problem of a record whose layout could not be detected."""
    for name in ("chosen", "rejected"):
        if name not in record:
            return _missing(record, name, "")
        value = record[name]
        if not isinstance(value, (str, list)):
            return DataError("expected a string or a list of messages, got "
                             f"{describe_value(value)}", field=name, reason=WRONG_TYPE)
    return DataError("is a list of messages while 'chosen' is not (or the reverse); "
                     "both must be strings or both lists", field="rejected", reason=WRONG_TYPE)


def normalize(record: Mapping[str, Any], fmt: str, columns: Columns) -> list[Pair]:
    """Turn one record of layout ``fmt`` into its pairs (one, or a ranking's several); raise
    :class:`DataError` if bad.

    The error names the field but not the file or line: the caller adds those.
    """
    record = _with_paths(record, columns)
    pairs = LAYOUTS[fmt].read(record, columns)
    input_id = record.get(columns.id)
    if columns.id in columns.mapped and columns.id not in record:
        raise _missing(record, columns.id, columns.note("id"))
    source = record.get("source")
    extras = _extras(record, columns)
    kept = source is not None and not isinstance(source, str)
    if kept:
        # A list or object here is the input's own column (Nectar's list of sources), not the
        # one-word source rewardlab writes: keep it under another name rather than refuse it.
        extras[_free_name("input_source", extras, record, columns)] = source
    for pair in pairs:
        pair.input_id, pair.source, pair.source_kept = input_id, None if kept else source, kept
        pair.extras = {**extras, **pair.extras}
        if pair.messages is not None:
            pair.extras.update({name: [{"role": role, "content": content} for role, content in
                                       part] for name, part in zip(MESSAGE_COLUMNS, pair.messages,
                                                                   strict=True)})
            if pair.prompt_text is not None:
                pair.extras[PROMPT_TEXT_COLUMN] = pair.prompt_text
    return pairs


def _with_paths(record: Mapping[str, Any], columns: Columns) -> Mapping[str, Any]:
    """``record`` with each mapped dotted path (``info.post``) resolved into a column of that
    name, so the layouts read nested values like any other column."""
    found = {}
    for path in columns.paths():
        ok, value = resolve_path(record, path)
        if ok and path not in record:
            found[path] = value
    return {**record, **found} if found else record


def _text_pair(record: Mapping[str, Any], chosen: str, rejected: str, columns: Columns,
               hh: bool) -> Pair:
    """A pair of two response strings: HH dialogues are split, else the prompt column is read."""
    if hh:
        prompt, chosen, rejected, early = split_hh(chosen, rejected)
        return Pair(prompt, chosen, rejected, prompt_present=True, early_divergence=early)
    if _has_prompt(record, columns):
        prompt = _text(record, columns.prompt, columns.note("prompt"))
        return Pair(prompt, chosen, rejected, prompt_present=True)
    return Pair("", chosen, rejected, prompt_present=False)


def _has_prompt(record: Mapping[str, Any], columns: Columns) -> bool:
    return columns.prompt in record or "prompt" in columns.mapped


def _sided_pair(record: Mapping[str, Any], columns: Columns, first: str, second: str) -> Pair:
    """The pair with column ``first``'s response as chosen and ``second``'s as rejected: both
    strings (explicit, or HH dialogues without a prompt) or both message lists."""
    for name in (first, second):
        if name not in record:
            canonical = next((k for k in ("a", "b", "chosen", "rejected")
                              if getattr(columns, k) == name), name)
            raise _missing(record, name, columns.note(canonical))
    x, y = record[first], record[second]
    if isinstance(x, list) and isinstance(y, list):
        return _message_pair(record, first, second, columns)
    if isinstance(x, str) and isinstance(y, str):
        hh = not _has_prompt(record, columns) and is_dialogue(x) and is_dialogue(y)
        return _text_pair(record, x, y, columns, hh=hh)
    raise _mixed_responses(record, first, second)


def _message_pair(record: Mapping[str, Any], first: str, second: str,
                  columns: Columns) -> Pair:
    """Two message lists, with a prompt of messages, of text, or none (the shared opening)."""
    chosen, rejected = _messages(record, first), _messages(record, second)
    if not _has_prompt(record, columns):
        return _conversational(chosen, rejected, None)
    if columns.prompt in record and isinstance(record[columns.prompt], str):
        text = record[columns.prompt]
        pair = _conversational(chosen, rejected, None)
        if pair.messages is not None and not pair.messages[0]:
            # Responses that do not repeat the prompt: it is their one user turn.
            pair = _conversational(chosen, rejected, [("user", text)])
        pair.prompt_text = text
        return pair
    return _conversational(chosen, rejected, _messages(record, columns.prompt))


def _explicit(record: Mapping[str, Any], columns: Columns) -> list[Pair]:
    return [_sided_pair(record, columns, columns.chosen, columns.rejected)]


def _hh(record: Mapping[str, Any], columns: Columns) -> list[Pair]:
    chosen = _text(record, columns.chosen, "")
    return [_text_pair(record, chosen, _text(record, columns.rejected, ""), columns, hh=True)]


def _winner(record: Mapping[str, Any], columns: Columns) -> list[Pair]:
    """A pair of the ``winner`` layout: a and b ordered by the winner label."""
    return [_by_side(record, columns, _winner_side(record, columns))]


def _by_side(record: Mapping[str, Any], columns: Columns, side: str) -> Pair:
    first, second = (columns.b, columns.a) if side == "b" else (columns.a, columns.b)
    pair = _sided_pair(record, columns, first, second)
    pair.tie = side == "tie"
    return pair


def _scores(record: Mapping[str, Any], columns: Columns) -> list[Pair]:
    """A pair of the ``scores`` layout: the higher-scored response is chosen."""
    assert columns.score_a is not None and columns.score_b is not None
    score_a = _number(record, columns.score_a, columns.note("score_a"))
    score_b = _number(record, columns.score_b, columns.note("score_b"))
    side = score_side(score_a, score_b, columns.min_score_gap)
    pair = _by_side(record, columns, side)
    pair.extras = _side_values(columns, *((score_b, score_a) if side == "b" else
                                          (score_a, score_b)))
    return [pair]


def _side_values(columns: Columns, chosen: float, rejected: float) -> dict[str, Any]:
    names = columns.side_columns()
    assert names is not None
    return {names[0]: chosen, names[1]: rejected}


def _ranking(record: Mapping[str, Any], columns: Columns) -> list[Pair]:
    """The pairs of one ranked list (the ``ranking`` layout)."""
    assert columns.responses is not None
    name = columns.responses
    if name not in record:
        raise _missing(record, name, columns.note("responses"))
    items = record[name]
    if not isinstance(items, list):
        raise DataError(f"expected a list of ranked responses, got {describe_value(items)}",
                        field=name, reason=WRONG_TYPE)
    if len(items) < 2:
        raise DataError(f"holds {len(items)} response(s); a ranking needs two or more to make a "
                        "pair", field=name, reason=TOO_FEW_RESPONSES)
    by_score = columns.score is not None
    key = columns.score if by_score else columns.rank
    assert key is not None
    texts, values = [], []
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        item = item if isinstance(item, Mapping) else {}
        found, text = resolve_path(item, columns.text)
        if not found or not isinstance(text, str):
            raise DataError(f"expected a string, got {describe_value(text)}" if found else
                            "missing", field=f"{where}.{columns.text}",
                            reason=WRONG_TYPE if found else MISSING_FIELD)
        texts.append(text)
        values.append(_number(item, key, "", f"{where}.{key}"))
    prompt = (_text(record, columns.prompt, columns.note("prompt"))
              if _has_prompt(record, columns) else None)
    pairs = []
    for i, j, tie in rank_pairs(values, higher_is_better=by_score, mode=columns.ranking_pairs,
                                min_gap=columns.min_score_gap if by_score else 0.0):
        pair = Pair(prompt or "", texts[i], texts[j], prompt_present=prompt is not None, tie=tie)
        pair.extras = _side_values(columns, values[i], values[j])
        pairs.append(pair)
    return pairs


def _number(record: Mapping[str, Any], name: str, note: str, shown: str | None = None) -> float:
    found, value = resolve_path(record, name)
    if not found:
        raise DataError(f"missing{note}", field=shown or name, reason=MISSING_FIELD)
    number = as_number(value)
    if number is None:
        raise DataError(f"expected a number (a score or a rank), got {describe_value(value)}"
                        f"{note}", field=shown or name, reason=WRONG_TYPE)
    return number


def _extras(record: Mapping[str, Any], columns: Columns) -> dict[str, Any]:
    """The record's other columns, renamed ``input_<name>`` where they would clash."""
    consumed = columns.consumed()
    extras: dict[str, Any] = {}
    for key, value in record.items():
        if key in consumed:
            continue
        if "\0" in key:
            # Arrow and datasets cut column names at a NUL; the column would be lost.
            raise DataError("a column name holds a NUL character, which a dataset cannot store; "
                            "rename the column", field=key, reason=BAD_COLUMN_NAME)
        extras[_free_name(key, extras, record, columns)] = value
    return extras


def _free_name(key: str, extras: Mapping[str, Any], record: Mapping[str, Any],
               columns: Columns) -> str:
    """``key``, or ``input_<key>`` (repeated) where it would clash with an output column."""
    name, reserved = key, columns.reserved()
    # "input_prompt" may itself be a column of the record: never overwrite one.
    while name in reserved or (name != key and name in record) or name in extras:
        name = f"input_{name}"
    return name


def _mixed_responses(record: Mapping[str, Any], first: str, second: str) -> DataError:
    for name, other in ((first, second), (second, first)):
        if not isinstance(record[name], (str, list)):
            want = ("a string" if isinstance(record[other], str)
                    else "a string or a list of messages")
            return DataError(f"expected {want}, got {describe_value(record[name])}", field=name,
                             reason=WRONG_TYPE)
    return DataError(f"is a list of messages while {first!r} is not (or the reverse); both "
                     "must be strings or both lists", field=second, reason=WRONG_TYPE)


def _winner_side(record: Mapping[str, Any], columns: Columns) -> str:
    """``"a"``, ``"b"`` or ``"tie"``, as the winner column says."""
    name = columns.winner or "winner"
    if name not in record:
        raise _missing(record, name, columns.note("winner"))
    value = record[name]
    key = winner_key(value)
    if (not columns.custom_winner_values and as_number(value) is not None
            and name.rsplit(".", 1)[-1] not in INDEX_COLUMNS):
        raise NumericWinner(name, value)
    side = columns.winner_values.get(key) if key is not None else None
    if side is None:
        known = ", ".join(sorted(columns.winner_values, key=lambda k: (len(k), k)))
        shown = json.dumps(value, ensure_ascii=False, default=str)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise DataError(f"unknown winner value {shown}; known values: {known} (give others "
                        "with winner_values, e.g. \"1=a,0=b,tie=tie\")", field=name,
                        reason=UNKNOWN_WINNER)
    return side


def _missing(record: Mapping[str, Any], name: str, note: str) -> DataError:
    keys = ", ".join(k if k.isprintable() else repr(k) for k in list(record)[:12]) or "none"
    return DataError(f"missing{note} (the record has: {keys})", field=name, reason=MISSING_FIELD)


def _text(record: Mapping[str, Any], name: str, note: str) -> str:
    if name not in record:
        raise _missing(record, name, note)
    value = record[name]
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {describe_value(value)}{note}", field=name,
                        reason=WRONG_TYPE)
    return value


def _messages(record: Mapping[str, Any], name: str) -> list[Message]:
    value = record.get(name)
    if name not in record:
        raise _missing(record, name, "")
    if not isinstance(value, list):
        raise DataError(f"expected a list of {{role, content}} messages, got "
                        f"{describe_value(value)}", field=name, reason=WRONG_TYPE)
    out: list[Message] = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise DataError(f"expected a {{role, content}} message, got {describe_value(msg)}",
                            field=f"{name}[{i}]", reason=WRONG_TYPE)
        for key in ("role", "content"):
            if key not in msg:
                raise DataError("missing", field=f"{name}[{i}].{key}", reason=MISSING_FIELD)
            if not isinstance(msg[key], str):
                raise DataError(f"expected a string, got {describe_value(msg[key])}",
                                field=f"{name}[{i}].{key}", reason=WRONG_TYPE)
        out.append((msg["role"], msg["content"]))
    return out


def _conversational(chosen: list[Message], rejected: list[Message],
                    prompt: list[Message] | None) -> Pair:
    """A pair of two message lists; without ``prompt``, the shared leading messages are it."""
    split = split_messages(chosen, rejected, prompt)
    return Pair(split.prompt_text, split.chosen_text, split.rejected_text, prompt_present=True,
                early_divergence=split.early, messages=split.messages)


def _both(record: Mapping[str, Any], kind: type) -> bool:
    return isinstance(record.get("chosen"), kind) and isinstance(record.get("rejected"), kind)


@dataclass(frozen=True)
class Layout:
    """One input layout: the rule that says a record is of it, and the reader of its pairs."""

    detect: Callable[[Mapping[str, Any], Columns], bool]
    read: Callable[[Mapping[str, Any], Columns], list[Pair]]


LAYOUTS: dict[str, Layout] = {
    # A mapping decides the layout by the keys it names; unmapped files by the record's shape.
    "ranking": Layout(lambda r, c: c.responses is not None, _ranking),
    "scores": Layout(lambda r, c: c.score_a is not None, _scores),
    "winner": Layout(lambda r, c: c.winner is not None, _winner),
    "mapped": Layout(lambda r, c: bool(c.mapped), _explicit),
    "conversational": Layout(lambda r, c: _both(r, list), _explicit),
    "hh": Layout(lambda r, c: _both(r, str) and "prompt" not in r and is_dialogue(r["chosen"])
                 and is_dialogue(r["rejected"]), _hh),
    "explicit": Layout(lambda r, c: _both(r, str), _explicit),
}
"""Layout name -> detection rule and reader, tried in this order. A new layout is one entry."""
FORMATS = tuple(LAYOUTS)
