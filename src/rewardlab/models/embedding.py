"""The embedding backend: a frozen backbone's pooled vectors feed M jointly-trained MLP heads.

Fast on a CPU because the backbone runs once per distinct text (and never again, thanks to the
feature cache), and all M heads train in one vectorized loop.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rewardlab.config import ModelConfig
from rewardlab.evaluation import accuracy
from rewardlab.files import atomic_path
from rewardlab.losses import preference_loss
from rewardlab.models.base import (
    FitResult,
    Pairs,
    member_seed,
    per_pair_inputs,
    read_model_info,
    require_backend,
    resolve_device,
    write_model_info,
)
from rewardlab.models.encode import TextEncoder, default_cache_dir, get_encoder
from rewardlab.models.features import (
    PairRows,
    PairVectors,
    batch_features,
    encode_pairs,
    project_store,
    projection_moments,
)
from rewardlab.models.heads import (
    EnsembleHeads,
    feature_subspaces,
    pair_features,
    projection_from_moments,
)

__all__ = ["EmbeddingRewardModel", "PairVectors"]

SUBSPACE_KEEP = 0.5
"""``--diversity subspace``: the share of the vector dimensions each member sees."""
ANCHOR_WEIGHT = 1e-3
"""``--diversity anchored``: weight of Σ (θ_m - θ_m⁰)², member m's squared distance from its own
random initial weights, added to its loss."""


class EmbeddingRewardModel:
    """Reward model ``r_m(x, y) = head_m(features(enc(x), enc(y)))`` for members m = 1..M.

    ``enc`` is the frozen backbone (cached pooled vectors); ``features`` optionally projects them
    with a whitening PCA fitted on the training texts (``--proj-dim``), then builds
    ``[p, r, p⊙r, log-length]``; ``head_m`` is member m's MLP. With ``--features joint``,
    ``r = enc(x + y)``: the response read after its prompt in one sequence.
    """

    trains_members_jointly = True
    """All M heads train in one vectorized computation (the strength stage plans jobs by this)."""

    def __init__(self, config: ModelConfig, *, progress: bool = True, label: str = "") -> None:
        require_backend(config, "embedding", type(self))
        self.config = config
        self.progress = progress
        self.label = label  # unused: all M heads train together, and the bar says so
        self.device = resolve_device(config.device)
        self.heads: EnsembleHeads | None = None
        self._anchor: list[torch.Tensor] | None = None
        self.projection: tuple[torch.Tensor, torch.Tensor] | None = None
        self.projection_fit: dict[str, object] | None = None
        """How many training texts the whitening PCA was fitted on, of how many."""

    @property
    def members(self) -> int:
        return self.config.members

    @property
    def encoder(self) -> TextEncoder:
        c, e = self.config, self.config.embedding
        return get_encoder(c.model, max_length=c.max_length, pooling=c.embedding_pooling,
                           batch_size=c.encode_batch_size,
                           cache_dir=None if e.cache_dir == "off" else self.cache_root,
                           device=str(self.device), progress=self.progress,
                           precision=e.encoder_precision)

    @property
    def cache_root(self) -> Path:
        e = self.config.embedding
        return Path(default_cache_dir() if e.cache_dir in (None, "", "off") else e.cache_dir)

    @property
    def scratch(self) -> Path:
        """Where a run's vector stores live (unnamed files, gone when the process ends); with
        the cache off (a server), the system's temporary folder."""
        if self.config.embedding.cache_dir == "off":
            return Path(tempfile.gettempdir()) / "rewardlab-scratch"
        return self.cache_root / "scratch"

    @property
    def encoder_key(self) -> str:
        """The settings that decide the frozen vectors (not the weights' hash: that costs a
        read of the weights, and the model name already pins them within one process)."""
        c, e = self.config, self.config.embedding
        joint = "" if e.features == "separate" else f"|{e.features}"  # separate: as it was
        return (f"{c.model}|{c.max_length}|{c.embedding_pooling}|{e.encoder_precision}|"
                f"{e.feature_dtype}{joint}")

    # -- features -----------------------------------------------------------------------------
    def prepare(self, pairs: Pairs) -> PairVectors:
        """Frozen encodings of ``pairs``, streamed from the disk cache (encoding what is missing)
        into an on-disk store; see :mod:`rewardlab.models.features`."""
        return encode_pairs(self.encoder, pairs, dtype=self.config.embedding.feature_dtype,
                            folder=self.scratch, key=self.encoder_key,
                            features=self.config.embedding.features)

    def vectors(self, data: Pairs | PairVectors) -> PairVectors:
        """``data`` as encodings: prepared vectors pass through (after a settings check)."""
        if not isinstance(data, PairVectors):
            return self.prepare(data)
        if data.encoder != self.encoder_key:
            raise ValueError(f"these vectors were encoded with {data.encoder}, but this model "
                             f"encodes with {self.encoder_key}")
        return data

    def fit_projection(self, vec: PairVectors) -> None:
        """Fit the whitening PCA on the training texts of ``vec``: all of them, or a seeded
        sample of ``--pca-sample`` (recorded in :attr:`projection_fit`); no-op with
        ``proj_dim = 0``."""
        e = self.config.embedding
        if e.proj_dim <= 0:
            return
        mean, cov, used = projection_moments(vec, limit=e.pca_sample, seed=self.config.seed)
        self.projection = projection_from_moments(mean, cov, e.proj_dim)
        self.projection_fit = {**used, "sampled": used["texts"] < used["of"]}

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` frozen vectors through the fitted whitening PCA (identity without one)."""
        if self.projection is None:
            return x
        mean, matrix = self.projection
        return (x - mean) @ matrix

    def table(self, vec: PairVectors) -> torch.Tensor:
        """The projected vectors of ``vec``'s store, ``[rows, k]``, mapped from disk (written
        once per store and projection), on this model's device."""
        mapped = project_store(vec.store, self.projection, self.scratch)
        return mapped if self.device.type == "cpu" else mapped.to(self.device)

    def _new_heads(self, in_dim: int) -> EnsembleHeads:
        e = self.config.embedding
        seeds = [member_seed(self.config.seed, m) for m in range(self.members)]
        mask = (feature_subspaces(in_dim, seeds, kind=e.head_features, keep=SUBSPACE_KEEP)
                if self.config.diversity == "subspace" else None)
        return EnsembleHeads(self.members, in_dim, e.hidden, seeds=seeds,
                             feature_mask=mask).to(self.device)

    # -- training -----------------------------------------------------------------------------
    def fit(self, pairs: Pairs | PairVectors, *, target: torch.Tensor | None = None,
            margin: torch.Tensor | None = None, valid: Pairs | PairVectors | None = None,
            eval_every: int = 0) -> FitResult:
        """Train all M heads jointly; see :meth:`rewardlab.models.base.RewardModel.fit`.

        Mini-batches are gathered from the projected vectors on disk, so memory holds one
        batch of head inputs, never all of them.
        """
        from tqdm.auto import tqdm

        vec = self.vectors(pairs)
        self.fit_projection(vec)
        valid_vec = None if valid is None else self.vectors(valid)
        c = self.config
        n, m_count = len(vec), self.members
        t, mg = per_pair_inputs(n, target, margin)
        t0 = time.perf_counter()
        dev = self.device
        t, mg = t.to(dev), mg.to(dev)
        table, rows = self.table(vec), PairRows.of(vec, dev)
        kind = c.embedding.head_features
        one = torch.zeros(1, dtype=torch.long, device=dev)
        self.heads = self._new_heads(batch_features(table, rows, one, kind=kind)[0].shape[-1])
        self._anchor = ([p.detach().clone() for p in self.heads.parameters()]
                        if c.diversity == "anchored" else None)
        batch = min(c.resolved_batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        total = steps_per_epoch * c.resolved_epochs
        opt = torch.optim.AdamW(self.heads.parameters(), lr=c.resolved_lr,
                                weight_decay=c.weight_decay)
        # Linear decay to 10% of the learning rate: late steps refine instead of wandering.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - 0.9 * s / max(total, 1))
        every = eval_every or max(1, total // 20)
        curve: list[dict[str, float]] = []
        step, epoch_losses = 0, []
        bar = tqdm(total=total, desc=f"training {m_count} head(s)", unit="step",
                   disable=not self.progress)
        drop_gen = torch.Generator().manual_seed(c.seed + 7)
        for epoch in range(c.resolved_epochs):
            epoch_losses = []
            for b, idx in enumerate(self._batches(n, batch, epoch)):
                xc, xr = batch_features(table, rows, idx, kind=kind)
                loss = self._step(xc, xr, t[idx], mg[idx], drop_gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                epoch_losses.append(loss.item() / m_count)  # mean over members
                if valid_vec is not None and (step % every == 0 or step == total):
                    curve.append({"step": step, "epoch": epoch + (b + 1) / steps_per_epoch,
                                  **self._valid_point(valid_vec)})
                bar.update(1)
            bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
        bar.close()
        return FitResult(train_loss=float(np.mean(epoch_losses)), steps=step, curve=curve,
                         seconds=time.perf_counter() - t0)

    def _batches(self, n: int, batch: int, epoch: int) -> list[torch.Tensor]:
        """The ``[M, B]`` pair indices of each step of one epoch.

        Each member its own order, derived from (member seed, epoch): reproducible, and a
        resumed or re-run fit sees exactly the same batches. With ``--diversity bagging`` a
        member sees its own bootstrap resample of the pairs (n drawn with replacement, once),
        in a new order every epoch.
        """
        rows = []
        for s in (member_seed(self.config.seed, m) for m in range(self.members)):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(s * 1009 + epoch))
            if self.config.diversity == "bagging":
                sample = torch.randint(n, (n,), generator=torch.Generator().manual_seed(s * 7 + 3))
                order = sample[order]
            rows.append(order)
        perms = torch.stack(rows).to(self.device)
        return [perms[:, b:b + batch] for b in range(0, n, batch)]

    def _step(self, xc: torch.Tensor, xr: torch.Tensor, t: torch.Tensor, mg: torch.Tensor,
              drop_gen: torch.Generator) -> torch.Tensor:
        """The loss of one joint step on features ``xc``, ``xr`` ``[M, B, F]`` (each member its
        own batch) with per-pair targets and margins ``[M, B]``.

        Returns the sum over members of each member's mean loss, so each member's gradient is
        that of its own mean loss.
        """
        assert self.heads is not None
        rewards = self.heads(torch.cat([xc, xr], dim=1),  # [M, 2B]
                             dropout=self.config.embedding.head_dropout, generator=drop_gen)
        delta = rewards[:, : xc.shape[1]] - rewards[:, xc.shape[1]:]
        per_pair = preference_loss(delta, target=t, margin=mg, reduction="none")
        loss = per_pair.mean(dim=1).sum()
        if self._anchor is not None:  # each member's own term: its gradient is its own
            loss = loss + ANCHOR_WEIGHT * sum(((p - p0) ** 2).sum() for p, p0 in
                                              zip(self.heads.parameters(), self._anchor))
        return loss

    @torch.no_grad()
    def _valid_point(self, valid: PairVectors) -> dict[str, float]:
        delta = self.score(valid).mean(dim=0)
        return {"valid_accuracy": accuracy(delta), "valid_loss": float(preference_loss(delta))}

    # -- scoring ------------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, pairs: Pairs | PairVectors, *, chunk: int = 1 << 14) -> torch.Tensor:
        """Δ ``[M, N]``: ``r_m(chosen) - r_m(rejected)``; positive means member m prefers chosen.

        Scored ``chunk`` pairs at a time: only one chunk's head inputs exist at once.
        """
        if self.heads is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        vec = self.vectors(pairs)
        table, rows = self.table(vec), PairRows.of(vec, self.device)
        kind = self.config.embedding.head_features
        out = torch.zeros(self.members, len(vec))
        self.heads.eval()
        for start in range(0, len(vec), chunk):
            idx = torch.arange(start, min(start + chunk, len(vec)), device=self.device)
            xc, xr = batch_features(table, rows, idx, kind=kind)
            out[:, start:start + len(idx)] = (self.heads.score_all(xc)
                                              - self.heads.score_all(xr)).float().cpu()
        self.heads.train()
        return out

    @torch.no_grad()
    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Rewards ``[M, N]`` of each (prompt, response), by every member."""
        if self.heads is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        enc = self.encoder
        p = self._project(enc.encode(list(prompts), side="prompt").vectors)
        features = self.config.embedding.features
        r = (enc.encode(list(responses), side="response") if features == "separate" else
             enc.encode(list(zip(prompts, responses, strict=True)), side=features))
        x = pair_features(p, self._project(r.vectors), r.tokens,
                          kind=self.config.embedding.head_features)
        self.heads.eval()
        out = self.heads.score_all(x.to(self.device))
        self.heads.train()
        return out.float().cpu()

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``heads.safetensors`` and ``rewardlab.json`` into folder ``path``."""
        from safetensors.torch import save_file

        if self.heads is None:
            raise RuntimeError("nothing to save: the model is not trained")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
        if self.projection is not None:
            state["projection.mean"] = self.projection[0].contiguous()
            state["projection.matrix"] = self.projection[1].contiguous()
        with atomic_path(path / "heads.safetensors") as tmp:
            save_file(state, str(tmp))
        write_model_info(path, "embedding", self.config, in_dim=self.heads.in_dim,
                         encoder=self.encoder.fingerprint, projection_fit=self.projection_fit)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, progress: bool = True) -> EmbeddingRewardModel:
        """Load a folder written by :meth:`save` (safetensors and JSON only: nothing unpickled)."""
        from safetensors.torch import load_file

        path = Path(path)
        info = read_model_info(path)
        model = cls(ModelConfig.from_dict(info["config"]), progress=progress)
        model.heads = model._new_heads(int(info["in_dim"]))
        state = load_file(str(path / "heads.safetensors"))
        if "projection.mean" in state:
            model.projection = (state.pop("projection.mean"), state.pop("projection.matrix"))
        model.heads.load_state_dict(state)
        return model
