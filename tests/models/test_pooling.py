"""What the finetune backend's reward head reads (``--pooling``), which weights LoRA adapts
(``--lora-targets``), and the defaults that make the backend learn."""

from __future__ import annotations

import pytest
import torch

from rewardlab.config import DEFAULT_MODEL, ConfigError, ModelConfig
from rewardlab.models.finetune import FinetuneRewardModel
from rewardlab.models.pooling import pool_states, resolve_pooling
from rewardlab.models.text import resolve_model_path
from rewardlab.stages.strength import Job, member_label

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pool_states_by_hand() -> None:
    # Two inputs of 3 and 2 real tokens (right-padded), 2 dimensions.
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]],
                           [[2.0, 0.0], [4.0, 2.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    torch.testing.assert_close(pool_states(hidden, mask, "mean"),
                               torch.tensor([[3.0, 5.0], [3.0, 1.0]]))
    torch.testing.assert_close(pool_states(hidden, mask, "cls"),
                               torch.tensor([[1.0, 2.0], [2.0, 0.0]]))
    torch.testing.assert_close(pool_states(hidden, mask, "last"),
                               torch.tensor([[5.0, 9.0], [4.0, 2.0]]))
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_states(hidden, mask, "max")


def test_auto_is_what_the_backbone_was_trained_with(tmp_path) -> None:
    minilm = resolve_model_path(DEFAULT_MODEL)  # sentence-transformers: mean pooling
    assert resolve_pooling("auto", minilm, decoder_only=False) == "mean"
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert resolve_pooling("auto", str(tmp_path), decoder_only=False) == "cls"
    assert resolve_pooling("auto", str(tmp_path / "none"), decoder_only=False) == "mean"
    assert resolve_pooling("cls", minilm, decoder_only=False) == "cls"
    # Decoder-only LMs read the last token with their own head; mean or CLS is refused.
    assert resolve_pooling("auto", "gpt2", decoder_only=True) == "head"
    assert resolve_pooling("last", "gpt2", decoder_only=True) == "head"
    with pytest.raises(ConfigError, match="--pooling mean"):
        resolve_pooling("mean", "gpt2", decoder_only=True)


def test_pooling_flag_is_shared_and_checked() -> None:
    assert ModelConfig().embedding_pooling == "mean"  # the embedding backend's old default
    assert ModelConfig(pooling="last").embedding_pooling == "last"
    with pytest.raises(ConfigError, match="--pooling"):
        ModelConfig(pooling="head")  # the embedding backend has no classification head
    assert ModelConfig(backend="finetune", pooling="head").pooling == "head"
    # Folders saved before the move keep their pooling (it sat in the embedding group).
    old = ModelConfig.from_dict({"backend": "embedding", "embedding": {"pooling": "cls"}})
    assert old.pooling == "cls"


def test_default_learning_rates() -> None:
    assert ModelConfig().resolved_lr == 1e-3
    assert ModelConfig(backend="finetune").resolved_lr == 2e-5
    lora = ModelConfig.from_dict({"backend": "finetune", "lora_r": 8})
    assert lora.resolved_lr == 1e-3
    assert ModelConfig.from_dict({"backend": "finetune", "lora_r": 8, "lr": 5e-4}).resolved_lr \
        == 5e-4


def _trainable(targets: str, pooling: str = "auto") -> list[str]:
    from accelerate.utils import set_seed

    config = ModelConfig.from_dict({"backend": "finetune", "lora_r": 2, "device": "cpu",
                                    "lora_targets": targets, "pooling": pooling})
    rm = FinetuneRewardModel(config, progress=False)
    set_seed(0)
    model = rm._next_member(rm._load_backbone())
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_lora_targets_and_a_trained_head() -> None:
    attention = _trainable("attention")
    every = _trainable("all-linear")
    for names in (attention, every):
        # The reward head trains whole; the pooler, bypassed by mean pooling, does not.
        assert any("classifier" in n and "member_0" in n for n in names)
        assert not any("pooler" in n for n in names)
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n in attention if ".lora_A" in n}
    assert adapted == {"query", "value"}
    assert any("intermediate.dense.lora_A" in n for n in every)
    assert any("attention.self.key.lora_A" in n for n in every)
    assert not any("classifier.lora" in n for n in every)  # the head is not LoRA-adapted
    # --pooling head reads the class's own head, through the CLS pooler (frozen under LoRA).
    assert not any("pooler" in n for n in _trainable("attention", "head"))


def test_strength_progress_names_the_global_member() -> None:
    import numpy as np

    one = Job(5, (2,), np.arange(3), np.arange(3), 0)
    assert member_label(one, 4) == "member 3/4"
    assert member_label(Job(0, (0, 1, 2), np.arange(3), np.arange(3), 0), 3) == ""
