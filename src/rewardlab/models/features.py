"""Out-of-core features of the embedding backend: vectors live on disk, mini-batches in RAM.

:func:`encode_pairs` turns N pairs into :class:`PairVectors`: the pooled vector of every distinct
text streams from the feature cache (encoding what is missing) into a :class:`VectorStore`, an
unnamed file on disk (float32 or float16), and each pair keeps only three row numbers and two
token counts (about 40 bytes). Subsets are index arrays over the same store.

The whitening PCA is fitted from moments streamed over the store (:func:`projection_moments`),
on every training text or on a seeded bounded sample of them. The projected features are written
once per fitted projection into another store (float32, ``[rows, k]``) and memory-mapped; head
training and scoring gather their mini-batches from it (:func:`batch_features`). So texts, token
ids and raw vectors never sit in RAM all at once: peak memory grows by the projected features
(``3 × k × 4`` bytes a pair) plus the small per-pair arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from rewardlab.models.base import Pairs, as_index
from rewardlab.models.encode import Side, Text, TextEncoder, joint_keys, text_keys
from rewardlab.models.heads import pair_features

__all__ = ["DistinctTexts", "PairRows", "PairVectors", "VectorStore", "batch_features",
           "distinct_texts", "encode_pairs", "feature_sides", "project_store",
           "projection_moments"]

WINDOW_BYTES = 16 << 20
"""Bytes of a store read or mapped at once: the most any streamed pass holds in RAM."""


class VectorStore:
    """A ``[rows, dim]`` array (float32 or float16) in an unnamed file under ``folder``.

    The file has no name (``O_TMPFILE``, or unlinked at once), so it disappears when the store is
    closed or garbage-collected, or the process dies, even by ``kill -9``. Written through
    :meth:`writer`, read back in windows (:meth:`windows`, :meth:`take`) or mapped whole
    (:meth:`tensor`, float32 stores only). Reads go through the page cache, not the process's
    memory, so a large store costs disk, not RSS.
    """

    def __init__(self, rows: int, dim: int, dtype: str | np.dtype, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.rows, self.dim, self.dtype = rows, dim, np.dtype(dtype)
        # Owned by the store for its whole life, not a with-block: closed when it is collected.
        self.file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        self.file.truncate(self.rows * self.row_bytes)
        self._tensor: torch.Tensor | None = None
        self.projected: dict[str, VectorStore] = {}
        """The latest projection of this store (see :func:`project_store`), by projection."""

    @property
    def row_bytes(self) -> int:
        return self.dim * self.dtype.itemsize

    @property
    def window_rows(self) -> int:
        return max(1, WINDOW_BYTES // max(self.row_bytes, 1))

    @contextlib.contextmanager
    def writer(self) -> Iterator[Callable[[np.ndarray, np.ndarray], None]]:
        """Yield ``write(rows, vectors)`` for scattered rows. Writes go through a mapping that is
        dropped every :data:`WINDOW_BYTES` written, so dirty pages never pile up in RSS."""
        state: dict[str, object] = {"map": None, "written": 0}

        def write(rows: np.ndarray, vectors: np.ndarray) -> None:
            if state["map"] is None:
                state["map"] = np.memmap(self.file, self.dtype, "r+", shape=(self.rows, self.dim))
            state["map"][rows] = vectors  # type: ignore[index]
            state["written"] = int(state["written"]) + len(rows) * self.row_bytes  # type: ignore
            if int(state["written"]) >= WINDOW_BYTES:  # type: ignore[arg-type]
                state["map"], state["written"] = None, 0

        try:
            yield write
        finally:
            state["map"] = None
            self._tensor = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as float32 ``[stop - start, dim]`` (a copy)."""
        # Read straight into a writable array (bytes from os.pread would be read-only).
        out = np.empty((stop - start, self.dim), self.dtype)
        got = os.preadv(self.file.fileno(), [memoryview(out).cast("B")], start * self.row_bytes)
        if got != out.nbytes:
            raise OSError(f"vector store: read {got} of {out.nbytes} bytes at row {start}")
        return out.astype(np.float32, copy=False)

    def windows(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, rows)`` over the whole store, :attr:`window_rows` rows at a time."""
        for start in range(0, self.rows, self.window_rows):
            yield start, self.read(start, min(start + self.window_rows, self.rows))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (any order, repeats allowed) as float32 ``[len(rows), dim]``."""
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.zeros((len(unique), self.dim), np.float32)
        for lo, block in self.blocks(unique):
            out[lo:lo + len(block)] = block
        return out[inverse.reshape(-1)]

    def blocks(self, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """``(i, vectors)`` for sorted distinct ``rows``: the vectors of ``rows[i:i + len]``, as
        float32, one window of the store at a time (a window with few of them is read row by
        row)."""
        starts = np.arange(0, self.rows + self.window_rows, self.window_rows)
        edges = np.searchsorted(rows, starts)
        for lo, hi in itertools.pairwise(edges.tolist()):
            if hi == lo:
                continue
            part = rows[lo:hi]
            first, last = int(part[0]), int(part[-1]) + 1
            if len(part) * 16 < last - first:  # sparse: one read per row
                block = np.concatenate([self.read(int(r), int(r) + 1) for r in part])
            else:
                block = self.read(first, last)[part - first]
            yield lo, block

    def tensor(self) -> torch.Tensor:
        """The whole store as a ``[rows, dim]`` float32 tensor mapped from the file."""
        if self.dtype != np.float32:
            raise TypeError("only float32 stores are mapped as tensors")
        if self._tensor is None:
            if not self.rows:
                return torch.zeros(0, self.dim)
            mapped = np.memmap(self.file, np.float32, "r+", shape=(self.rows, self.dim))
            self._tensor = torch.from_numpy(mapped)
        return self._tensor


@dataclasses.dataclass(frozen=True)
class PairVectors:
    """Frozen encodings of N pairs: rows of ``store`` for each pair's ``prompt``, ``chosen`` and
    ``rejected`` text (``[N]`` int64 each), and the responses' token counts ``chosen_tokens``,
    ``rejected_tokens`` (``[N]`` int32 tensors).

    What :meth:`EmbeddingRewardModel.prepare` returns: a stage that fits many models on the same
    pairs encodes them once and hands this (or a :meth:`subset`, which shares the store) to
    ``fit`` and ``score``. ``encoder`` names the encoding settings, so vectors are never fed to a
    model that encodes differently.
    """

    store: VectorStore
    prompt: np.ndarray
    chosen: np.ndarray
    rejected: np.ndarray
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor
    encoder: str

    def __len__(self) -> int:
        return len(self.prompt)

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> PairVectors:
        """The pairs at ``index`` (positions or a boolean mask); the store is shared."""
        idx = np.asarray(as_index(index, len(self)), dtype=np.int64)
        t = torch.from_numpy(idx)
        return PairVectors(self.store, self.prompt[idx], self.chosen[idx], self.rejected[idx],
                           self.chosen_tokens[t], self.rejected_tokens[t], self.encoder)

    def occurrences(self) -> np.ndarray:
        """Store rows of every text occurrence, ``[3N]``: prompts, then chosen, then rejected."""
        return np.concatenate([self.prompt, self.chosen, self.rejected])


def _first_seen(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``keys`` in first-seen order, where each was first seen, and the position of
    each key among the distinct ones (``distinct[inverse] == keys``)."""
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return unique[order], first[order], rank[inverse.reshape(-1)]


@dataclasses.dataclass(frozen=True)
class DistinctTexts:
    """The distinct texts of one truncation side of N pairs, in first-seen order: their cache
    ``keys`` ``[u]``, the position among them of every occurrence's text (``rows``), and
    ``text_of(positions)`` giving the texts themselves (read from the pairs only when needed;
    (prompt, response) pairs on the joint side)."""

    side: Side
    keys: np.ndarray
    rows: np.ndarray
    text_of: Callable[[np.ndarray], list[Text]]


def distinct_texts(pairs: Pairs) -> tuple[DistinctTexts, DistinctTexts]:
    """The distinct prompts (``N`` occurrences) and responses (``2N``: chosen, then rejected)."""
    n = len(pairs)
    p_keys, p_first, p_rows = _first_seen(text_keys(pairs.prompt))
    r_keys, r_first, r_rows = _first_seen(text_keys(itertools.chain(pairs.chosen,
                                                                    pairs.rejected)))

    def prompts(idx: np.ndarray) -> list[str]:
        return [pairs.prompt[int(p_first[i])] for i in idx]

    def responses(idx: np.ndarray) -> list[str]:
        at = [int(r_first[i]) for i in idx]
        return [pairs.chosen[i] if i < n else pairs.rejected[i - n] for i in at]

    return (DistinctTexts("prompt", p_keys, p_rows, prompts),
            DistinctTexts("response", r_keys, r_rows, responses))


def distinct_joint(pairs: Pairs, side: Side) -> DistinctTexts:
    """The distinct (prompt, response) pairs of the ``2N`` pair sides (chosen, then rejected),
    each one text of ``side`` (a joint side)."""
    n = len(pairs)

    def text(i: int) -> tuple[str, str]:
        return pairs.prompt[i % n], (pairs.chosen[i] if i < n else pairs.rejected[i - n])

    keys, first, rows = _first_seen(joint_keys(text(i) for i in range(2 * n)))
    return DistinctTexts(side, keys, rows, lambda idx: [text(int(first[i])) for i in idx])


def feature_sides(pairs: Pairs, *, features: str) -> tuple[DistinctTexts, DistinctTexts]:
    """What the embedding backend encodes of ``pairs`` under ``--features``: the distinct
    prompts, and the distinct responses (``separate``) or (prompt, response) sides (``joint``,
    ``joint-response``: also the name of their side)."""
    prompts, responses = distinct_texts(pairs)
    if features == "separate":
        return prompts, responses
    return prompts, distinct_joint(pairs, features)  # type: ignore[arg-type]


def encode_pairs(encoder: TextEncoder, pairs: Pairs, *, dtype: str, folder: Path,
                 key: str, features: str = "separate") -> PairVectors:
    """:class:`PairVectors` of ``pairs``: every distinct text's vector, from the cache (encoded
    when missing), streamed into a new store under ``folder``.

    Prompts and responses are separate texts (their truncation sides differ). Store rows are
    the distinct prompts, then the distinct responses, each in first-seen order, so the store,
    and everything computed from it, depends on the pairs alone, not on the cache's shard layout.
    With ``features`` joint the response rows are (prompt, response) read as one sequence
    instead (``chosen`` and ``rejected`` point at them; the prompt rows stay the prompt's own).
    """
    n = len(pairs)
    prompts, responses = feature_sides(pairs, features=features)
    offset = len(prompts.keys)
    store = VectorStore(offset + len(responses.keys), encoder.dim, dtype, folder)
    tokens = np.zeros(len(responses.keys), np.int32)

    def responses_sink(pos: np.ndarray, v: np.ndarray, t: np.ndarray) -> None:
        write(offset + pos, v)
        tokens[pos] = t

    with store.writer() as write:
        encoder.fetch(prompts.keys, prompts.text_of, side="prompt",
                      sink=lambda pos, v, t: write(pos, v))
        encoder.fetch(responses.keys, responses.text_of, side=responses.side,
                      sink=responses_sink)
    rows = offset + responses.rows.astype(np.int64)
    r_rows = responses.rows
    return PairVectors(store, prompts.rows.astype(np.int64), rows[:n], rows[n:],
                       torch.from_numpy(tokens[r_rows[:n]]), torch.from_numpy(tokens[r_rows[n:]]),
                       key)


def projection_moments(vec: PairVectors, *, limit: int,
                       seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of the training texts of ``vec``, for
    the whitening PCA, streamed over the store.

    Every occurrence counts (a prompt shared by k pairs counts k times). With ``limit`` > 0 and
    more occurrences than that, a seeded uniform sample of ``limit`` of them is used instead
    (bounded cost at any N). Also returns ``{"texts": used, "of": total}``.
    """
    occ = vec.occurrences()
    total = len(occ)
    if limit and total > limit:
        pick = np.random.default_rng(seed).choice(total, size=limit, replace=False)
        occ = occ[np.sort(pick)]
    rows, counts = np.unique(occ, return_counts=True)
    weights = counts.astype(np.float64)
    used = float(weights.sum())
    total_sum = np.zeros(vec.store.dim)
    for x, w in _weighted_windows(vec.store, rows, weights):
        total_sum += w @ x
    mean = total_sum / used
    cov = np.zeros((vec.store.dim, vec.store.dim))
    for x, w in _weighted_windows(vec.store, rows, weights):
        centred = (x - mean) * np.sqrt(w)[:, None]
        cov += centred.T @ centred
    cov /= max(used - 1, 1)
    return torch.from_numpy(mean), torch.from_numpy(cov), {"texts": int(used), "of": total}


def _weighted_windows(store: VectorStore, rows: np.ndarray,
                      weights: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(vectors as float64, weights)`` of sorted distinct ``rows``, a window at a time."""
    for lo, block in store.blocks(rows):
        yield block.astype(np.float64), weights[lo:lo + len(block)]


def _projection_digest(projection: tuple[torch.Tensor, torch.Tensor] | None) -> str:
    if projection is None:
        return "identity"
    h = hashlib.blake2b(digest_size=12)
    for t in projection:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def project_store(store: VectorStore, projection: tuple[torch.Tensor, torch.Tensor] | None,
                  folder: Path) -> torch.Tensor:
    """``(x - mean) @ matrix`` of every row of ``store`` (``x`` itself without a projection),
    as a ``[rows, k]`` float32 tensor mapped from a new store, written once per projection.

    The store keeps only its latest projection: a stage fits one model at a time.
    """
    digest = _projection_digest(projection)
    if digest in store.projected:
        return store.projected[digest].tensor()
    k = store.dim if projection is None else int(projection[1].shape[1])
    out = VectorStore(store.rows, k, np.float32, folder)
    with out.writer() as write:
        for start, x in store.windows():
            t = torch.from_numpy(x)
            if projection is not None:
                t = (t - projection[0]) @ projection[1]
            write(np.arange(start, start + len(x)), t.numpy())
    store.projected.clear()
    store.projected[digest] = out
    return out.tensor()


@dataclasses.dataclass(frozen=True)
class PairRows:
    """Each pair's store rows and token counts as tensors on one device: what mini-batches are
    gathered by (``[N]`` each)."""

    prompt: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor

    @classmethod
    def of(cls, vec: PairVectors, device: torch.device) -> PairRows:
        return cls(*(torch.as_tensor(a).to(device) for a in (
            vec.prompt, vec.chosen, vec.rejected, vec.chosen_tokens, vec.rejected_tokens)))

    def __len__(self) -> int:
        return self.prompt.shape[0]


def batch_features(table: torch.Tensor, rows: PairRows, idx: torch.Tensor, *,
                   kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Head inputs of the pairs at ``idx`` (any shape, e.g. ``[M, B]``): chosen and rejected
    features, each ``[*idx.shape, F]``, gathered from ``table`` (the projected store,
    ``[rows, k]``)."""
    p = table[rows.prompt[idx]]
    return (pair_features(p, table[rows.chosen[idx]], rows.chosen_tokens[idx], kind=kind),
            pair_features(p, table[rows.rejected[idx]], rows.rejected_tokens[idx], kind=kind))
