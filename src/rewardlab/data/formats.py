"""Input layouts of preference data, detected per file and normalized to prompt/chosen/rejected.

Five layouts are understood (the names are the keys of ``LoadReport.by_format``):

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
    messages. Without ``prompt``, the prompt is the shared leading messages, cut back (like HH) so
    that both responses start with an assistant message. Messages are rendered to HH-style text:
    ``"\\n\\n{Role}: {content}"`` with user -> Human, assistant -> Assistant, system -> System
    (other roles capitalized); the prompt ends with ``"\\n\\nAssistant:"`` and a response that
    starts with an assistant message continues it as ``" {content}"``, exactly as in HH data.
``mapped``
    Any layout, with a mapping canonical -> input column (``prompt=instruction,chosen=output_1``);
    the mapped columns hold strings. Canonical columns left out of the mapping keep their names.
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

A file's layout is decided by its first well-formed record and then holds for the whole file.
Early divergence: an HH pair whose dialogues differ before the last assistant turn of both (or a
conversational pair whose responses contain non-assistant messages) gets responses that run over
several turns; such pairs are flagged ``early_divergence``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewardlab.data.errors import (
    BAD_COLUMN_NAME,
    MISSING_FIELD,
    UNKNOWN_WINNER,
    WRONG_TYPE,
    DataError,
    describe_value,
)
from rewardlab.data.mapping import DEFAULT_WINNER_VALUES, winner_key

__all__ = [
    "ASSISTANT_MARKER",
    "FORMATS",
    "MESSAGE_COLUMNS",
    "RESERVED_COLUMNS",
    "Columns",
    "Pair",
    "detect_format",
    "diagnose",
    "normalize",
    "render_messages",
    "split_hh",
]

FORMATS = ("explicit", "hh", "conversational", "mapped", "winner")
ASSISTANT_MARKER = "\n\nAssistant:"
ROLE_NAMES = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}
MESSAGE_COLUMNS = ("prompt_messages", "chosen_messages", "rejected_messages")
"""Conversational pairs also keep their messages (``[{role, content}, ...]``, prompt and the two
responses as split), so an export can write TRL's conversational format instead of flattened
text."""
RESERVED_COLUMNS = frozenset({"id", "prompt", "chosen", "rejected", "source", "suspicious",
                              *MESSAGE_COLUMNS})
"""Output columns the loader writes itself; an extra input column of the same name is kept as
``input_<name>`` so that nothing is overwritten (``target`` too, when ties are kept)."""

Message = tuple[str, str]


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
    mapped: frozenset[str] = frozenset()
    """Canonical fields named by the user's mapping: those columns are required."""
    winner_values: Mapping[str, str] = field(default_factory=lambda: DEFAULT_WINNER_VALUES)
    """Normalized winner value (:func:`~rewardlab.data.mapping.winner_key`) -> a, b or tie."""
    keep_ties: bool = False
    """Keep tied pairs (with a ``target`` column) instead of dropping them."""

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str] | None,
                     winner_values: Mapping[str, str] | None = None,
                     keep_ties: bool = False) -> Columns:
        """Columns of a parsed mapping (see :func:`~rewardlab.data.mapping.parse_mapping`)."""
        values = winner_values or DEFAULT_WINNER_VALUES
        return cls(**(mapping or {}), mapped=frozenset(mapping or ()), winner_values=values,
                   keep_ties=keep_ties)

    def consumed(self) -> frozenset[str]:
        """Input columns turned into canonical fields (the rest are kept as extras)."""
        if self.winner is not None:
            return frozenset({self.prompt, self.a, self.b, self.id, "source"})
        return frozenset({self.prompt, self.chosen, self.rejected, self.id, "source"})

    def reserved(self) -> frozenset[str]:
        """Output column names an extra column must not take."""
        return RESERVED_COLUMNS | {"target"} if self.keep_ties else RESERVED_COLUMNS

    def note(self, canonical: str) -> str:
        """Message suffix telling the user a column came from their mapping."""
        return f" (the mapping's {canonical} column)" if canonical in self.mapped else ""


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


def detect_format(record: Mapping[str, Any], columns: Columns) -> str | None:
    """The layout of ``record``, or ``None`` when it fits none (then :func:`diagnose` says why)."""
    if columns.winner is not None:
        return "winner"
    if columns.mapped:
        return "mapped"
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if isinstance(chosen, list) and isinstance(rejected, list):
        return "conversational"
    if isinstance(chosen, str) and isinstance(rejected, str):
        if "prompt" not in record and _is_dialogue(chosen) and _is_dialogue(rejected):
            return "hh"
        return "explicit"
    return None


def _is_dialogue(text: str) -> bool:
    return ASSISTANT_MARKER in text and "Human:" in text


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


def normalize(record: Mapping[str, Any], fmt: str, columns: Columns) -> Pair:
    """Turn one record of layout ``fmt`` into a :class:`Pair`; raise :class:`DataError` if bad.

    The error names the field but not the file or line: the caller adds those.
    """
    if fmt == "conversational":
        pair = _conversational(_messages(record, "chosen"), _messages(record, "rejected"),
                               _messages(record, "prompt") if "prompt" in record else None)
    elif fmt == "winner":
        pair = _winner(record, columns)
    else:
        chosen = _text(record, columns.chosen, columns.note("chosen"))
        rejected = _text(record, columns.rejected, columns.note("rejected"))
        pair = _text_pair(record, chosen, rejected, columns, hh=fmt == "hh")
    pair.input_id = record.get(columns.id)
    if columns.id in columns.mapped and columns.id not in record:
        raise _missing(record, columns.id, columns.note("id"))
    source = record.get("source")
    if source is not None and not isinstance(source, str):
        raise DataError(f"expected a string, got {describe_value(source)}", field="source",
                        reason=WRONG_TYPE)
    pair.source = source
    pair.extras = _extras(record, columns)
    if pair.messages is not None:
        pair.extras.update({name: [{"role": role, "content": content} for role, content in part]
                            for name, part in zip(MESSAGE_COLUMNS, pair.messages, strict=True)})
    return pair


def _text_pair(record: Mapping[str, Any], chosen: str, rejected: str, columns: Columns,
               hh: bool) -> Pair:
    """A pair of two response strings: HH dialogues are split, else the prompt column is read."""
    if hh:
        prompt, chosen, rejected, early = split_hh(chosen, rejected)
        return Pair(prompt, chosen, rejected, prompt_present=True, early_divergence=early)
    if columns.prompt in record or "prompt" in columns.mapped:
        prompt = _text(record, columns.prompt, columns.note("prompt"))
        return Pair(prompt, chosen, rejected, prompt_present=True)
    return Pair("", chosen, rejected, prompt_present=False)


def _extras(record: Mapping[str, Any], columns: Columns) -> dict[str, Any]:
    """The record's other columns, renamed ``input_<name>`` where they would clash."""
    consumed, reserved = columns.consumed(), columns.reserved()
    extras: dict[str, Any] = {}
    for key, value in record.items():
        if key in consumed:
            continue
        if "\0" in key:
            # Arrow and datasets cut column names at a NUL; the column would be lost.
            raise DataError("a column name holds a NUL character, which a dataset cannot store; "
                            "rename the column", field=key, reason=BAD_COLUMN_NAME)
        name = key
        # "input_prompt" may itself be a column of the record: never overwrite one.
        while name in reserved or (name != key and name in record) or name in extras:
            name = f"input_{name}"
        extras[name] = value
    return extras


def _winner(record: Mapping[str, Any], columns: Columns) -> Pair:
    """A pair of the ``winner`` layout: a and b ordered by the winner label."""
    side = _winner_side(record, columns)
    for canonical, name in (("a", columns.a), ("b", columns.b)):
        if name not in record:
            raise _missing(record, name, columns.note(canonical))
    a, b = record[columns.a], record[columns.b]
    if isinstance(a, list) and isinstance(b, list):
        prompt = (_messages(record, columns.prompt)
                  if columns.prompt in record or "prompt" in columns.mapped else None)
        first, second = (columns.b, columns.a) if side == "b" else (columns.a, columns.b)
        pair = _conversational(_messages(record, first), _messages(record, second), prompt)
    elif isinstance(a, str) and isinstance(b, str):
        hh = (columns.prompt not in record and "prompt" not in columns.mapped
              and _is_dialogue(a) and _is_dialogue(b))
        pair = _text_pair(record, *((b, a) if side == "b" else (a, b)), columns, hh=hh)
    else:
        raise _mixed_responses(record, columns)
    pair.tie = side == "tie"
    return pair


def _mixed_responses(record: Mapping[str, Any], columns: Columns) -> DataError:
    for name in (columns.a, columns.b):
        if not isinstance(record[name], (str, list)):
            return DataError("expected a string or a list of messages, got "
                             f"{describe_value(record[name])}", field=name, reason=WRONG_TYPE)
    return DataError(f"is a list of messages while {columns.a!r} is not (or the reverse); both "
                     "must be strings or both lists", field=columns.b, reason=WRONG_TYPE)


def _winner_side(record: Mapping[str, Any], columns: Columns) -> str:
    """``"a"``, ``"b"`` or ``"tie"``, as the winner column says."""
    name = columns.winner or "winner"
    if name not in record:
        raise _missing(record, name, columns.note("winner"))
    value = record[name]
    key = winner_key(value)
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


def split_hh(chosen: str, rejected: str) -> tuple[str, str, str, bool]:
    """Split two HH dialogues into ``(prompt, chosen_response, rejected_response, early)``.

    The prompt is the shared prefix cut right after its last ``"\\n\\nAssistant:"``; the
    responses are the exact remainders (no text is dropped or stripped). ``early`` is true when
    that cut is not at the last marker of both dialogues, or when they share no marker at all
    (then the prompt is empty and the responses are the whole dialogues).
    """
    # Walk chosen's markers from the end: the first marker whose prefix rejected shares is the
    # cut. This equals "longest common prefix, cut back to a marker" but costs one C-level
    # comparison per marker instead of a Python loop over characters.
    end = len(chosen)
    cut = 0
    while (pos := chosen.rfind(ASSISTANT_MARKER, 0, end)) >= 0:
        stop = pos + len(ASSISTANT_MARKER)
        if rejected.startswith(chosen[:stop]):
            cut = stop
            break
        end = stop - 1
    last_c = chosen.rfind(ASSISTANT_MARKER) + len(ASSISTANT_MARKER)
    last_r = rejected.rfind(ASSISTANT_MARKER) + len(ASSISTANT_MARKER)
    early = cut == 0 or last_c != cut or last_r != cut
    return chosen[:cut], chosen[cut:], rejected[cut:], early


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
    if prompt is None:
        k = 0
        while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
            k += 1
        # Cut back so both responses open with an assistant turn, as the HH rule cuts at a
        # shared "Assistant:" marker; identical conversations keep their last assistant turn.
        while k > 0 and not (k < len(chosen) and k < len(rejected)
                             and chosen[k][0] == "assistant" == rejected[k][0]):
            k -= 1
        prompt, chosen, rejected = chosen[:k], chosen[k:], rejected[k:]
    early = any(role != "assistant" for role, _ in chosen + rejected)
    prompt_text = render_messages(prompt) + ASSISTANT_MARKER if prompt else ""
    return Pair(prompt_text, _render_response(chosen, prompt_text),
                _render_response(rejected, prompt_text), prompt_present=True,
                early_divergence=early, messages=(prompt, chosen, rejected))


def render_messages(messages: list[Message]) -> str:
    """HH-style text of ``messages``: ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``."""
    return "".join(f"\n\n{ROLE_NAMES.get(role, role.capitalize())}: {content}"
                   for role, content in messages)


def _render_response(messages: list[Message], prompt_text: str) -> str:
    # The prompt already ends with "\n\nAssistant:", so an opening assistant message continues
    # it with " content" -- the same split HH data gets.
    if prompt_text and messages and messages[0][0] == "assistant":
        return " " + messages[0][1] + render_messages(messages[1:])
    return render_messages(messages)
