"""Is the ensemble's uncertainty worth serving? σ̂ in and out of distribution, against errors.

An embedding-backend ensemble (M = 10) is trained on the HH-RLHF training split (90%,
prompt-grouped, ``split_train_valid(valid_frac=0.1, seed=S)``) and scores two held-out sets:
the HH validation split (in distribution) and PandaLM (instruction following, judged by
annotators: out of distribution). For each diversity variant and seed it reports:

* accuracy of the ensemble (û = mean Δ > 0 agrees with the label) in and out;
* mean σ̂ in and out, of Δ (``delta``) and of the rewards themselves (``reward``: each
  response's std over members, averaged over chosen and rejected), and the AUROC of σ̂ for
  telling PandaLM items from HH ones (0.5: σ̂ does not see the shift);
* the AUROC of σ̂ for the ensemble's own errors (û <= 0) in and out, next to the AUROC of
  -|û| (how far the mean alone is from 0: the baseline σ̂ must beat to add anything);
* the same within each |û| decile (so σ̂ is compared among pairs the mean finds equally close),
  and mean σ̂ per û decile (the paper finds it U-shaped);
* accuracy when the 20% most uncertain pairs are set aside, by σ̂ and by |û|.

Variants (``--variants``): ``none`` (seeds and data order only), ``bagging``, ``subspace``,
``anchored`` (``--diversity`` of the embedding backend; ``subspace@K`` sets the kept share K,
``anchored@W`` the anchor weight W), and ``dropout@P`` (head dropout P while training).

Reproduce (from the repository root; accuracy numbers, not timings)::

    .venv/bin/python benchmarks/bench_uncertainty.py --seeds 0,1 --json bench_uncertainty.json

``--backend finetune`` fine-tunes a LoRA ensemble of the bundled MiniLM instead (variants
``lora`` and ``nuclear@W``: ``--diversity nuclear`` with weight W), on a ``--train-pairs``
subset of the training split, and scores ``--in-pairs`` / ``--out-pairs`` subsets (seeded) so
that it fits a CPU; BENCHMARKS.md, "Is a LoRA ensemble's uncertainty worth serving?"::

    .venv/bin/python benchmarks/bench_uncertainty.py --backend finetune --members 3 \
        --variants lora,nuclear@0.01 --train-pairs 600 --in-pairs 200 --out-pairs 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from common import HH_FILES, SHARED, expand, write_results

from rewardlab.strength import auroc

PANDALM = str(SHARED / "pandalm" / "pandalm-test.jsonl")
VARIANTS = "none,bagging,subspace,subspace@0.25,anchored,anchored@0.01,dropout@0.2"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", nargs="+", default=[HH_FILES], help="HH-RLHF files (globs)")
    p.add_argument("--ood", nargs="+", default=[PANDALM], help="off-distribution pairs")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--variants", default=VARIANTS)
    p.add_argument("--seeds", default="0", help="comma-separated seeds (split and models)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--backend", choices=("embedding", "finetune"), default="embedding")
    p.add_argument("--train-pairs", type=int, default=0,
                   help="finetune: training pairs sampled (0: the whole training split)")
    p.add_argument("--in-pairs", type=int, default=0, help="finetune: HH validation pairs scored")
    p.add_argument("--out-pairs", type=int, default=0, help="finetune: PandaLM pairs scored")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    return p.parse_args(argv)


def variant_config(name: str, members: int, seed: int):
    """The ModelConfig of a variant, and the module constants it sets."""
    from rewardlab.config import EmbeddingConfig, ModelConfig

    kind, _, knob = name.partition("@")
    emb, constants, top = {}, {}, {}
    if kind in ("bagging", "subspace", "anchored"):
        top["diversity"] = kind
        if knob:
            constants["SUBSPACE_KEEP" if kind == "subspace" else "ANCHOR_WEIGHT"] = float(knob)
    elif kind == "dropout":
        emb["head_dropout"] = float(knob or 0.2)
    elif kind != "none":
        raise SystemExit(f"unknown variant {name!r}")
    return (ModelConfig(members=members, seed=seed, embedding=EmbeddingConfig(**emb), **top),
            constants)


def finetune_config(args: argparse.Namespace, name: str, seed: int):
    """The finetune ModelConfig of variant ``lora`` or ``nuclear@W``."""
    from rewardlab.config import ModelConfig

    kind, _, knob = name.partition("@")
    if kind not in ("lora", "nuclear"):
        raise SystemExit(f"unknown finetune variant {name!r}; use lora or nuclear@W")
    extra = {"diversity": "nuclear", "diversity_weight": float(knob or 0.01)} \
        if kind == "nuclear" else {}
    return ModelConfig.from_dict({"backend": "finetune", "members": args.members, "seed": seed,
                                  "lora_r": args.lora_r, "max_length": args.max_length,
                                  "epochs": args.epochs, "device": "cpu", **extra})


def member_rewards(model, vec) -> tuple[np.ndarray, np.ndarray]:
    """Every member's rewards ``[M, N]`` of the chosen and the rejected responses (``vec``:
    the embedding backend's vectors, or the Pairs themselves for the finetune backend)."""
    import torch

    from rewardlab.models.features import PairRows, batch_features

    if model.config.backend == "finetune":
        rc = model.rewards(vec.prompt, vec.chosen)
        rr = model.rewards(vec.prompt, vec.rejected)
        return rc.double().numpy(), rr.double().numpy()

    table, rows = model.table(vec), PairRows.of(vec, model.device)
    xc, xr = batch_features(table, rows, torch.arange(len(vec)),
                            kind=model.config.embedding.head_features)
    model.heads.eval()
    with torch.no_grad():
        rc, rr = model.heads.score_all(xc), model.heads.score_all(xr)
    model.heads.train()
    return rc.double().numpy(), rr.double().numpy()


def by_decile(key: np.ndarray, fn) -> list:
    """``fn(mask)`` for each decile of ``key`` (lowest first)."""
    edges = np.quantile(key, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, key, side="right") - 1, 0, 9)
    return [fn(bins == d) for d in range(10)]


def error_report(delta: np.ndarray, sigma: np.ndarray) -> dict:
    """How well ``sigma`` ``[N]`` finds the ensemble's errors, from Δ ``[M, N]``."""
    mean = delta.mean(axis=0)
    error = mean <= 0
    keep = round(0.8 * len(mean))

    def kept_accuracy(order: np.ndarray) -> float:
        return float((~error[order[:keep]]).mean())

    return {
        "accuracy": float((~error).mean()),
        "auroc_sigma": auroc(sigma, error), "auroc_abs_mean": auroc(-np.abs(mean), error),
        "accuracy_drop20_sigma": kept_accuracy(np.argsort(sigma, kind="stable")),
        "accuracy_drop20_abs_mean": kept_accuracy(np.argsort(-np.abs(mean), kind="stable")),
        "deciles_abs_mean": by_decile(np.abs(mean), lambda m: {
            "n": int(m.sum()), "error_rate": float(error[m].mean()),
            "auroc_sigma": auroc(sigma[m], error[m])}),
        "sigma_by_mean_decile": by_decile(mean, lambda m: float(sigma[m].mean())),
    }


def evaluate(model, vec_in, vec_out) -> dict:
    """Every measure of one trained model on the in- and out-of-distribution sets."""
    out: dict = {}
    sigmas = {}
    for name, vec in (("in", vec_in), ("out", vec_out)):
        rc, rr = member_rewards(model, vec)
        delta = rc - rr
        s_delta = delta.std(axis=0)
        s_reward = 0.5 * (rc.std(axis=0) + rr.std(axis=0))
        sigmas[name] = (s_delta, s_reward)
        out[name] = {"n": int(delta.shape[1]), "mean_sigma_delta": float(s_delta.mean()),
                     "mean_sigma_reward": float(s_reward.mean()),
                     "delta": error_report(delta, s_delta),
                     "reward": error_report(delta, s_reward)}
    for k, which in enumerate(("delta", "reward")):
        scores = np.concatenate([sigmas["in"][k], sigmas["out"][k]])
        is_out = np.r_[np.zeros(len(sigmas["in"][k]), bool), np.ones(len(sigmas["out"][k]), bool)]
        out[f"auroc_ood_sigma_{which}"] = auroc(scores, is_out)
    return out


def load_sets(args: argparse.Namespace, seed: int):
    from rewardlab.data import read_preferences, split_train_valid
    from rewardlab.models import Pairs

    ds, _ = read_preferences(expand(args.data), on_bad="skip")
    train, valid = split_train_valid(ds, valid_frac=0.1, seed=seed)
    ood, _ = read_preferences(args.ood, on_bad="skip")
    sets = [Pairs.from_dataset(x) for x in (train, valid, ood)]
    sizes = (args.train_pairs, args.in_pairs, args.out_pairs)
    rng = np.random.default_rng(seed)
    return [p.subset(np.sort(rng.choice(len(p), n, replace=False))) if 0 < n < len(p) else p
            for p, n in zip(sets, sizes, strict=True)]


def fit_variant(args: argparse.Namespace, name: str, seed: int, sets, vectors):
    """Train variant ``name``; return the model and what it is scored on (in, out)."""
    import rewardlab.models.embedding as embedding
    from rewardlab.models.embedding import EmbeddingRewardModel
    from rewardlab.models.finetune import FinetuneRewardModel

    if args.backend == "finetune":
        model = FinetuneRewardModel(finetune_config(args, name, seed), progress=True)
        model.fit(sets[0])
        return model, sets[1], sets[2]
    cfg, constants = variant_config(name, args.members, seed)
    saved = {k: getattr(embedding, k) for k in constants}
    for k, v in constants.items():
        setattr(embedding, k, v)
    try:
        model = EmbeddingRewardModel(cfg, progress=False)
        model.fit(vectors[0])
    finally:
        for k, v in saved.items():
            setattr(embedding, k, v)
    return model, vectors[1], vectors[2]


def run_variant(args: argparse.Namespace, name: str, seed: int, sets, vectors) -> dict:
    model, scored_in, scored_out = fit_variant(args, name, seed, sets, vectors)
    result = evaluate(model, scored_in, scored_out)
    result.update(variant=name, seed=seed)
    i, o = result["in"], result["out"]
    print(f"{name:16s} seed {seed}: acc in {i['delta']['accuracy']:.3f} out "
          f"{o['delta']['accuracy']:.3f}; σ̂(Δ) in {i['mean_sigma_delta']:.3f} out "
          f"{o['mean_sigma_delta']:.3f}; AUROC err in {i['delta']['auroc_sigma']:.3f} out "
          f"{o['delta']['auroc_sigma']:.3f}; OOD {result['auroc_ood_sigma_reward']:.3f}",
          file=sys.stderr)
    return result


def mean_of(runs: list[dict], *path: str) -> float:
    values = []
    for r in runs:
        v = r
        for p in path:
            v = v[p]
        values.append(v)
    return statistics.fmean(values)


def markdown(results: dict) -> str:
    lines = [f"M={results['members']}, seeds {results['seeds']}; in = HH validation split "
             f"({results['n_in']} pairs), out = PandaLM ({results['n_out']} pairs); means over "
             "seeds",
             "", "| variant | acc in | acc out | σ̂(Δ) in | σ̂(Δ) out | σ̂(r) in | σ̂(r) out | "
             "AUROC OOD σ̂(r) | AUROC err σ̂(Δ) in | out | AUROC err −\\|û\\| in | out |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in results["variants"]:
        runs = [r for r in results["runs"] if r["variant"] == name]
        cells = [mean_of(runs, "in", "delta", "accuracy"), mean_of(runs, "out", "delta",
                 "accuracy"), mean_of(runs, "in", "mean_sigma_delta"),
                 mean_of(runs, "out", "mean_sigma_delta"), mean_of(runs, "in", "mean_sigma_reward"),
                 mean_of(runs, "out", "mean_sigma_reward"), mean_of(runs, "auroc_ood_sigma_reward"),
                 mean_of(runs, "in", "delta", "auroc_sigma"),
                 mean_of(runs, "out", "delta", "auroc_sigma"),
                 mean_of(runs, "in", "delta", "auroc_abs_mean"),
                 mean_of(runs, "out", "delta", "auroc_abs_mean")]
        lines.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from rewardlab.config import ModelConfig
    from rewardlab.models.embedding import EmbeddingRewardModel

    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    runs, sizes = [], (0, 0)
    for seed in seeds:
        sets = load_sets(args, seed)
        vectors = sets
        if args.backend == "embedding":
            encoder = EmbeddingRewardModel(ModelConfig(), progress=True)
            vectors = [encoder.vectors(p) for p in sets]  # encoded once (feature cache)
        sizes = (len(sets[1]), len(sets[2]))
        runs += [run_variant(args, name, seed, sets, vectors) for name in variants]
    results = {"members": args.members, "seeds": seeds, "variants": variants,
               "n_in": sizes[0], "n_out": sizes[1], "runs": runs}
    print(markdown(results))
    return write_results(args.json, results)


if __name__ == "__main__":
    main()
