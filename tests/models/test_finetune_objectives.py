"""The finetune backend with its two extra objectives: contrastive (SimCSE) and MetaRM.

Tiny GPT-2 and tiny BERT, full fine-tuning and LoRA, a few steps each: each setting trains,
is written into rewardlab.json, and MetaRM with η = 0 is exactly plain Bradley-Terry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_encoder import tiny_encoder

from rewardlab.config import ConfigError, ModelConfig
from rewardlab.models import load_reward_model
from rewardlab.models.finetune import FinetuneRewardModel
from rewardlab.models.objectives import HeadInputs
from rewardlab.models.pooling import pooled_rewards
from tiny_models import tiny_config, toy_pairs

pytestmark = pytest.mark.usefixtures("one_thread")


def _meta_file(tmp_path: Path, n: int = 12) -> Path:
    pairs = toy_pairs(n, 7)
    path = tmp_path / "meta.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "responses": [c, r]}) + "\n"
                            for p, c, r in zip(pairs.prompt, pairs.chosen, pairs.rejected)))
    return path


def _fit(model: str, **finetune: object) -> FinetuneRewardModel:
    config = tiny_config(model, members=1, epochs=2, finetune=finetune)
    rm = FinetuneRewardModel(config, progress=False)
    result = rm.fit(toy_pairs(32, 0))
    assert result.steps == 8 and torch.isfinite(torch.tensor(result.train_loss))
    return rm


def _weights(rm: FinetuneRewardModel) -> list[torch.Tensor]:
    model = rm.models[0] if rm.models else rm.lora.model
    # peft's untouched copy of the head (original_module) is drawn before any member's seed,
    # so it differs from one fit to the next in a process; no member reads it.
    return [p.detach().clone() for name, p in model.named_parameters()
            if "original_module" not in name]


@pytest.mark.parametrize("lora_r", [0, 4])
def test_metarm_with_zero_meta_lr_is_plain_bradley_terry(gpt2_dir: Path, tmp_path: Path,
                                                         lora_r: int) -> None:
    meta = str(_meta_file(tmp_path))
    plain = _weights(_fit(str(gpt2_dir), lora_r=lora_r))
    zero = _weights(_fit(str(gpt2_dir), lora_r=lora_r, meta=meta, meta_lr=0.0))
    moved = _weights(_fit(str(gpt2_dir), lora_r=lora_r, meta=meta, meta_lr=10.0))
    assert all(torch.equal(a, b) for a, b in zip(plain, zero, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(plain, moved, strict=True))


@pytest.mark.parametrize(("kind", "lora_r"), [("simcse-diff", 0), ("simcse-response", 4)])
def test_contrastive_trains_and_is_saved(gpt2_dir: Path, tmp_path: Path, kind: str,
                                         lora_r: int) -> None:
    rm = _fit(str(gpt2_dir), lora_r=lora_r, contrastive=kind, contrastive_weight=0.5,
              meta=str(_meta_file(tmp_path)))
    held = toy_pairs(32, 1)
    loaded = load_reward_model(rm.save(tmp_path / "model"))
    info = json.loads((tmp_path / "model" / "rewardlab.json").read_text())
    assert info["config"]["finetune"]["contrastive"] == kind
    assert info["config"]["finetune"]["contrastive_weight"] == 0.5
    assert info["config"]["finetune"]["meta"].endswith("meta.jsonl")
    assert torch.allclose(loaded.score(held), rm.score(held), atol=1e-5)


def test_contrastive_weight_zero_still_differs_from_plain_only_by_dropout(gpt2_dir: Path
                                                                         ) -> None:
    # β = 0 leaves BT on one dropout pass; dropout is what --contrastive turns back on.
    zeroed = _fit(str(gpt2_dir))
    dropout = _fit(str(gpt2_dir), contrastive="simcse-diff", contrastive_weight=0.0)
    assert zeroed.models[0].config.resid_pdrop == 0.0
    assert dropout.models[0].config.resid_pdrop > 0.0


def test_head_inputs_pool_where_the_reward_is_read(tmp_path: Path, gpt2_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    bert = AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder(tmp_path / "enc"), num_labels=1).eval()
    heads = HeadInputs(bert, last_token=False)
    ids = torch.tensor([[101, 7592, 102, 0], [101, 2088, 2003, 102]])
    mask = (ids != 0).long()
    with heads.recording(mask) as seen:
        bert(input_ids=ids, attention_mask=mask)
    assert len(seen) == 1 and seen[0].shape == (2, 32)
    gpt2 = AutoModelForSequenceClassification.from_pretrained(gpt2_dir, num_labels=1,
                                                              pad_token_id=1).eval()
    heads = HeadInputs(gpt2, last_token=True)
    ids = torch.tensor([[3, 5, 6, 1], [4, 5, 6, 7]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    with heads.recording(mask) as seen:
        hidden = gpt2.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        gpt2(input_ids=ids, attention_mask=mask)
    assert torch.allclose(seen[0], torch.stack([hidden[0, 2], hidden[1, 3]]))
    with pytest.raises(ValueError, match="no reward head"):
        HeadInputs(torch.nn.Linear(2, 2), last_token=True)


def test_options_need_the_finetune_backend() -> None:
    with pytest.raises(ConfigError, match=r"^--contrastive: is an option of the finetune"):
        ModelConfig.from_dict({"backend": "embedding", "finetune": {"contrastive": "simcse-diff"}})
    with pytest.raises(ConfigError, match=r"^--contrastive-temperature: must be positive"):
        ModelConfig.from_dict({"backend": "finetune",
                               "finetune": {"contrastive_temperature": 0.0}})


def test_strength_resume_fingerprint_follows_the_meta_file_content(tmp_path: Path) -> None:
    from rewardlab.config import StrengthConfig
    from rewardlab.stages.strength import _fingerprint

    meta = _meta_file(tmp_path)
    config = ModelConfig.from_dict({"backend": "finetune", "finetune": {"meta": str(meta)}})
    pairs = toy_pairs(8, 0)
    first = _fingerprint(pairs, config, StrengthConfig())
    assert _fingerprint(pairs, config, StrengthConfig()) == first
    meta.write_text(meta.read_text() + json.dumps({"prompt": "x", "responses": ["a", "b"]}))
    assert _fingerprint(pairs, config, StrengthConfig()) != first


def test_contrastive_and_metarm_on_a_mean_pooled_encoder(tmp_path: Path) -> None:
    # An encoder's head reads the mean-pooled states (--pooling auto): the views are those.
    encoder = tiny_encoder(tmp_path / "enc")
    rm = _fit(str(encoder), lora_r=4, contrastive="simcse-response",
              meta=str(_meta_file(tmp_path)))
    assert rm.pooling == "mean"
    heads = HeadInputs(rm.lora.model, last_token=False)
    mask = torch.ones(2, 3, dtype=torch.long)
    with heads.recording(mask) as seen:
        rm.lora.model.eval()
        pooled_rewards(rm.lora.model, {"input_ids": torch.tensor([[101, 7592, 102]] * 2),
                                       "attention_mask": mask}, "mean")
    assert len(seen) == 1 and seen[0].shape == (2, 32)
