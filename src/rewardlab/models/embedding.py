"""The embedding backend: a frozen backbone's pooled vectors feed M jointly-trained MLP heads.

Fast on a CPU because the backbone runs once per distinct text (and never again, thanks to the
feature cache), and all M heads train in one vectorized loop.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import weakref
from pathlib import Path

import torch

from rewardlab.config import ModelConfig
from rewardlab.evaluation import accuracy
from rewardlab.files import atomic_path, atomic_write_text
from rewardlab.losses import preference_loss
from rewardlab.models.base import (
    MODEL_INFO_FILE,
    FitResult,
    Pairs,
    member_seed,
    per_pair_inputs,
    resolve_device,
)
from rewardlab.models.encode import TextEncoder, default_cache_dir, get_encoder
from rewardlab.models.heads import EnsembleHeads, fit_projection, pair_features

__all__ = ["EmbeddingRewardModel", "PairFeatures", "PairVectors"]


@dataclasses.dataclass(frozen=True)
class PairVectors:
    """Frozen encodings of N pairs: ``prompt``, ``chosen``, ``rejected`` ``[N, D]``, and the
    responses' token counts ``chosen_tokens``, ``rejected_tokens`` ``[N]``."""

    prompt: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor


@dataclasses.dataclass(frozen=True)
class PairFeatures:
    """Head inputs of N pairs: ``chosen`` and ``rejected``, each ``[N, F]``."""

    chosen: torch.Tensor
    rejected: torch.Tensor

    def __len__(self) -> int:
        return self.chosen.shape[0]


# Encodings of recently seen Pairs objects, keyed by identity: experiments fit many models on the
# same Pairs (one per seed and method), and gathering vectors costs a cache lookup per text.
_VECTOR_MEMO: dict[tuple[int, str], tuple[weakref.ref, PairVectors]] = {}
_MEMO_SIZE = 16



class EmbeddingRewardModel:
    """Reward model ``r_m(x, y) = head_m(features(enc(x), enc(y)))`` for members m = 1..M.

    ``enc`` is the frozen backbone (cached pooled vectors); ``features`` optionally projects them
    with a whitening PCA fitted on the training texts (``--proj-dim``), then builds
    ``[p, r, p⊙r, log-length]``; ``head_m`` is member m's MLP.
    """

    trains_members_jointly = True
    """All M heads train in one vectorized computation (the strength stage plans jobs by this)."""

    def __init__(self, config: ModelConfig, *, progress: bool = True) -> None:
        if config.backend != "embedding":
            raise ValueError(
                f"EmbeddingRewardModel needs backend='embedding', got {config.backend!r}")
        self.config = config
        self.progress = progress
        self.device = resolve_device(config.device)
        self.heads: EnsembleHeads | None = None
        self.projection: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def members(self) -> int:
        return self.config.members

    @property
    def encoder(self) -> TextEncoder:
        c = self.config
        return get_encoder(c.model, max_length=c.max_length, pooling=c.pooling,
                           batch_size=c.encode_batch_size,
                           cache_dir=c.cache_dir or default_cache_dir(),
                           device=str(self.device), progress=self.progress)

    # -- features -----------------------------------------------------------------------------
    def vectors(self, pairs: Pairs) -> PairVectors:
        """Frozen encodings of ``pairs`` (from the disk cache when present), memoised."""
        c = self.config
        key = (id(pairs), f"{c.model}|{c.max_length}|{c.pooling}|{c.cache_dir}")
        hit = _VECTOR_MEMO.get(key)
        if hit is not None and hit[0]() is pairs:
            return hit[1]
        enc = self.encoder
        p = enc.encode(pairs.prompt, side="prompt").vectors
        both = enc.encode(list(pairs.chosen) + list(pairs.rejected), side="response")
        n = len(pairs)
        vec = PairVectors(p, both.vectors[:n], both.vectors[n:], both.tokens[:n],
                          both.tokens[n:])
        if len(_VECTOR_MEMO) >= _MEMO_SIZE:
            _VECTOR_MEMO.pop(next(iter(_VECTOR_MEMO)))
        _VECTOR_MEMO[key] = (weakref.ref(pairs), vec)
        return vec

    def fit_projection(self, vec: PairVectors) -> None:
        """Fit the whitening PCA on training texts (no-op with ``proj_dim = 0``)."""
        if self.config.proj_dim > 0:
            self.projection = fit_projection(
                torch.cat([vec.prompt, vec.chosen, vec.rejected]), self.config.proj_dim)

    def features_of(self, vec: PairVectors) -> PairFeatures:
        """Head inputs from frozen encodings, through the fitted projection."""
        def project(x: torch.Tensor) -> torch.Tensor:
            if self.projection is None:
                return x
            mean, matrix = self.projection
            return (x - mean) @ matrix

        p = project(vec.prompt)
        kind = self.config.head_features
        return PairFeatures(
            chosen=pair_features(p, project(vec.chosen), vec.chosen_tokens, kind=kind),
            rejected=pair_features(p, project(vec.rejected), vec.rejected_tokens, kind=kind),
        )

    def features(self, pairs: Pairs) -> PairFeatures:
        """Encode (cached) and assemble the head inputs of ``pairs``."""
        return self.features_of(self.vectors(pairs))

    def _new_heads(self, in_dim: int) -> EnsembleHeads:
        seeds = [member_seed(self.config.seed, m) for m in range(self.members)]
        return EnsembleHeads(self.members, in_dim, self.config.hidden, seeds=seeds).to(self.device)

    # -- training -----------------------------------------------------------------------------
    def fit(self, pairs: Pairs, *, target: torch.Tensor | None = None,
            margin: torch.Tensor | None = None, valid: Pairs | None = None,
            eval_every: int = 0) -> FitResult:
        """Train all M heads jointly; see :meth:`rewardlab.models.base.RewardModel.fit`."""
        vec = self.vectors(pairs)
        self.fit_projection(vec)
        return self.fit_features(self.features_of(vec), target=target, margin=margin,
                                 valid=None if valid is None else self.features(valid),
                                 eval_every=eval_every)

    def fit_features(self, feats: PairFeatures, *, target: torch.Tensor | None = None,
                     margin: torch.Tensor | None = None, valid: PairFeatures | None = None,
                     eval_every: int = 0) -> FitResult:
        """:meth:`fit` on precomputed features (the experiment stages reuse them across runs)."""
        from tqdm.auto import tqdm

        c = self.config
        n, m_count = len(feats), self.members
        t, mg = per_pair_inputs(n, target, margin)
        t0 = time.perf_counter()
        dev = self.device
        xc, xr, t, mg = (a.to(dev) for a in (feats.chosen, feats.rejected, t, mg))
        self.heads = heads = self._new_heads(xc.shape[1])
        batch = min(c.resolved_batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        total = steps_per_epoch * c.resolved_epochs
        opt = torch.optim.AdamW(heads.parameters(), lr=c.resolved_lr, weight_decay=c.weight_decay)
        # Linear decay to 10% of the learning rate: late steps refine instead of wandering.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - 0.9 * s / max(total, 1))
        every = eval_every or max(1, total // 20)
        curve: list[dict[str, float]] = []
        seeds = [member_seed(c.seed, m) for m in range(m_count)]
        step, last_loss = 0, float("nan")
        bar = tqdm(total=total, desc=f"training {m_count} head(s)", unit="step",
                   disable=not self.progress)
        drop_gen = torch.Generator().manual_seed(c.seed + 7)
        for epoch in range(c.resolved_epochs):
            # Each member its own order, derived from (member seed, epoch): reproducible, and a
            # resumed or re-run fit sees exactly the same batches.
            perms = torch.stack([
                torch.randperm(n, generator=torch.Generator().manual_seed(s * 1009 + epoch))
                for s in seeds]).to(dev)
            for b in range(steps_per_epoch):
                idx = perms[:, b * batch:(b + 1) * batch]  # [M, B]
                rewards = heads(torch.cat([xc[idx], xr[idx]], dim=1),  # [M, 2B]
                                dropout=c.head_dropout, generator=drop_gen)
                delta = rewards[:, : idx.shape[1]] - rewards[:, idx.shape[1]:]
                per_pair = preference_loss(delta, target=t[idx], margin=mg[idx], reduction="none")
                # Sum of per-member means: each member's gradient is its own mean loss's.
                loss = per_pair.mean(dim=1).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                last_loss = loss.item() / m_count
                if valid is not None and (step % every == 0 or step == total):
                    curve.append({"step": step, "epoch": epoch + (b + 1) / steps_per_epoch,
                                  **self._valid_point(valid)})
                bar.update(1)
            bar.set_postfix(loss=f"{last_loss:.4f}")
        bar.close()
        return FitResult(train_loss=self._mean_loss(feats, t, mg), steps=step, curve=curve,
                         seconds=time.perf_counter() - t0)

    @torch.no_grad()
    def _valid_point(self, valid: PairFeatures) -> dict[str, float]:
        delta = self.score_features(valid).mean(dim=0)
        return {"valid_accuracy": accuracy(delta), "valid_loss": float(preference_loss(delta))}

    @torch.no_grad()
    def _mean_loss(self, feats: PairFeatures, t: torch.Tensor, mg: torch.Tensor) -> float:
        delta = self.score_features(feats).to(t.device)
        return float(preference_loss(delta, target=t.expand_as(delta).contiguous(),
                                     margin=mg.expand_as(delta).contiguous()))

    # -- scoring ------------------------------------------------------------------------------
    @torch.no_grad()
    def score_features(self, feats: PairFeatures) -> torch.Tensor:
        """Δ ``[M, N]`` from precomputed features."""
        if self.heads is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        self.heads.eval()
        dev = self.device
        out = (self.heads.score_all(feats.chosen.to(dev))
               - self.heads.score_all(feats.rejected.to(dev)))
        self.heads.train()
        return out.float().cpu()

    def score(self, pairs: Pairs) -> torch.Tensor:
        """Δ ``[M, N]``: ``r_m(chosen) - r_m(rejected)``; positive means member m prefers chosen."""
        return self.score_features(self.features(pairs))

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
        info = {"backend": "embedding", "config": dataclasses.asdict(self.config),
                "in_dim": self.heads.in_dim, "encoder": self.encoder.fingerprint}
        atomic_write_text(path / MODEL_INFO_FILE, json.dumps(info, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, progress: bool = True) -> EmbeddingRewardModel:
        from safetensors.torch import load_file

        path = Path(path)
        info = json.loads((path / MODEL_INFO_FILE).read_text(encoding="utf-8"))
        model = cls(ModelConfig(**info["config"]), progress=progress)
        model.heads = model._new_heads(int(info["in_dim"]))
        state = load_file(str(path / "heads.safetensors"))
        if "projection.mean" in state:
            model.projection = (state.pop("projection.mean"), state.pop("projection.matrix"))
        model.heads.load_state_dict(state)
        return model


