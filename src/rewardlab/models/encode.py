"""Frozen-backbone text encoding with a content-addressed, checksummed disk cache.

Texts are encoded once: each distinct text is encoded a single time per (backbone weights,
max length, pooling, precision, truncation side), and its pooled vector is cached on disk, so a
rerun encodes nothing and a killed encode resumes from the shards it finished. HH-style pairs
share their prompt, so encoding prompts and responses separately and deduplicating roughly halves
the work against encoding ``prompt + response`` twice per pair.

Padding is the other waste on a CPU: texts are tokenized a chunk at a time, sorted by length and
batched under a token budget, so a batch pads only to its own (similar) lengths, and token ids
never exist for more than one chunk at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from rewardlab.files import atomic_path

__all__ = ["DamagedShard", "Encoded", "FeatureCache", "TextEncoder", "default_cache_dir",
           "get_encoder", "joint_keys", "keys_of", "text_keys"]

log = logging.getLogger("rewardlab")

Side = Literal["prompt", "response", "joint", "joint-response"]
"""Which texts a vector is of: a prompt (keeps its end), a response (keeps its start), or a
(prompt, response) pair read as one sequence (``--features joint``; cut as the finetune backend
cuts its inputs, :func:`rewardlab.models.text.encode_prompt_response`), pooled over all its
tokens (``joint``) or over the response's tokens only (``joint-response``)."""
JOINT_SIDES = ("joint", "joint-response")
Text = str | tuple[str, str]
"""What is encoded: one text, or (prompt, response) for the joint side."""
KEY = np.dtype("V16")
"""A text's cache key: 16 bytes of BLAKE2b, as one numpy item (sortable, searchable)."""
CHECKSUM = "rewardlab.blake2b"
"""Shard metadata entry: BLAKE2b of every tensor's bytes, in name order."""
_DTYPES = {"F32": np.float32, "I32": np.int32, "U8": np.uint8}


def default_cache_dir() -> Path:
    """``$REWARDLAB_CACHE``, else ``$XDG_CACHE_HOME/rewardlab``, else ``~/.cache/rewardlab``."""
    if os.environ.get("REWARDLAB_CACHE"):
        return Path(os.environ["REWARDLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rewardlab"


def text_key(text: str) -> bytes:
    """16-byte content key of a text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """Content keys ``[n]`` (dtype :data:`KEY`) of ``texts``, in order."""
    return np.frombuffer(b"".join(map(text_key, texts)), dtype=KEY)


def joint_keys(pairs: Iterable[tuple[str, str]]) -> np.ndarray:
    """Content keys ``[n]`` of (prompt, response) pairs; the prompt's length leads the hashed
    text, so no split of the same characters into another pair shares a key."""
    return text_keys(f"{len(p)}:{p}{r}" for p, r in pairs)


def keys_of(texts: Sequence[Text], side: Side) -> np.ndarray:
    """Content keys ``[n]`` of ``texts`` of ``side`` (pairs on the joint side)."""
    return (joint_keys(texts) if side in JOINT_SIDES  # type: ignore[arg-type]
            else text_keys(texts))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Encoded:
    """Pooled vectors ``[n, D]`` (float32, L2-normalised) and token counts ``[n]``
    (after truncation)."""

    vectors: torch.Tensor
    tokens: torch.Tensor


# -- shards ------------------------------------------------------------------------------------
class DamagedShard(ValueError):
    """A cache shard is truncated, unreadable or fails its checksum."""


def _checksum(tensors: dict[str, np.ndarray | memoryview]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(memoryview(np.ascontiguousarray(tensors[name])).cast("B"))
    return h.hexdigest()


def _header(head: bytes, size: int, name: str) -> tuple[dict, int]:
    """The JSON header of a safetensors file (from its first bytes) and where its data starts."""
    if len(head) < 8:
        raise DamagedShard(f"{name}: shorter than a safetensors header")
    n = int.from_bytes(head[:8], "little")
    if 8 + n > size or n > len(head) - 8:
        raise DamagedShard(f"{name}: truncated inside its header")
    try:
        header = json.loads(head[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        raise DamagedShard(f"{name}: header is not valid JSON") from None
    if not isinstance(header, dict) or not {"keys", "vectors", "tokens"} <= header.keys():
        raise DamagedShard(f"{name}: header lacks keys, vectors or tokens")
    return header, 8 + n


def _span(header: dict, name: str, shard: str) -> tuple[int, int, np.dtype, tuple[int, ...]]:
    """Byte range (within the data section), dtype and shape of tensor ``name``."""
    spec = header[name]
    try:
        start, end = (int(x) for x in spec["data_offsets"])
        dtype, shape = np.dtype(_DTYPES[spec["dtype"]]), tuple(int(s) for s in spec["shape"])
    except (KeyError, TypeError, ValueError):
        raise DamagedShard(f"{shard}: malformed entry for {name!r}") from None
    if not 0 <= start <= end or end - start != dtype.itemsize * int(np.prod(shape)):
        raise DamagedShard(f"{shard}: malformed entry for {name!r}")
    return start, end, dtype, shape


def _tensor(header: dict, name: str, data: memoryview, base: int, shard: str) -> np.ndarray:
    """Tensor ``name`` from ``data``, the bytes of the data section from offset ``base`` on."""
    start, end, dtype, shape = _span(header, name, shard)
    if start < base or end - base > len(data):
        raise DamagedShard(f"{shard}: {name!r} lies beyond the end of the file (truncated)")
    return np.frombuffer(data[start - base:end - base], dtype=dtype).reshape(shape)


def read_shard(path: Path) -> dict[str, np.ndarray]:
    """The tensors of one cache shard, checked: ``keys`` ``[n, 16]`` uint8, ``vectors``
    ``[n, D]`` float32, ``tokens`` ``[n]`` int32.

    The whole file is read and its checksum verified, so a truncated or bit-flipped shard raises
    :class:`DamagedShard` and is never read as vectors.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        header, start = _header(fh.read(min(size, 1 << 16)), size, path.name)
        fh.seek(start)
        data = memoryview(fh.read())
    tensors = {k: _tensor(header, k, data, 0, path.name) for k in ("keys", "vectors", "tokens")}
    expected = (header.get("__metadata__") or {}).get(CHECKSUM)
    if expected is None or _checksum(tensors) != expected:
        raise DamagedShard(f"{path.name}: checksum mismatch (damaged on disk)")
    n = tensors["keys"].shape[0]
    if tensors["keys"].shape != (n, 16) or tensors["vectors"].shape[0] != n or \
            tensors["tokens"].shape != (n,) or tensors["vectors"].ndim != 2:
        raise DamagedShard(f"{path.name}: tensors of different lengths")
    return tensors


def shard_keys(path: Path) -> tuple[np.ndarray, int]:
    """The keys ``[n]`` (:data:`KEY`) of one shard and the width D of its vectors, reading only
    its header and keys (enough to index it; its vectors are checked when read)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        header, start = _header(fh.read(min(size, 1 << 16)), size, path.name)
        lo, hi, _, _ = _span(header, "keys", path.name)
        fh.seek(start + lo)
        keys = _tensor(header, "keys", memoryview(fh.read(hi - lo)), lo, path.name)
    shape = _span(header, "vectors", path.name)[3]
    if keys.ndim != 2 or keys.shape[1] != 16 or len(shape) != 2:
        raise DamagedShard(f"{path.name}: malformed keys or vectors")
    return np.ascontiguousarray(keys).view(KEY).reshape(-1), int(shape[1])


class FeatureCache:
    """Append-only store of ``key -> (vector, token count)`` in safetensors shards under one folder.

    Shards are written atomically and never modified, so a killed run loses at most the shard it
    was writing, and concurrent readers (other processes of a launch) never see a half-written
    file. Each shard carries a checksum of its tensors; a shard that fails it (truncated,
    bit-flipped) is reported, moved aside as ``damaged-*`` and its texts count as not cached, so
    they are encoded again.

    Only the keys are held in memory (about 24 bytes per cached text), as one sorted array; the
    vectors are read shard by shard when asked for.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._shards: list[Path] = []
        self._known: set[str] = set()
        self._parts: list[tuple[np.ndarray, int]] = []  # (keys [n] KEY, shard number)
        self._keys = np.zeros(0, KEY)
        self._where = np.zeros((0, 2), np.int32)  # (shard, row) of each sorted key
        self._sorted = True
        self.damaged: list[str] = []
        """Names of the shards found damaged (and moved aside) by this object."""
        self.width: int | None = None
        """Width D of the cached vectors (from the first shard indexed; ``None`` when empty)."""
        self._loaded = False

    # -- index ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Index shards written since the last look (by this process or another)."""
        self._loaded = True
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.glob("shard-*.safetensors")):
            if shard.name in self._known:
                continue
            try:
                keys, width = shard_keys(shard)
            except (DamagedShard, OSError) as exc:
                self._quarantine(shard, str(exc))
                continue
            self.width = self.width or width
            self._index(shard, keys)

    def _index(self, shard: Path, keys: np.ndarray) -> None:
        self._known.add(shard.name)
        self._shards.append(shard)
        self._parts.append((keys, len(self._shards) - 1))
        self._sorted = False

    def _sort(self) -> None:
        if self._sorted:
            return
        keys = np.concatenate([self._keys, *(k for k, _ in self._parts)])
        where = np.concatenate([self._where, *(
            np.stack([np.full(len(k), s, np.int32), np.arange(len(k), dtype=np.int32)], 1)
            for k, s in self._parts)])
        order = np.argsort(keys, kind="stable")
        self._keys, self._where = keys[order], where[order]
        self._parts, self._sorted = [], True

    def locate(self, keys: np.ndarray) -> np.ndarray:
        """``[n, 2]`` int32 (shard, row) of each of ``keys`` (:data:`KEY`), ``-1`` where absent."""
        if not self._loaded:
            self.refresh()
        self._sort()
        out = np.full((len(keys), 2), -1, np.int32)
        if len(self._keys) and len(keys):
            pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
            hit = self._keys[pos] == keys
            out[hit] = self._where[pos[hit]]
        return out

    def __contains__(self, key: bytes) -> bool:
        return bool(self.locate(np.frombuffer(key, KEY))[0, 0] >= 0)

    def __len__(self) -> int:
        if not self._loaded:
            self.refresh()
        self._sort()
        return len(self._keys)

    def _quarantine(self, shard: Path, why: str) -> None:
        log.warning("feature cache: %s; moved aside, its texts will be encoded again", why)
        self.damaged.append(shard.name)
        self._known.add(shard.name)
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            os.replace(shard, shard.with_name(f"damaged-{uuid.uuid4().hex[:8]}-{shard.name}"))

    def _forget(self, shard: int) -> None:
        """Drop every key of shard number ``shard`` from the index."""
        self._sort()
        keep = self._where[:, 0] != shard
        self._keys, self._where = self._keys[keep], self._where[keep]

    # -- vectors --------------------------------------------------------------------------------
    def gather(self, keys: np.ndarray,
               sink: Callable[[np.ndarray, np.ndarray, np.ndarray], None]) -> np.ndarray:
        """Hand every cached one of ``keys`` to ``sink(positions, vectors, tokens)``, one shard
        at a time (``positions`` index ``keys``); return the positions *not* delivered: absent,
        or in a shard found damaged now (moved aside and forgotten, so they read as absent).
        """
        where = self.locate(keys)
        undelivered = [np.flatnonzero(where[:, 0] < 0)]
        found = np.flatnonzero(where[:, 0] >= 0)
        order = found[np.argsort(where[found, 0], kind="stable")]
        bounds = np.flatnonzero(np.diff(where[order, 0])) + 1
        for part in np.split(order, bounds) if len(order) else []:
            shard = int(where[part[0], 0])
            try:
                data = read_shard(self._shards[shard])
            except (DamagedShard, OSError) as exc:
                self._quarantine(self._shards[shard], str(exc))
                self._forget(shard)
                undelivered.append(part)
                continue
            rows = where[part, 1]
            sink(part, data["vectors"][rows], data["tokens"][rows])
        return np.sort(np.concatenate(undelivered))

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors ``[n, D]`` and token counts ``[n]`` of cached ``keys`` (all must be present)."""
        k = np.frombuffer(b"".join(keys), KEY)
        vecs: dict[int, np.ndarray] = {}
        toks = np.zeros(len(k), np.int32)

        def sink(pos: np.ndarray, v: np.ndarray, t: np.ndarray) -> None:
            vecs.update(zip(pos.tolist(), v))
            toks[pos] = t

        missing = self.gather(k, sink)
        if len(missing):
            raise KeyError(f"{len(missing)} of {len(k)} texts are not in the feature cache")
        if not len(k):
            return np.zeros((0, 0), np.float32), toks
        return np.stack([vecs[i] for i in range(len(k))]), toks

    def put(self, keys: Sequence[bytes] | np.ndarray, vectors: np.ndarray,
            tokens: np.ndarray) -> None:
        """Store a new shard (atomically, with its checksum) and index it."""
        from safetensors.numpy import save_file

        if not self._loaded:
            self.refresh()
        raw = keys if isinstance(keys, np.ndarray) else np.frombuffer(b"".join(keys), KEY)
        data = {
            "keys": np.ascontiguousarray(raw).view(np.uint8).reshape(len(raw), 16),
            "vectors": np.ascontiguousarray(vectors, dtype=np.float32),
            "tokens": np.ascontiguousarray(tokens, dtype=np.int32),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        shard = self.folder / f"shard-{uuid.uuid4().hex}.safetensors"
        with atomic_path(shard) as tmp:
            save_file(data, str(tmp), metadata={CHECKSUM: _checksum(data)})
        self._index(shard, np.ascontiguousarray(raw).view(KEY).reshape(-1))


def weights_fingerprint(model_dir: str) -> str:
    """Hash of a local model folder's weight files (names, sizes and contents)."""
    h = hashlib.blake2b(digest_size=12)
    files = sorted(p for p in Path(model_dir).iterdir()
                   if p.suffix in (".safetensors", ".bin", ".pt", ".pth") and p.is_file())
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every ``nn.Linear`` dynamically quantized to int8 (weights int8, activations
    quantized per batch on the fly; CPU only)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's deprecation notices, not actionable here
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TextEncoder:
    """Encodes texts with a frozen Hugging Face backbone into pooled, cached vectors.

    Args:
        model: local folder or hub id (the bundled MiniLM for ``DEFAULT_MODEL``).
        max_length: tokens kept per text. Prompts keep their *end* (the turn being answered),
            responses their start.
        pooling: ``mean`` over tokens, ``cls`` (first token) or ``last`` (last real token, for
            decoders).
        batch_size: texts per forward pass (also bounded by a token budget).
        cache_dir: root of the disk cache; ``None`` disables it.
        precision: ``fp32``, or ``int8`` (dynamic quantization of the linear layers; CPU only).
    """

    chunk_texts = 8192
    """Texts tokenized at once: token ids never exist for more than this many."""

    def __init__(self, model: str, *, max_length: int = 256, pooling: str = "mean",
                 batch_size: int = 64, cache_dir: str | os.PathLike[str] | None = None,
                 device: str = "cpu", progress: bool = True, precision: str = "fp32") -> None:
        from rewardlab.models.text import resolve_model_path

        self.model_name = model
        self.model_path = resolve_model_path(model)
        self.max_length = max_length
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = torch.device(device)
        if precision not in ("fp32", "int8"):
            raise ValueError(f"unknown encoder precision {precision!r}; choose fp32 or int8")
        if precision == "int8" and self.device.type != "cpu":
            raise ValueError(f"--encoder-precision int8 runs on the CPU only, not on "
                             f"{self.device}; use fp32 there")
        self.precision = precision
        self.progress = progress
        self.cache_root = Path(cache_dir) if cache_dir is not None else None
        self._model: torch.nn.Module | None = None
        self._tokenizer = None
        self._fingerprint: str | None = None
        self._dim: int | None = None
        self._caches: dict[str, FeatureCache] = {}
        self.encoded_count = 0  # texts actually run through the backbone (not cache hits)
        # Tokens per forward pass. On a CPU small batches are faster per token (their
        # activations stay in cache: measured 5.9k tokens/s at ~1k tokens per batch against
        # 3.9k at 64 texts per batch on 2 cores); a GPU wants large ones.
        self.tokens_per_batch = 1024 if self.device.type == "cpu" else 32768

    # -- backbone ---------------------------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            if self._tokenizer.pad_token is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token
        return self._tokenizer

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(self.model_path).eval()
            if self.precision == "int8":
                model = quantize_int8(model)
            self._model = model.to(self.device)
        return self._model

    @property
    def dim(self) -> int:
        """Width D of the pooled vectors: from the cache when it holds any (no import of
        transformers on a warm run), else from the backbone's config."""
        if self._dim is None:
            for side in ("response", "prompt"):
                cache = self.cache(side)
                if cache is not None and len(cache) and cache.width:
                    self._dim = cache.width
                    return self._dim
            from transformers import AutoConfig

            self._dim = int(AutoConfig.from_pretrained(self.model_path).hidden_size)
        return self._dim

    @property
    def fingerprint(self) -> str:
        """Identifies the cached vectors: weights hash, max length, pooling and precision."""
        if self._fingerprint is None:
            if Path(self.model_path).is_dir():
                weights = weights_fingerprint(self.model_path)
            else:  # a hub id: hash the loaded parameters themselves
                from transformers import AutoModel

                h = hashlib.blake2b(digest_size=12)
                state = AutoModel.from_pretrained(self.model_path).state_dict()
                for name, tensor in sorted(state.items()):
                    h.update(name.encode())
                    h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
                weights = h.hexdigest()
            self._fingerprint = f"{weights}-L{self.max_length}-{self.pooling}-{self.precision}"
        return self._fingerprint

    def cache(self, side: Side) -> FeatureCache | None:
        """The feature cache of one truncation side (``None`` without a cache folder)."""
        if self.cache_root is None:
            return None
        if side not in self._caches:
            folder = self.cache_root / "features" / f"{self.fingerprint}-{side}"
            self._caches[side] = FeatureCache(folder)
        return self._caches[side]

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, texts: Sequence[Text], *, side: Side = "response") -> Encoded:
        """Pooled vectors of ``texts`` (``[n, D]``, row i for ``texts[i]``; (prompt, response)
        pairs on the joint side) and token counts, in memory (for few texts: the embedding
        backend streams many through :mod:`rewardlab.models.features` instead).

        Each distinct text is looked up in the cache and encoded only when missing.
        """
        keys = keys_of(texts, side)
        if not len(keys):
            return Encoded(torch.zeros(0, 0), torch.zeros(0, dtype=torch.int32))
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        vectors = np.zeros((len(unique), self.dim), np.float32)
        tokens = np.zeros(len(unique), np.int32)

        def sink(pos: np.ndarray, v: np.ndarray, t: np.ndarray) -> None:
            vectors[pos], tokens[pos] = v, t

        self.fetch(unique, lambda idx: [texts[int(first[i])] for i in idx], side=side, sink=sink)
        inverse = inverse.reshape(-1)
        return Encoded(torch.from_numpy(vectors[inverse]), torch.from_numpy(tokens[inverse]))

    def fetch(self, keys: np.ndarray, text_of: Callable[[np.ndarray], list[Text]], *, side: Side,
              sink: Callable[[np.ndarray, np.ndarray, np.ndarray], None]) -> None:
        """Hand the vector and token count of each of ``keys`` (distinct) to ``sink(positions,
        vectors, tokens)``: from the cache, encoding what is missing or damaged
        (``text_of(positions)`` gives those texts)."""
        cache = self.cache(side)
        if cache is None:
            every = np.arange(len(keys))
            self.encode_missing(keys, text_of, side=side, sink=sink, positions=every)
            return
        todo = np.arange(len(keys))
        for _ in range(3):  # encode what is missing; a shard damaged meanwhile sends us round
            todo = todo[cache.gather(keys[todo], lambda p, v, t, at=todo: sink(at[p], v, t))]
            if not len(todo):
                return
            self.encode_missing(keys[todo], lambda idx, at=todo: text_of(at[idx]), side=side)
        raise RuntimeError(f"feature cache {cache.folder}: {len(todo)} texts could not be read "
                           f"back after encoding them; is the disk full or failing?")

    def encode_missing(self, keys: np.ndarray, text_of: Callable[[np.ndarray], list[Text]], *,
                       side: Side, sink: Callable[..., None] | None = None,
                       positions: np.ndarray | None = None) -> int:
        """Encode those of ``keys`` (distinct) not in the cache, into the cache, and return how
        many. ``positions`` (default: the uncached ones) forces which are encoded; ``sink``
        also receives what is encoded (for running without a cache)."""
        cache = self.cache(side)
        if positions is None:
            positions = (np.arange(len(keys)) if cache is None
                         else np.flatnonzero(cache.locate(keys)[:, 0] < 0))
        if not len(positions):
            return 0
        bar = _EncodeProgress(len(positions), side, enabled=self.progress)
        for start in range(0, len(positions), self.chunk_texts):
            part = positions[start:start + self.chunk_texts]
            vecs, lengths = self._run_backbone(text_of(part), side=side, bar=bar,
                                               keys=keys[part], cache=cache)
            if sink is not None:
                sink(part, vecs, lengths)
        bar.close()
        return len(positions)

    def _tokenize(self, texts: list[Text], side: Side) -> tuple[list[list[int]], np.ndarray,
                                                                np.ndarray]:
        """Token ids of ``texts`` (special tokens included, at most ``max_length``), the
        token count ``[n]`` each is cached with, and where pooling starts in each ``[n]``.

        The count is the whole text's, or on the joint sides the response's share (its kept
        tokens and the closing special token), so that the length feature is the response's
        length under any ``--features``. Pooling starts at 0, or on the ``joint-response`` side
        at the response's first token.
        """
        if side in JOINT_SIDES:
            ids, counts, starts = self._tokenize_joint(texts)  # type: ignore[arg-type]
            return ids, counts, starts if side == "joint-response" else np.zeros_like(starts)
        tok = self.tokenizer
        old = tok.truncation_side
        # Prompts keep their end: the last turns are what the response answers.
        tok.truncation_side = "left" if side == "prompt" else "right"
        try:
            ids = tok(texts, truncation=True, max_length=self.max_length,
                      add_special_tokens=True)["input_ids"]
        finally:
            tok.truncation_side = old
        return ids, np.array([len(x) for x in ids], dtype=np.int32), np.zeros(len(ids), np.int32)

    def _tokenize_joint(self, pairs: list[tuple[str, str]]) -> tuple[list[list[int]],
                                                                      np.ndarray, np.ndarray]:
        """(prompt, response) pairs as one sequence each, cut as the finetune backend cuts
        them: the response keeps its start, the prompt fills what is left with its end."""
        from rewardlab.models.text import encode_prompt_response, is_decoder_only

        # Token types are not passed to the backbone (all zero): the sentence encoder was
        # trained on single sequences, so the pair reads as one text with a separator.
        enc = encode_prompt_response(self.tokenizer, [p for p, _ in pairs],
                                     [r for _, r in pairs], max_length=self.max_length,
                                     pair_format=not is_decoder_only(self.model.config))
        starts = np.array([e.prompt_end for e in enc], dtype=np.int32)
        return ([e.input_ids for e in enc],
                np.array([len(e) for e in enc], dtype=np.int32) - starts, starts)

    @torch.inference_mode()
    def _run_backbone(self, texts: list[Text], *, side: Side, keys: np.ndarray,
                      cache: FeatureCache | None, bar: _EncodeProgress,
                      flush_every: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Encode one chunk of texts; every ``flush_every`` texts become a cache shard."""
        ids, counts, starts = self._tokenize(texts, side)
        lengths = np.array([len(x) for x in ids], dtype=np.int32)
        order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks early
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done: list[int] = []
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            size = max(1, min(self.batch_size, self.tokens_per_batch // max(longest, 1)))
            batch = order[start:start + size]
            start += size
            out[batch] = (self._forward([ids[i] for i in batch]) if not starts.any() else
                          self._forward([ids[i] for i in batch], pool_from=starts[batch]))
            done.extend(batch.tolist())
            bar.update(len(batch), int(lengths[batch].sum()))
            if cache is not None and (len(done) >= flush_every or start >= len(order)):
                cache.put(keys[done], out[done], counts[done])
                done = []
        self.encoded_count += len(texts)
        return out, counts

    def _forward(self, ids: list[list[int]], pool_from: np.ndarray | None = None) -> np.ndarray:
        """Pooled vectors ``[B, D]`` of one batch of token id lists (right-padded), pooled over
        each row's tokens from ``pool_from`` ``[B]`` on (all of them by default)."""
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.tokenizer.pad_token_id or 0,
                               dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = torch.tensor(x)
            mask[row, : len(x)] = 1
        mask = mask.to(self.device)
        hidden = self.model(input_ids=input_ids.to(self.device),
                            attention_mask=mask).last_hidden_state
        if pool_from is not None:  # every token attends to all, only the response's pool
            before = torch.arange(width, device=self.device) < torch.from_numpy(
                pool_from).to(self.device).unsqueeze(1)
            mask = mask.masked_fill(before, 0)
        return self._pool(hidden, mask).float().cpu().numpy()

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` states and ``[B, T]`` mask -> ``[B, D]`` L2-normalised vectors."""
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "last":
            # Right padding: the last real token (pooling may skip a prefix, never the end).
            last = mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)


class _EncodeProgress:
    """A progress bar over texts (texts/s and ETA) that also shows tokens/s."""

    def __init__(self, total: int, side: Side, *, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="text", desc=f"encoding {total} {side}s",
                        disable=not enabled, unit_scale=True)
        self.tokens, self.t0 = 0, time.perf_counter()

    def update(self, texts: int, tokens: int) -> None:
        self.tokens += tokens
        self.bar.update(texts)
        seconds = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{self.tokens / seconds:,.0f} tok/s", refresh=False)

    def close(self) -> None:
        self.bar.close()


_ENCODERS: dict[tuple, TextEncoder] = {}
_LOCK = threading.Lock()


def get_encoder(model: str, *, max_length: int, pooling: str, batch_size: int,
                cache_dir: str | os.PathLike[str] | None, device: str = "cpu",
                progress: bool = True, precision: str = "fp32") -> TextEncoder:
    """A process-wide shared encoder per setting, so repeated fits reuse the loaded backbone and
    the cache index."""
    key = (model, max_length, pooling, str(cache_dir), device, precision)
    with _LOCK:
        enc = _ENCODERS.get(key)
        if enc is None:
            enc = TextEncoder(model, max_length=max_length, pooling=pooling,
                              batch_size=batch_size, cache_dir=cache_dir, device=device,
                              progress=progress, precision=precision)
            _ENCODERS[key] = enc
        enc.progress = progress
        return enc
