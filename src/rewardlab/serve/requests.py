"""Checking what a client sent, before any of it reaches the model. Pure: no web framework.

Every problem is a :class:`RequestError` carrying the HTTP status to answer with and a message
that names the field and item (``query[3]``), so a client can fix its request; the server keeps
serving.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["RequestError", "check_items", "long_items", "split_queries"]


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


def split_queries(queries: Sequence[str],
                  prompts: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """OpenRLHF's ``query`` (prompt + response, as one text) split into (prompt, response).

    OpenRLHF decodes each query from the policy's token ids, so it may carry leading special
    or pad tokens before the prompt text; the response is what follows the prompt's first
    occurrence. Without ``prompts`` (OpenRLHF before 0.6 sent only ``query``) every query is
    scored as a response to an empty prompt.

    Raises:
        RequestError: 422 when the lists differ in length or a query does not contain its
            prompt (scoring it anyway would score the wrong text).
    """
    if prompts is None:
        return [""] * len(queries), list(queries)
    if len(prompts) != len(queries):
        raise RequestError(422, f"'query' has {len(queries)} items but 'prompts' has "
                                f"{len(prompts)}; OpenRLHF sends one prompt per query")
    responses = []
    for i, (query, prompt) in enumerate(zip(queries, prompts)):
        at = query.find(prompt)
        if at < 0:
            raise RequestError(422, f"query[{i}] does not contain prompts[{i}]; the response "
                                    f"is what follows the prompt in the query")
        responses.append(query[at + len(prompt):])
    return list(prompts), responses


def long_items(prompt_tokens: np.ndarray, response_tokens: np.ndarray,
               max_length: int) -> np.ndarray:
    """``[n]`` bool: items whose prompt and response together exceed ``max_length`` tokens.

    That is what the finetune backend reads of an item (it keeps the response and the end of
    the prompt); the embedding backend reads up to ``max_length`` of each side, so for it the
    rule is conservative.
    """
    return (np.asarray(prompt_tokens) + np.asarray(response_tokens)) > max_length
