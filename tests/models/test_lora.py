"""LoRA ensembles: one backbone, M adapters with their own heads, saved as adapters only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rewardlab.config import ConfigError, ModelConfig
from rewardlab.evaluation import accuracy
from rewardlab.losses import nuclear_diversity_loss
from rewardlab.models import Pairs, load_reward_model
from rewardlab.models.finetune import FinetuneRewardModel
from rewardlab.models.lora import weights_hash
from rewardlab.models.text import encode_prompt_response, pad_encoded
from tiny_models import plain_reward, tiny_config, toy_pairs

PAIRS = Pairs(["the cat sat", "a", "the dog the sun the tree"], ["good good", "good", "good a"],
              ["bad bad", "bad bad bad", "bad"])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lora_trained(llama_dir: Path) -> FinetuneRewardModel:
    torch.set_num_threads(1)
    rm = FinetuneRewardModel(tiny_config(str(llama_dir), members=3, lora_r=4), progress=False)
    rm.fit(toy_pairs(64, 0))
    return rm


def peft_plain_rewards(base: Path, member_dir: Path, pad_id: int, max_length: int,
                       pairs: Pairs) -> torch.Tensor:
    """Δ ``[N]`` of one saved member, loaded with plain transformers + peft only."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(member_dir.parent / "tokenizer")
    base_model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1,
                                                                    pad_token_id=pad_id)
    model = PeftModel.from_pretrained(base_model, member_dir).eval()
    out = []
    with torch.no_grad():
        for response in (pairs.chosen, pairs.rejected):
            enc = encode_prompt_response(tok, pairs.prompt, response, max_length=max_length,
                                         pair_format=False)
            out.append(model(**pad_encoded(enc, pad_id)).logits.squeeze(-1))
    return out[0] - out[1]


def test_members_learn_apart_on_one_backbone(lora_trained: FinetuneRewardModel) -> None:
    rm = lora_trained
    assert rm.models == [] and rm.lora is not None and rm.lora.members == 3
    delta = rm.score(toy_pairs(32, 2))
    assert delta.shape == (3, 32)
    assert all(accuracy(row) > 0.9 for row in delta)
    assert not torch.equal(delta[0], delta[1])
    # The backbone is shared and frozen: no base weight is trainable, and nothing but the
    # active member's adapters and head is.
    trainable = [n for n, p in rm.lora.model.named_parameters() if p.requires_grad]
    assert trainable and all("member_2" in n for n in trainable)


def test_each_member_draws_its_own_head(llama_dir: Path) -> None:
    from accelerate.utils import set_seed

    rm = FinetuneRewardModel(tiny_config(str(llama_dir), members=3, lora_r=2), progress=False)
    base = rm._load_backbone()
    for seed in (5, 6, 5):
        set_seed(seed)
        rm._next_member(base)
    assert rm.lora is not None
    heads = [p for n, p in rm.lora.model.named_parameters() if "modules_to_save" in n]
    # peft copies the backbone's one random head into every adapter; each member redraws it
    # from its own seed (the same seed draws the same head).
    assert len(heads) == 3 and not torch.equal(heads[0], heads[1])
    assert torch.equal(heads[0], heads[2])


def test_backbone_loaded_once(llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = FinetuneRewardModel._load_backbone

    def counting(self: FinetuneRewardModel) -> object:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(FinetuneRewardModel, "_load_backbone", counting)
    rm = FinetuneRewardModel(tiny_config(str(llama_dir), members=4, lora_r=2, epochs=1),
                             progress=False)
    rm.fit(toy_pairs(16, 0))
    assert len(calls) == 1 and rm.lora is not None and rm.lora.members == 4
    full = FinetuneRewardModel(tiny_config(str(llama_dir), members=2, epochs=1), progress=False)
    full.fit(toy_pairs(16, 0))
    assert len(calls) == 3  # full fine-tuning: one fresh model per member


def test_same_seed_same_members(llama_dir: Path) -> None:
    def run(seed: int) -> torch.Tensor:
        rm = FinetuneRewardModel(tiny_config(str(llama_dir), members=2, lora_r=2, epochs=1,
                                             seed=seed), progress=False)
        rm.fit(toy_pairs(16, 0))
        return rm.score(PAIRS)

    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))


def test_routed_scoring_matches_the_loop(lora_trained: FinetuneRewardModel) -> None:
    pairs = toy_pairs(20, 4)
    looped = lora_trained.score(pairs)
    lora_trained.routed_scoring = True
    try:
        routed = lora_trained.score(pairs)
    finally:
        lora_trained.routed_scoring = False
    torch.testing.assert_close(routed, looped, atol=1e-5, rtol=0)


def test_saves_adapters_only_and_reloads(lora_trained: FinetuneRewardModel, llama_dir: Path,
                                         tmp_path: Path) -> None:
    rm = lora_trained
    expected = rm.score(PAIRS)
    folder = rm.save(tmp_path / "model")
    info = json.loads((folder / "rewardlab.json").read_text())
    assert info["lora"]["base_model"] == str(llama_dir)
    assert info["lora"]["base_weights_hash"] == weights_hash(str(llama_dir))
    for m in range(3):
        member = folder / f"member_{m}"
        assert sorted(p.name for p in member.iterdir()) == ["adapter_config.json",
                                                            "adapter_model.safetensors"]
        config = json.loads((member / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == str(llama_dir)
        # Plain peft + transformers give the same rewards as rewardlab.
        torch.testing.assert_close(
            peft_plain_rewards(llama_dir, member, rm.pad_id, rm.max_length, PAIRS),
            expected[m], atol=1e-5, rtol=0)
    # Adapters only: far smaller than the backbone they sit on.
    adapters = sum(f.stat().st_size for f in folder.rglob("adapter_model.safetensors"))
    assert adapters < (llama_dir / "model.safetensors").stat().st_size
    loaded = load_reward_model(folder, progress=False)
    assert isinstance(loaded, FinetuneRewardModel) and loaded.lora is not None
    torch.testing.assert_close(loaded.score(PAIRS), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(loaded.rewards(["a"], ["good"]), rm.rewards(["a"], ["good"]),
                               atol=1e-6, rtol=0)


def test_refuses_a_different_base(llama_dir: Path, tmp_path: Path) -> None:
    base = Path(shutil.copytree(llama_dir, tmp_path / "base"))
    rm = FinetuneRewardModel(tiny_config(str(base), members=1, lora_r=2, epochs=1),
                             progress=False)
    rm.fit(toy_pairs(16, 0))
    folder = rm.save(tmp_path / "model")
    assert load_reward_model(folder, progress=False).score(PAIRS).shape == (1, 3)
    # Same architecture, other weights, same path: the adapters must not be attached to it.
    from safetensors.torch import load_file, save_file

    weights = load_file(base / "model.safetensors")
    weights["model.norm.weight"] = weights["model.norm.weight"] * 1.5
    save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not the same weights"):
        load_reward_model(folder, progress=False)


def test_encoder_lora_reloads_with_plain_peft(tmp_path: Path) -> None:
    """The bundled MiniLM (an encoder: pair template, no packing) as a LoRA ensemble."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    config = ModelConfig.from_dict({"backend": "finetune", "members": 2, "lora_r": 2,
                                    "batch_size": 8, "epochs": 1, "lr": 1e-3,
                                    "max_length": 32, "device": "cpu"})
    rm = FinetuneRewardModel(config, progress=False)
    rm.fit(toy_pairs(16, 0))
    expected = rm.score(PAIRS)
    folder = rm.save(tmp_path / "model")
    base = AutoModelForSequenceClassification.from_pretrained(rm.model_path, num_labels=1)
    model = PeftModel.from_pretrained(base, folder / "member_1").eval()
    batch = rm.prepare(PAIRS)
    assert json.loads((folder / "rewardlab.json").read_text())["pooling"] == "mean"
    with torch.no_grad():
        rewards = [plain_reward(model, pad_encoded(side, rm.pad_id), "mean")
                   for side in (batch.chosen, batch.rejected)]
        pooler = [plain_reward(model, pad_encoded(side, rm.pad_id), "head")
                  for side in (batch.chosen, batch.rejected)]
    torch.testing.assert_close(rewards[0] - rewards[1], expected[1], atol=1e-5, rtol=0)
    # The class's own forward reads the CLS pooler instead: not what was trained.
    assert not torch.allclose(pooler[0] - pooler[1], expected[1], atol=1e-3)


# -- --diversity nuclear ------------------------------------------------------------------------
def _stacked_nuclear(rm: FinetuneRewardModel) -> float:
    """Mean over layers of the nuclear norm of all members' A matrices stacked."""
    return -float(nuclear_diversity_loss(rm.lora.a_stacks()).detach())


def test_nuclear_diversity_spreads_the_members(llama_dir: Path) -> None:
    common = {"members": 2, "lora_r": 2, "epochs": 2, "lr": 1e-2}
    plain = FinetuneRewardModel(tiny_config(str(llama_dir), **common), progress=False)
    plain.fit(toy_pairs(32, 0))
    diverse = FinetuneRewardModel(tiny_config(str(llama_dir), diversity="nuclear",
                                              diversity_weight=1.0, **common), progress=False)
    diverse.fit(toy_pairs(32, 0))
    # Same seeds and data: member 0 trains alike but for its own term; what differs is the
    # nuclear norm the term maximizes, and each member still fits the toy pairs.
    assert _stacked_nuclear(diverse) > _stacked_nuclear(plain) + 0.1
    assert all(accuracy(row) > 0.8 for row in diverse.score(toy_pairs(32, 2)))
    # The term trains the newest member only: earlier members' A matrices come detached.
    stacks = diverse.lora.a_stacks()
    assert stacks[0].shape[0] == 2 and stacks[0].requires_grad
    nuclear_diversity_loss(stacks).backward()
    a0 = [p for n, p in diverse.lora.model.named_parameters() if "lora_A.member_0" in n]
    assert a0 and all(p.grad is None for p in a0)


def test_diversity_choices_belong_to_their_backend() -> None:
    with pytest.raises(ConfigError, match="--diversity: nuclear acts on LoRA"):
        ModelConfig(backend="finetune", diversity="nuclear")  # full fine-tuning: no A matrices
    with pytest.raises(ConfigError, match="--diversity: nuclear"):
        ModelConfig(diversity="nuclear")
    with pytest.raises(ConfigError, match="--diversity: bagging applies to the embedding"):
        ModelConfig.from_dict({"backend": "finetune", "lora_r": 2, "diversity": "bagging"})
    assert ModelConfig.from_dict({"backend": "finetune", "lora_r": 2,
                                  "diversity": "nuclear"}).diversity == "nuclear"
    # Coupled members train in one strength job (each member's term reads the earlier ones).
    from rewardlab.stages.strength import trains_jointly

    assert trains_jointly(ModelConfig.from_dict({"backend": "finetune", "lora_r": 2,
                                                 "diversity": "nuclear"}))
    assert not trains_jointly(ModelConfig.from_dict({"backend": "finetune", "lora_r": 2}))
