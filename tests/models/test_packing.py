"""Prefix sharing: a pair's prompt runs once with both responses, and the rewards are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardlab.models import Pairs
from rewardlab.models.finetune import (
    EncodedPairs,
    FinetuneRewardModel,
    collate_packed,
    collate_pairs,
    pair_deltas,
)
from rewardlab.models.packing import attention_mask_4d, pack_pairs, supports_packing
from rewardlab.models.text import EncodedText, encode_prompt_response
from tiny_models import build_tiny_gpt2, build_tiny_llama, tiny_config

# Responses of different lengths under a tight budget: cut one input at a time, some pairs keep
# the same prompt tokens (shared prefix), others do not (two independent segments).
PAIRS = Pairs(
    ["the cat the dog the sun the moon the tree", "a", "the river", "the house the car"],
    ["good", "good the cat the dog", "good a", "good the"],
    ["bad a a a a a", "bad", "bad the", "bad"],
)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_mask_by_hand() -> None:
    # prompt, prompt, chosen, chosen, rejected, pad
    branch = torch.tensor([[0, 0, 1, 1, 2, -1]])
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],  # rejected sees the prompt and itself, never chosen
        [0, 0, 0, 0, 0, 1],  # padding sees only itself
    ], dtype=torch.bool)
    assert torch.equal(attention_mask_4d(branch)[0, 0], expected)
    additive = attention_mask_4d(branch, additive_dtype=torch.float32)[0, 0]
    assert torch.equal(additive == 0, expected)
    assert (additive[~expected] == torch.finfo(torch.float32).min).all()


def test_rows_positions_and_read_points() -> None:
    pad = 1
    chosen = EncodedText([2, 5, 6, 3, 7], prompt_end=3)
    rejected = EncodedText([2, 5, 6, 4, pad], prompt_end=3)  # ends on the pad (= eos) token
    other = EncodedText([2, 6, 4], prompt_end=2)  # another prompt cut: no sharing
    batch = pack_pairs([chosen, chosen], [rejected, other], pad)
    assert batch["packed_input_ids"].tolist() == [[2, 5, 6, 3, 7, 4, pad, pad],
                                                  [2, 5, 6, 3, 7, 2, 6, 4]]
    assert batch["packed_branch"].tolist() == [[0, 0, 0, 1, 1, 2, 2, -1],
                                               [1, 1, 1, 1, 1, 2, 2, 2]]
    assert batch["packed_position_ids"].tolist() == [[0, 1, 2, 3, 4, 3, 4, 0],
                                                     [0, 1, 2, 3, 4, 0, 1, 2]]
    # Rewards are read at each input's last token that is not the pad token, as transformers
    # does: rejected's trailing eos is skipped in the first row.
    assert batch["packed_read"].tolist() == [[4, 5], [4, 7]]


def _shared(data: EncodedPairs) -> list[bool]:
    return [c.input_ids[:c.prompt_end] == r.input_ids[:r.prompt_end]
            for c, r in zip(data.chosen, data.rejected, strict=True)]


@pytest.mark.parametrize("build", [build_tiny_gpt2, build_tiny_llama])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_rewards_equal_padded(build: object, attention: str, tmp_path: Path) -> None:
    folder = build(tmp_path)  # type: ignore[operator]
    rm = FinetuneRewardModel(tiny_config(str(folder), max_length=9), progress=False)
    model = rm._load_backbone()[0].eval()
    model.config._attn_implementation = attention
    assert supports_packing(model)
    # rm.prepare cuts a pair's inputs together (one shared prompt); inputs cut one by one
    # exercise the other kind of row too (two independent segments).
    assert all(_shared(rm.prepare(PAIRS)))
    kw = {"max_length": rm.max_length, "pair_format": False}
    data = EncodedPairs(encode_prompt_response(rm.tokenizer, PAIRS.prompt, PAIRS.chosen, **kw),
                        encode_prompt_response(rm.tokenizer, PAIRS.prompt, PAIRS.rejected, **kw))
    assert any(_shared(data)) and not all(_shared(data))
    idx = list(range(len(PAIRS)))
    with torch.no_grad():
        padded = pair_deltas(model, collate_pairs(data, rm.pad_id, idx))
        packed_batch = collate_packed(data, rm.pad_id, idx)
        packed = pair_deltas(model, packed_batch)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    # Fewer tokens: each shared prompt once, and no padding between the two inputs.
    real = sum(len(c) + len(r) for c, r in zip(data.chosen, data.rejected, strict=True))
    assert int((packed_batch["packed_branch"] >= 0).sum()) < real


def test_score_uses_packing_for_causal_lms(tmp_path: Path) -> None:
    rm = FinetuneRewardModel(tiny_config(str(build_tiny_gpt2(tmp_path)), members=1),
                             progress=False)
    rm._models = [rm._load_backbone()[0].eval()]
    assert rm._collate(rm._models[0]) is collate_packed
    minilm = FinetuneRewardModel(tiny_config("all-MiniLM-L6-v2"), progress=False)
    assert minilm._collate(torch.nn.Linear(1, 1)) is collate_pairs  # encoders never pack
