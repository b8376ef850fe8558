"""The feature cache on disk: damaged shards are caught by their checksum and re-encoded, a killed
encode resumes from its finished shards, and each encoder precision has its own entries."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_encoder import tiny_encoder

from rewardlab.models.encode import DamagedShard, TextEncoder, read_shard

TEXTS = [f"text number {i} about {'cats' if i % 2 else 'dogs'} and reward models" for i in
         range(40)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_encoder(tmp_path_factory.mktemp("tiny")))


def _encoder(model: str, cache: Path, **kw: object) -> TextEncoder:
    return TextEncoder(model, cache_dir=cache, progress=False, **kw)


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.glob("features/*-response/shard-*.safetensors"))


def _flip_bit(path: Path, offset_from_end: int) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "flip-vector-bit", "flip-key-bit"])
def test_damaged_shard_is_caught_reported_and_reencoded(
        tiny: str, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    good = _encoder(tiny, cache).encode(TEXTS)
    (shard,) = _shards(cache)
    header = 8 + int.from_bytes(shard.read_bytes()[:8], "little")
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[: header + 100])
    elif damage == "flip-vector-bit":  # vectors come first in the data section
        _flip_bit(shard, len(shard.read_bytes()) - header - 5)
    else:  # the keys come last
        _flip_bit(shard, 3)
    with pytest.raises(DamagedShard):
        read_shard(shard)
    fresh = _encoder(tiny, cache)
    with caplog.at_level(logging.WARNING, logger="rewardlab"):
        again = fresh.encode(TEXTS)
    assert fresh.encoded_count == len(TEXTS)  # every text of the damaged shard, encoded anew
    assert fresh.cache("response").damaged == [shard.name]
    assert any("moved aside" in r.getMessage() for r in caplog.records)
    assert not shard.exists() and len(list(shard.parent.glob("damaged-*"))) == 1
    assert torch.allclose(again.vectors, good.vectors, atol=1e-6)
    assert torch.equal(again.tokens, good.tokens)
    # The re-encoded shard is whole: a third encoder reads it and encodes nothing.
    third = _encoder(tiny, cache)
    assert torch.equal(third.encode(TEXTS).vectors, again.vectors)
    assert third.encoded_count == 0


def test_killed_encode_resumes_from_finished_shards(tiny: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    enc = _encoder(tiny, cache)
    enc.chunk_texts = 8  # one shard per 8 texts: 5 shards for 40 texts
    calls = {"n": 0}
    forward = TextEncoder._forward

    def dies_on_the_third_chunk(self: TextEncoder, ids: list[list[int]]) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 2 * 1:  # each 8-text chunk is one batch here
            raise KeyboardInterrupt("killed")
        return forward(self, ids)

    monkeypatch.setattr(TextEncoder, "_forward", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        enc.encode(TEXTS)
    monkeypatch.setattr(TextEncoder, "_forward", forward)
    assert len(_shards(cache)) == 2  # the finished chunks were kept
    resumed = _encoder(tiny, cache)
    out = resumed.encode(TEXTS)
    assert resumed.encoded_count == len(TEXTS) - 16
    reference = _encoder(tiny, tmp_path / "other").encode(TEXTS)
    assert torch.allclose(out.vectors, reference.vectors, atol=1e-6)


def test_precision_is_part_of_the_cache_key(tiny: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fp32 = _encoder(tiny, cache)
    a = fp32.encode(TEXTS[:6])
    int8 = _encoder(tiny, cache, precision="int8")
    b = int8.encode(TEXTS[:6])
    assert int8.encoded_count == 6  # not served from the fp32 entries
    assert fp32.fingerprint.endswith("-fp32") and int8.fingerprint.endswith("-int8")
    assert not torch.equal(a.vectors, b.vectors)
    cos = torch.nn.functional.cosine_similarity(a.vectors, b.vectors)
    assert cos.min() > 0.9  # quantized, not broken
    with pytest.raises(ValueError, match="int8 runs on the CPU only"):
        _encoder(tiny, cache, precision="int8", device="cuda")
