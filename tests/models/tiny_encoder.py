"""A tiny random BERT encoder (32 wide, 1 layer) with the bundled MiniLM's tokenizer: encodes in
milliseconds, so cache and pipeline tests do not wait on MiniLM."""

from __future__ import annotations

import shutil
from pathlib import Path


def tiny_encoder(folder: Path) -> Path:
    """Write the tiny encoder into ``folder`` (once) and return it."""
    import torch
    from transformers import BertConfig, BertModel

    from rewardlab.config import DEFAULT_MODEL
    from rewardlab.models.text import resolve_model_path

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).eval().save_pretrained(folder)
    minilm = Path(resolve_model_path(DEFAULT_MODEL))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt"):
        shutil.copy(minilm / name, folder / name)
    return folder
