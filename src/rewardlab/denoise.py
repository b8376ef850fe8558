"""Denoising methods as pure functions of preference strength.

Every method maps per-pair mean strength û (``[N]``, positive means the ensemble agrees with the
label ``chosen``) to three per-pair arrays that the loss and the trainer consume:

* ``target`` ``[N]``: P(chosen ≻ rejected) for :func:`rewardlab.losses.preference_loss`
  (1 = the label as given, 0 = flipped, 1 - α = smoothed).
* ``margin`` ``[N]``: subtracted from Δ inside the loss. For the adaptive margin it is λ·û in the
  original orientation; for a flipped pair (t = 0) the loss becomes -log σ(-(Δ - λû)), which is
  the margin re-signed to agree with the new label (λ·(-û) > 0 in the flipped frame).
* ``keep`` ``[N]`` bool: pairs that stay in training (``drop`` removes the lowest-û share).

Presets follow the paper (Wang et al., 2024, §3): flip the lowest 20%, label smoothing, adaptive
margin, and the combinations. ``soft+margin`` smooths only pairs with û < 0; its ``:flipped``
variant flips those pairs first, then smooths them (the paper leaves that choice open).

Beyond the paper: ``@auto`` sizes a flip or drop cut by the estimated share of wrong labels, and
``flip@posterior`` / ``soft@posterior`` act on each pair's P(label wrong | û) from the same fitted
noise floor, which answers the smooth-before-or-after-flipping question with one quantity. All of
them act only when the floor has evidence *and* the self-test did not find the ensemble blind.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

import numpy as np

from rewardlab.strength import NoiseFloor, fit_noise_floor, lowest_count

__all__ = [
    "PRESETS",
    "PRIMARY_KNOB",
    "DenoisePlan",
    "DenoiseResult",
    "TrainingSet",
    "bind_floor",
    "denoise",
    "resolve_plan",
    "training_set",
]


SmoothWhere = Literal["all", "negative"]
Posterior = Literal["", "flip", "soft"]


@dataclass(frozen=True)
class DenoisePlan:
    """What to do to which pairs. All fractions are shares of N, chosen by lowest û."""

    flip: float = 0.0
    """Flip the labels of the lowest-û share of pairs."""
    flip_negative: bool = False
    """Flip every pair with û < 0 (instead of a fixed share)."""
    drop: float = 0.0
    """Drop the lowest-û share of pairs."""
    smooth: float = 0.0
    """Label smoothing α: target 1 - α (α for flipped pairs)."""
    smooth_where: SmoothWhere = "all"
    """'all' pairs, or only 'negative' ones (û < 0)."""
    margin: bool = False
    """Use the adaptive margin λ·û."""
    margin_scale: float = 1.0
    """λ of the adaptive margin."""
    auto_cut: bool = False
    """Flip or drop a share of pairs estimated from û (:func:`rewardlab.strength.
    estimate_noise_rate`) instead of the fixed ``flip``/``drop`` share (``flip@auto``)."""
    posterior: Posterior = ""
    """Act on each pair's P(label wrong | û) from the fitted noise floor
    (:meth:`rewardlab.strength.NoiseFloor.posterior`): ``"flip"`` flips pairs with P > 0.5
    (``flip@posterior``), ``"soft"`` trains towards the posterior itself, target 1 - P
    (``soft@posterior``), which smooths and flips in one quantity."""
    floor: NoiseFloor | None = None
    """The noise floor the auto and posterior methods act on, with the self-test's verdict
    (bound by the stage from the strength summary); ``None`` fits it from û alone."""

    def __post_init__(self) -> None:
        for name in ("flip", "drop"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if not 0 <= self.smooth < 0.5:
            raise ValueError(f"smooth must be in [0, 0.5), got {self.smooth}")
        if self.smooth_where not in get_args(SmoothWhere):
            raise ValueError(f"smooth_where must be one of {get_args(SmoothWhere)}, got "
                             f"{self.smooth_where!r}")
        if self.auto_cut and not (self.flip or self.drop):
            raise ValueError("auto_cut sizes a flip or drop cut: set flip or drop too")
        if self.posterior not in get_args(Posterior):
            raise ValueError(f"posterior must be one of {get_args(Posterior)}, got "
                             f"{self.posterior!r}")

    @property
    def reads_floor(self) -> bool:
        """Whether the plan acts on the fitted noise floor (``@auto`` and ``@posterior``)."""
        return self.auto_cut or bool(self.posterior)

    @property
    def reads_strength(self) -> bool:
        """Whether the plan reads û at all (the baseline and plain smoothing do not)."""
        return bool(self.flip or self.flip_negative or self.drop or self.margin
                    or self.posterior or (self.smooth and self.smooth_where == "negative"))


PRESETS: dict[str, DenoisePlan] = {
    "baseline": DenoisePlan(),
    "flip": DenoisePlan(flip=0.2),
    "drop": DenoisePlan(drop=0.2),
    "smooth": DenoisePlan(smooth=0.1),
    "margin": DenoisePlan(margin=True),
    "flip+margin": DenoisePlan(flip=0.2, margin=True),
    "soft+margin": DenoisePlan(smooth=0.1, smooth_where="negative", margin=True),
    "soft+margin:flipped": DenoisePlan(flip_negative=True, smooth=0.1, smooth_where="negative",
                                       margin=True),
    "soft": DenoisePlan(posterior="soft"),
}
"""The named methods of ``--method``; explicit options override a preset's fields."""


@dataclass(frozen=True)
class DenoiseResult:
    """Per-pair training inputs, all ``[N]``; see the module docstring for their meaning."""

    target: np.ndarray
    margin: np.ndarray
    keep: np.ndarray
    flipped: np.ndarray
    estimated_share: float | None = None
    """With ``auto_cut``: the share of wrong labels estimated from û (what was flipped or
    dropped)."""
    smoothed: np.ndarray | None = None
    """``[N]`` bool: the pairs label smoothing pulled towards 1/2 (a kept tie's 0.5 is the
    label, not smoothing), or whose target the posterior moved; ``None`` reads as none."""
    noise: str | None = None
    """For plans that read the noise floor: its status (``"estimated"``, ``"clean"`` or
    ``"no evidence"``; see :attr:`rewardlab.strength.NoiseFloor.status`)."""

    def counts(self) -> dict[str, Any]:
        """How many pairs each step touched (for logs and summaries)."""
        extra: dict[str, Any] = {} if self.estimated_share is None else {
            "estimated_noise_rate": self.estimated_share}
        if self.noise is not None:
            extra["noise"] = self.noise
        return {**extra,
            "pairs": int(self.keep.shape[0]),
            "kept": int(self.keep.sum()),
            "dropped": int((~self.keep).sum()),
            "flipped": int(self.flipped.sum()),
            "smoothed": 0 if self.smoothed is None else int(self.smoothed.sum()),
            "with_margin": int((self.margin != 0).sum()),
        }


PRIMARY_KNOB: dict[str, str] = {
    "flip": "flip", "flip+margin": "flip", "drop": "drop", "smooth": "smooth",
    "soft+margin": "smooth", "soft+margin:flipped": "smooth", "margin": "margin_scale",
    "soft": "posterior",
}
"""What ``NAME@X`` sets for each preset: ``flip@0.1`` flips the lowest 10%, ``drop@0.3`` drops the
lowest 30%, ``smooth@0.2`` smooths with α = 0.2, ``margin@0.5`` halves the margin."""


def resolve_plan(method: str | None = None, **overrides: Any) -> DenoisePlan:
    """A preset by name, with ``None``-valued overrides ignored and the rest applied.

    ``NAME@X`` sets the preset's main knob to X (see :data:`PRIMARY_KNOB`). Raises ``ValueError``
    listing the valid names for an unknown method.
    """
    name, at, value = (method or "baseline").partition("@")
    if name not in PRESETS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(PRESETS)} "
                         f"(optionally NAME@X, e.g. flip@0.1)")
    valid = {f.name for f in fields(DenoisePlan)}
    unknown = set(overrides) - valid
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}; valid: {sorted(valid)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if at:
        changes.update(_knob(method, name, value, changes))
    return replace(PRESETS[name], **changes)


def bind_floor(plan: DenoisePlan, floor: NoiseFloor | None) -> DenoisePlan:
    """``plan`` acting on ``floor`` (the strength summary's noise floor with the self-test's
    verdict) when it reads one; other plans, and a ``None`` floor, are returned unchanged."""
    return replace(plan, floor=floor) if plan.reads_floor and floor is not None else plan


def _knob(method: str, name: str, value: str, changes: dict[str, Any]) -> dict[str, Any]:
    """What ``NAME@VALUE`` sets; an error when an explicit option sets the same knob."""
    knob = PRIMARY_KNOB.get(name)
    if knob is None:
        raise ValueError(f"{method!r}: the {name} preset has no knob to set with @")
    if knob in changes:
        raise ValueError(f"{method!r} sets {knob} already; drop the explicit --{knob} "
                         f"{changes[knob]} (or the @ part)")
    if value == "posterior":
        if name not in ("flip", "soft"):
            raise ValueError(f"{method!r}: @posterior works with flip and soft only")
        return {"flip": 0.0, "posterior": name}
    if name == "soft":
        raise ValueError(f"{method!r}: soft takes @posterior only (target 1 - P(wrong))")
    if value == "auto":
        if knob not in ("flip", "drop"):
            raise ValueError(f"{method!r}: @auto sizes a flip or drop cut, and {name} has none")
        return {"auto_cut": True}
    try:
        return {knob: float(value)}
    except ValueError:
        raise ValueError(f"{method!r}: expected a number or auto after @, got {value!r}") from None


def _lowest(mean: np.ndarray, frac: float, eligible: np.ndarray) -> np.ndarray:
    """Mask of the lowest-û ``frac`` of the eligible pairs (:func:`lowest_count` of them; ties
    broken by input order). Ineligible pairs are never chosen."""
    idx = np.flatnonzero(eligible)
    mask = np.zeros(mean.shape[0], dtype=bool)
    n_take = lowest_count(frac, idx.shape[0])
    if n_take:
        mask[idx[np.argsort(mean[idx], kind="stable")[:n_take]]] = True
    return mask


def denoise(strength_mean: np.ndarray, plan: DenoisePlan | str | None = None, *,
            eligible: np.ndarray | None = None,
            label_target: np.ndarray | None = None) -> DenoiseResult:
    """Per-pair target, margin and keep-mask for ``plan`` (a :class:`DenoisePlan` or preset name).

    Args:
        strength_mean: ``[N]`` mean strength û of each pair, as labelled in the data.
        plan: what to do; ``None`` is the baseline (target 1, margin 0, keep all).
        eligible: ``[N]`` bool, the pairs a cut may choose and its share counts (default: all).
            Pairs that carry no preference (chosen == rejected) are left out here, so "the
            lowest 20%" means the same pairs as strength groups 1-2.
        label_target: ``[N]`` P(chosen ≻ rejected) as labelled (default 1): a flip turns t into
            1 - t, smoothing pulls t towards 1/2 as ``t (1 - 2α) + α``, so a kept tie (0.5)
            stays a tie.
    """
    if plan is None or isinstance(plan, str):
        plan = resolve_plan(plan)
    u = np.asarray(strength_mean, dtype=np.float64)
    if u.ndim != 1:
        raise ValueError(f"strength_mean must be [N], got shape {u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("strength_mean holds NaN or infinite values")
    ok = np.ones(u.shape[0], dtype=bool) if eligible is None else np.asarray(eligible, bool)
    if ok.shape != u.shape:
        raise ValueError(f"eligible must be [N] = {u.shape}, got {ok.shape}")
    floor = plan.floor if plan.floor is not None or not plan.reads_floor else \
        fit_noise_floor(u[ok])
    share = floor.rate if plan.auto_cut and floor is not None else None
    wrong = floor.posterior(u) * ok if plan.posterior and floor is not None else np.zeros_like(u)
    flipped = _lowest(u, share if share is not None and plan.flip else plan.flip, ok)
    if plan.flip_negative:
        flipped |= (u < 0) & ok
    if plan.posterior == "flip":
        flipped |= wrong > 0.5
    keep = ~_lowest(u, share if share is not None and plan.drop else plan.drop, ok)

    base = np.ones_like(u) if label_target is None else np.asarray(label_target, np.float64)
    if base.shape != u.shape:
        raise ValueError(f"label_target must be [N] = {u.shape}, got {base.shape}")
    target = np.where(flipped, 1.0 - base, base)
    if plan.posterior == "soft":
        # P(chosen ≻ rejected) when the label t is wrong with probability P: t(1-P) + (1-t)P.
        target = base * (1.0 - wrong) + (1.0 - base) * wrong
    where = np.zeros_like(flipped)
    if plan.smooth > 0:
        where = np.ones_like(flipped) if plan.smooth_where == "all" else u < 0
        # Smoothing pulls the target towards 1/2 from whichever side the (possibly flipped)
        # label sits on: 1 -> 1 - α, 0 -> α.
        target = np.where(where, target * (1.0 - 2.0 * plan.smooth) + plan.smooth, target)
    margin = plan.margin_scale * u if plan.margin else np.zeros_like(u)
    if plan.posterior == "soft":
        where = target != base
    return DenoiseResult(target=target, margin=margin, keep=keep, flipped=flipped,
                         estimated_share=share, smoothed=where,
                         noise=None if floor is None else floor.status)


@dataclass(frozen=True)
class TrainingSet:
    """The pairs a denoised model trains on (or an export writes), with their per-pair inputs.

    ``index`` ``[K]`` gives their positions among the N input pairs; ``target``, ``margin`` and
    ``flipped`` are ``[K]``. ``counts`` says what denoising did (for logs and summaries).
    """

    index: np.ndarray
    target: np.ndarray
    margin: np.ndarray
    flipped: np.ndarray
    counts: dict[str, Any]


def training_set(strength_mean: np.ndarray, plan: DenoisePlan | str | None, *,
                 identical: np.ndarray, label_target: np.ndarray | None = None,
                 orientation: Literal["label", "written"] = "label") -> TrainingSet:
    """Kept pairs with their target and margin, after denoising by ``plan``.

    Args:
        strength_mean: ``[N]`` û of each pair as labelled.
        plan: the denoising (``None`` is the baseline).
        identical: ``[N]`` bool, chosen == rejected: such pairs carry no preference and are
            always left out.
        label_target: ``[N]`` P(chosen ≻ rejected) as labelled (default 1; see :func:`denoise`).
        orientation: ``"label"`` gives target and margin for the pair as labelled (a flipped
            pair has t = 0); ``"written"`` for the pair as an export writes it, with flipped
            pairs' chosen and rejected swapped: t -> 1 - t and m -> -m, so the loss is the same.
    """
    if orientation not in ("label", "written"):
        raise ValueError(f"orientation must be 'label' or 'written', got {orientation!r}")
    identical = np.asarray(identical, dtype=bool)
    # A kept tie (target 0.5) has no direction: no cut may spend a place on it.
    ties = np.zeros_like(identical) if label_target is None else \
        np.asarray(label_target, dtype=np.float64) == 0.5
    result = denoise(strength_mean, plan, eligible=~identical & ~ties, label_target=label_target)
    keep = result.keep & ~identical
    idx = np.flatnonzero(keep)
    target, margin, flipped = result.target[idx], result.margin[idx], result.flipped[idx]
    if orientation == "written":
        target = np.where(flipped, 1.0 - target, target)
        # + 0.0 turns -0.0 into 0.0: a margin of "-0" reads as a bug downstream.
        margin = np.where(flipped, -margin, margin) + 0.0
    counts = {**result.counts(), "identical_left_out": int(np.sum(identical)),
              "trained_on": int(keep.sum())}
    return TrainingSet(idx, target, margin, flipped, counts)
