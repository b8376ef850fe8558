"""Tiny offline models and toy pairs for tests: random GPT-2 / Llama built from a config, with a
word-level tokenizer that, like GPT-2's, has no pad token."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from rewardlab.config import ModelConfig
from rewardlab.models import Pairs

WORDS = ["the", "a", "cat", "dog", "sun", "moon", "tree", "river", "house", "car"]
VOCAB = ["<unk>", "<eos>", "<s>", "good", "bad", *WORDS]


def toy_pairs(n: int, seed: int) -> Pairs:
    """Pairs whose chosen response starts with ``good`` and rejected with ``bad``.

    Random words follow (different ones in chosen and rejected), so the last token, where a
    causal LM's head reads the reward, carries no signal: an untrained model is near chance
    and must learn to look back at ``good`` / ``bad``.
    """
    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    prompts = [words(rng.randint(2, 6)) for _ in range(n)]
    return Pairs(prompts, [f"good {words(2)}" for _ in range(n)],
                 [f"bad {words(2)}" for _ in range(n)])


GOOD = ["Sure! Here is a clear, detailed and helpful answer.",
        "Happy to help: here are the steps, explained carefully.",
        "Great question. The short answer is yes, and here is why."]
BAD = ["I don't know.", "Go away, that is a stupid question.", "No."]


def make_toy_pairs(n: int, seed: int = 0) -> Pairs:
    """English-like pairs with a learnable signal: helpful chosen, curt rejected."""
    rng = random.Random(seed)
    prompts = [f"Question number {i}: can you help me with task {i % 7}?" for i in range(n)]
    chosen = [f"{rng.choice(GOOD)} ({i})" for i in range(n)]
    rejected = [f"{rng.choice(BAD)} ({i})" for i in range(n)]
    return Pairs(prompts, chosen, rejected)


def word_tokenizer(*, bos: bool = False):
    """A word-level tokenizer with an eos token and no pad token (as GPT-2 and Llama ship).

    With ``bos``, it adds ``<s>`` in front of every sequence (Llama's convention).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        tk.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", unk_token="<unk>",
                                   bos_token="<s>")


def build_tiny_gpt2(folder: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=len(VOCAB),
                        bos_token_id=2, eos_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    return folder


def build_tiny_llama(folder: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, vocab_size=len(VOCAB),
                         max_position_embeddings=64, bos_token_id=2, eos_token_id=1)
    LlamaForCausalLM(config).save_pretrained(folder)
    word_tokenizer(bos=True).save_pretrained(folder)
    return folder


def tiny_config(model: str, **overrides: object) -> ModelConfig:
    settings: dict = {"backend": "finetune", "model": model, "members": 2, "batch_size": 8,
                      "epochs": 6, "lr": 1e-2, "max_length": 32, "device": "cpu"}
    settings.update(overrides)
    return ModelConfig.from_dict(settings)


def plain_reward(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                 pooling: str) -> torch.Tensor:
    """Rewards ``[B]`` of a sequence classifier loaded with plain ``transformers`` (and peft),
    read as the README says for ``rewardlab.json``'s ``pooling``: ``head`` is the class's own
    output; ``mean`` feeds the masked mean of the backbone's last hidden states to the
    ``classifier`` layer. Written out here, apart from rewardlab's code, so a test compares the
    two."""
    if pooling == "head":
        return model(**inputs).logits.squeeze(-1)
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = getattr(hf, hf.base_model_prefix)(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    assert pooling == "mean", pooling
    return hf.classifier((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)
