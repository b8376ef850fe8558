"""Request checks: what is refused, with which status, and how OpenRLHF queries are split."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.serve.requests import (
    RequestError,
    check_items,
    check_texts,
    end_tokens,
    long_items,
    split_queries,
    strip_ends,
)


def test_split_at_the_prompt() -> None:
    split = split_queries(["Q: hi A: hello", "<s><pad>Q: x A: y"], ["Q: hi A:", "Q: x A:"])
    assert split.prompts == ["Q: hi A:", "Q: x A:"]
    # Leading special or pad tokens of the policy's decoding are dropped with the prompt.
    assert split.responses == [" hello", " y"]
    assert split.prompt_missing == [False, False] and not split.no_prompts


def test_without_prompts_the_query_is_the_response_and_it_says_so() -> None:
    split = split_queries(["whole text</s>"], None, strip=["</s>"])
    assert (split.prompts, split.responses) == ([""], ["whole text"])
    assert split.no_prompts and split.prompt_missing == [False]


def test_a_query_without_its_prompt_is_scored_whole_and_flagged() -> None:
    split = split_queries(["Q: a A: b", "<s>other text</s>"], ["Q: a A:", "Q: c A:"],
                          strip=["<s>", "</s>"])
    assert split.prompts == ["Q: a A:", ""]
    assert split.responses == [" b", "other text"]  # whole, its special tokens cut at both ends
    assert split.prompt_missing == [False, True]


def test_strict_prompts_refuse_a_query_without_its_prompt() -> None:
    with pytest.raises(RequestError, match=r"query\[1\] does not contain prompts\[1\]") as err:
        split_queries(["Q: a A: b", "other text"], ["Q: a A:", "Q: c A:"], strict=True)
    assert err.value.status == 422


# Text as OpenRLHF decodes it (skip_special_tokens=False) from two chat templates: the
# prompt as the template renders it, the response followed by the policy's end tokens.
CHATML_PROMPT = ("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n"
                 "How do I boil an egg?<|im_end|>\n<|im_start|>assistant\n")
LLAMA2_PROMPT = "<s>[INST] How do I boil an egg? [/INST]"
ANSWER = "Put it in boiling water for nine minutes."
TEMPLATES = [
    # (prompt, query, the prompt the model reads, tokens to strip)
    (CHATML_PROMPT, CHATML_PROMPT + ANSWER + "<|im_end|>\n<|endoftext|>", CHATML_PROMPT,
     ["<|im_end|>", "<|endoftext|>"]),
    (LLAMA2_PROMPT, LLAMA2_PROMPT + " " + ANSWER + " </s><unk><unk>",
     "[INST] How do I boil an egg? [/INST]", ["<s>", "</s>", "<unk>"]),
]


@pytest.mark.parametrize("prompt, query, read_prompt, tokens", TEMPLATES)
def test_special_tokens_are_cut_from_both_ends_only(prompt: str, query: str, read_prompt: str,
                                                    tokens: list[str]) -> None:
    split = split_queries([query], [prompt], strip=tokens)
    assert split.prompts == [read_prompt]
    assert split.responses[0].strip() == ANSWER and not split.responses[0].endswith(" ")
    # Turn markers inside the dialogue are text the model reads: kept.
    assert split_queries([query], [prompt]).responses[0].startswith(split.responses[0])
    assert strip_ends("a</s>b</s>", end_tokens(["</s>"])) == "a</s>b"
    assert strip_ends("</s>", end_tokens(["</s>"])) == ""


def test_end_tokens_cut_the_longest_token_first() -> None:
    patterns = end_tokens(["<", "</s>"])
    assert strip_ends("x</s>", patterns) == "x"
    assert end_tokens(["", ""]) is None and strip_ends(" a ", None) == " a "


@pytest.mark.parametrize("texts, status, message", [
    (["ok", "a\ud800b"], 422, r"query\[1\] is not valid Unicode text: a lone surrogate "
                               r"'\\ud800' at character 1"),
    (["ok", "x" * 11], 413, r"query\[1\] has 11 characters; this server takes at most 10"),
])
def test_check_texts(texts: list[str], status: int, message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        check_texts(texts, "query", max_chars=10)
    assert err.value.status == status
    check_texts(["x" * 10, "é😀"], "query", max_chars=10)


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


def test_token_counts_of_long_texts_read_only_what_they_must(scorer) -> None:
    from rewardlab.serve.scorer import CHARS_PER_TOKEN_LIMIT, HEAD_CHARS_PER_TOKEN

    over = scorer.max_length + 1
    huge = "x" * (CHARS_PER_TOKEN_LIMIT * over + 1)
    words = "cat " * (HEAD_CHARS_PER_TOKEN * over)      # its head alone is over the max length
    sparse = "a" + " " * (HEAD_CHARS_PER_TOKEN * over) + "b c"  # long, but only 3 tokens
    calls: list[list[str]] = []
    real = scorer._count
    scorer._count = lambda texts: calls.append(texts) or real(texts)
    try:
        counts = scorer.token_counts(["two words", huge, words, sparse])
    finally:
        del scorer._count
    assert counts.tolist() == [2, over, over, 3]
    assert huge not in calls[0] and all(len(t) <= HEAD_CHARS_PER_TOKEN * over for t in calls[0])
    assert calls[1:] == [[sparse]]  # only the text whose head said too little is read whole
    assert scorer.tokenizer is not scorer.model.encoder.tokenizer  # a copy for this thread
