"""Request checks: what is refused, with which status, and how OpenRLHF queries are split."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.serve.requests import RequestError, check_items, long_items, split_queries


def test_split_at_the_prompt() -> None:
    prompts, responses = split_queries(["Q: hi A: hello", "<s><pad>Q: x A: y"],
                                       ["Q: hi A:", "Q: x A:"])
    assert prompts == ["Q: hi A:", "Q: x A:"]
    # Leading special or pad tokens of the policy's decoding are dropped with the prompt.
    assert responses == [" hello", " y"]


def test_without_prompts_the_query_is_the_response() -> None:
    assert split_queries(["whole text"], None) == ([""], ["whole text"])


def test_a_query_without_its_prompt_is_refused() -> None:
    with pytest.raises(RequestError, match=r"query\[1\] does not contain prompts\[1\]") as err:
        split_queries(["Q: a A: b", "other text"], ["Q: a A:", "Q: c A:"])
    assert err.value.status == 422


def test_prompts_and_queries_must_pair_up() -> None:
    with pytest.raises(RequestError, match="'query' has 2 items but 'prompts' has 1"):
        split_queries(["a", "b"], ["a"])


@pytest.mark.parametrize("prompts, responses, status, message", [
    (["a"], ["x", "y"], 422, "'prompts' has 1 items but 'responses' has 2"),
    ([], [], 422, "'responses' is empty"),
    (["p"] * 5, ["r"] * 5, 413, "5 items in one request; this server takes at most 4"),
])
def test_check_items(prompts: list[str], responses: list[str], status: int,
                     message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        check_items(prompts, responses, max_items=4)
    assert err.value.status == status


def test_check_items_passes_good_requests() -> None:
    check_items(["p"] * 4, ["r"] * 4, max_items=4)


def test_long_items_count_prompt_and_response_together() -> None:
    flags = long_items(np.array([3, 5, 0]), np.array([5, 6, 9]), max_length=8)
    assert flags.tolist() == [False, True, True]


def test_token_counts_of_huge_texts_are_not_tokenized(scorer) -> None:
    from rewardlab.serve.scorer import CHARS_PER_TOKEN_LIMIT

    huge = "x" * (CHARS_PER_TOKEN_LIMIT * scorer.max_length + 1)
    counts = scorer.token_counts(["two words", huge])
    assert counts[0] == len(scorer.tokenizer("two words", add_special_tokens=False)["input_ids"])
    assert counts[1] == scorer.max_length + 1
    assert scorer.tokenizer is not scorer.model.encoder.tokenizer  # a copy for this thread
