"""Checking what a client sent, before any of it reaches the model. Pure: no web framework.

Every problem is a :class:`RequestError` carrying the HTTP status to answer with and a message
that names the field and item (``query[3]``), so a client can fix its request; the server keeps
serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RequestError", "SplitQueries", "check_items", "check_texts", "end_tokens",
           "long_items", "split_queries", "strip_ends"]


class RequestError(ValueError):
    """A request the server refuses: ``status`` (a 4xx code) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_items(prompts: Sequence[str], responses: Sequence[str], *, max_items: int,
                names: tuple[str, str] = ("prompts", "responses")) -> None:
    """Refuse empty, mismatched or oversized lists of items (``names`` as the client spelt
    them)."""
    a, b = names
    if len(prompts) != len(responses):
        raise RequestError(422, f"'{a}' has {len(prompts)} items but '{b}' has "
                                f"{len(responses)}; they must have one item each per text")
    if not responses:
        raise RequestError(422, f"'{b}' is empty: send at least one item")
    if len(responses) > max_items:
        raise RequestError(413, f"{len(responses)} items in one request; this server takes at "
                                f"most {max_items} (--max-items): split the request")


@dataclass(frozen=True)
class SplitQueries:
    """OpenRLHF's queries as (prompt, response) items, and which needed a fallback."""

    prompts: list[str]
    responses: list[str]
    prompt_missing: list[bool]
    """Per item: its prompt was not found in its query, which was scored whole."""
    no_prompts: bool
    """The request sent no ``prompts`` (OpenRLHF before 0.6): every query was scored whole."""


def end_tokens(tokens: Sequence[str]) -> tuple[str, ...] | None:
    """The distinct non-empty ``tokens``, longest first (so ``</s>`` is never cut as ``<``
    plus the rest); ``None`` when there are none."""
    names = tuple(sorted({t for t in tokens if t}, key=len, reverse=True))
    return names or None


def _cut_end(text: str, tokens: tuple[str, ...], *, start: bool) -> str:
    """``text`` without the run of ``tokens`` (and the whitespace around them) at one end;
    unchanged when no token is there. A loop of ``startswith``/``endswith``: a regular
    expression anchored at the end would try every position of a long text."""
    rest, cut = text, False
    while True:
        bare = rest.lstrip() if start else rest.rstrip()
        tok = next((t for t in tokens if (bare.startswith(t) if start else bare.endswith(t))),
                   None)
        if tok is None:
            break
        rest, cut = (bare[len(tok):] if start else bare[:-len(tok)]), True
    if not cut:
        return text
    return rest.lstrip() if start else rest.rstrip()


def strip_ends(text: str, tokens: tuple[str, ...] | None, *, start: bool = True,
               end: bool = True) -> str:
    """``text`` without the runs of special ``tokens`` (:func:`end_tokens`) at its start and
    end, and the whitespace around them.

    OpenRLHF decodes rollouts with ``skip_special_tokens=False``: ``<s>`` before the prompt and
    ``</s>`` or ``<|im_end|>`` after the response reach the server as text, and the reward
    model would read them as words. Tokens inside the text are kept (a chat template's turn
    markers are part of the dialogue).
    """
    if tokens is None:
        return text
    if start:
        text = _cut_end(text, tokens, start=True)
    if end:
        text = _cut_end(text, tokens, start=False)
    return text


def split_queries(queries: Sequence[str], prompts: Sequence[str] | None, *,
                  strip: Sequence[str] = (), strict: bool = False) -> SplitQueries:
    """OpenRLHF's ``query`` (prompt + response, as one text) split into (prompt, response).

    OpenRLHF decodes each query from the policy's token ids, so it may carry leading special
    or pad tokens before the prompt text; the response is what follows the prompt's first
    occurrence. ``strip`` tokens are cut from both ends of the whole text: the start of the
    prompt and the end of the response. A query without its prompt is scored whole, as a
    response to an empty prompt (one odd rollout must not fail the request: OpenRLHF's client
    retries a 4xx five times, then drops the rewards of the whole batch); ``strict`` refuses
    it instead. Without ``prompts`` (OpenRLHF before 0.6 sent only ``query``) every query is
    scored whole.

    Raises:
        RequestError: 422 when the lists differ in length, or with ``strict`` when a query
            does not contain its prompt.
    """
    patterns = end_tokens(strip)
    if prompts is None:
        return SplitQueries([""] * len(queries), [strip_ends(q, patterns) for q in queries],
                            [False] * len(queries), no_prompts=True)
    if len(prompts) != len(queries):
        raise RequestError(422, f"'query' has {len(queries)} items but 'prompts' has "
                                f"{len(prompts)}; OpenRLHF sends one prompt per query")
    out = SplitQueries([], [], [], no_prompts=False)
    for i, (query, prompt) in enumerate(zip(queries, prompts)):
        at = query.find(prompt)
        if at < 0 and strict:
            raise RequestError(422, f"query[{i}] does not contain prompts[{i}]; the response "
                                    f"is what follows the prompt in the query "
                                    f"(--strict-prompts)")
        missing = at < 0
        out.prompt_missing.append(missing)
        out.prompts.append("" if missing else strip_ends(prompt, patterns, end=False))
        rest = query if missing else query[at + len(prompt):]
        out.responses.append(strip_ends(rest, patterns, start=missing))
    return out


def check_texts(texts: Sequence[str], name: str, *, max_chars: int) -> None:
    """Refuse a text that is not valid Unicode or is longer than ``max_chars`` characters.

    JSON may carry a lone surrogate (``"\\ud800"``) that no tokenizer can encode; refused
    here, naming the item, before it can reach the model. Long texts are refused before any
    tokenizing, which costs time in proportion to their length.

    Raises:
        RequestError: 422 for a lone surrogate, 413 for a text over ``max_chars``.
    """
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            raise RequestError(413, f"{name}[{i}] has {len(text):,} characters; this server "
                                    f"takes at most {max_chars:,} per item (--max-item-chars)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RequestError(422, f"{name}[{i}] is not valid Unicode text: a lone surrogate "
                                    f"{text[exc.start]!r} at character {exc.start}") from None


def long_items(prompt_tokens: np.ndarray, response_tokens: np.ndarray,
               max_length: int) -> np.ndarray:
    """``[n]`` bool: items whose prompt and response together exceed ``max_length`` tokens.

    That is what the finetune backend reads of an item (it keeps the response and the end of
    the prompt); the embedding backend reads up to ``max_length`` of each side, so for it the
    rule is conservative.
    """
    return (np.asarray(prompt_tokens) + np.asarray(response_tokens)) > max_length
