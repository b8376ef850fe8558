"""The feature encoder: real MiniLM, deduplication, disk cache, truncation sides."""

from pathlib import Path

import torch

from rewardlab.config import DEFAULT_MODEL
from rewardlab.models.encode import TextEncoder


def _encoder(tmp_path: Path, **kw: object) -> TextEncoder:
    return TextEncoder(DEFAULT_MODEL, cache_dir=tmp_path / "cache", progress=False, **kw)


def test_encodes_each_distinct_text_once_and_caches(tmp_path: Path) -> None:
    texts = ["hello world", "a longer sentence about reward models", "hello world", "third"]
    enc = _encoder(tmp_path)
    out = enc.encode(texts, side="response")
    assert out.vectors.shape == (4, 384)
    assert enc.encoded_count == 3  # the duplicate is encoded once
    assert torch.equal(out.vectors[0], out.vectors[2])
    assert torch.allclose(out.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    # A fresh encoder on the same cache encodes nothing and returns the same vectors.
    again = _encoder(tmp_path)
    out2 = again.encode(texts, side="response")
    assert again.encoded_count == 0
    assert torch.equal(out.vectors, out2.vectors)
    assert out2.tokens.tolist() == out.tokens.tolist()


def test_matches_plain_transformers_mean_pooling(tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    from rewardlab.models.text import resolve_model_path

    texts = ["short", "a somewhat longer text that needs padding in a batch"]
    vecs = _encoder(tmp_path).encode(texts, side="response").vectors
    path = resolve_model_path(DEFAULT_MODEL)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert torch.allclose(vecs, ref, atol=1e-5)


def test_prompt_truncation_keeps_the_end(tmp_path: Path) -> None:
    enc = _encoder(tmp_path, max_length=16)
    long_prompt = "start " * 50 + "the final question is about cats"
    ids = enc._tokenize([long_prompt], "prompt")[0][0]
    text = enc.tokenizer.decode(ids, skip_special_tokens=True)
    assert text.endswith("the final question is about cats") and len(ids) == 16
    ids_r = enc._tokenize([long_prompt], "response")[0][0]
    assert enc.tokenizer.decode(ids_r, skip_special_tokens=True).startswith("start start")


def test_cache_keyed_by_max_length(tmp_path: Path) -> None:
    a = _encoder(tmp_path, max_length=32)
    a.encode(["some text"], side="response")
    b = _encoder(tmp_path, max_length=64)
    b.encode(["some text"], side="response")
    assert b.encoded_count == 1  # another max length is another cache entry
