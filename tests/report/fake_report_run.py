"""A small fake run directory, written by hand, for the report tests.

The pairs' texts carry markup that would run if the report ever put data into HTML unescaped;
the tests check it shows as literal text instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_PAIRS = 40
N_MEMBERS = 3
SOURCES = ("helpful-base", "harmless-base", "shp")
METHODS = ("baseline", "flip", "drop", "smooth", "margin", "flip+margin", "soft+margin",
           "soft+margin:flipped")

# Texts that would execute, or break out of their element, if they reached the page as HTML.
MALICIOUS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "</textarea>",
    "</script><script>window.__pwned=3</script>",
    "<!--",
)
LONG_TEXT = "A long answer that the browser should collapse. " * 12


def strength_table_for_tests() -> pa.Table:
    """N_PAIRS pairs; the malicious texts sit on the lowest-û pairs so the browser lists them."""
    rng = np.random.default_rng(7)
    members = rng.normal(0.8, 1.0, size=(N_MEMBERS, N_PAIRS))
    members[:, :len(MALICIOUS)] -= 4.0  # the lowest û: certainly on the "lowest" list
    mean = members.mean(axis=0)
    std = members.std(axis=0)
    order = np.argsort(mean, kind="stable")
    rank = np.empty(N_PAIRS, dtype=np.int64)
    rank[order] = np.arange(N_PAIRS)
    group = rank * 10 // N_PAIRS + 1
    category = np.where(rank < 8, "incorrect", np.where(rank < 16, "ambiguous", "normal"))

    prompts = [f"Question {i}?" for i in range(N_PAIRS)]
    chosen = [f"Chosen answer {i}." for i in range(N_PAIRS)]
    rejected = [f"Rejected answer {i}." for i in range(N_PAIRS)]
    for i, bad in enumerate(MALICIOUS):
        prompts[i] = f"Prompt {i} {bad}"
        chosen[i] = f"{bad} chosen"
        rejected[i] = f"rejected {bad}"
    rejected[0] += " " + LONG_TEXT  # long, so collapsed, and with markup inside

    votes_for = rng.integers(0, 4, size=N_PAIRS)
    votes_against = rng.integers(0, 4, size=N_PAIRS)
    extras = [{"votes_for_chosen": int(a), "votes_against": int(b), "ties": 0,
               "reference_label": "chosen" if m > 0 else "rejected"}
              for a, b, m in zip(votes_for, votes_against, mean, strict=True)]
    return pa.table({
        "id": [f"pair-{i:03d}" for i in range(N_PAIRS)],
        "prompt": prompts,
        "chosen": chosen,
        "rejected": rejected,
        "source": [SOURCES[i % len(SOURCES)] for i in range(N_PAIRS)],
        "suspicious": [["duplicate"] if i == 7 else [] for i in range(N_PAIRS)],
        "extras": extras,
        "strength_mean": mean,
        "strength_std": std,
        "strength_members": [list(members[:, i]) for i in range(N_PAIRS)],
        "strength_rank": rank,
        "strength_group": group.astype(np.int64),
        "category": list(category),
        "injected_flip": [i % 9 == 0 for i in range(N_PAIRS)],
    })


def _summary(table: pa.Table) -> dict[str, Any]:
    mean = table.column("strength_mean").to_numpy()
    std = table.column("strength_std").to_numpy()
    groups = table.column("strength_group").to_numpy()
    qs = ("0.05", "0.25", "0.5", "0.75", "0.95")
    return {
        "n": N_PAIRS, "members": N_MEMBERS, "scheme": "bootstrap", "backend": "embedding",
        "model": "all-MiniLM-L6-v2", "seed": 0,
        "fraction_negative": float((mean < 0).mean()),
        "quantiles": {
            "strength_mean": {q: float(np.quantile(mean, float(q))) for q in qs},
            "strength_std": {q: float(np.quantile(std, float(q))) for q in qs},
        },
        "groups": [{"group": g, "n": int((groups == g).sum()),
                    "mean_strength": float(mean[groups == g].mean()),
                    "std_strength_mean": float(std[groups == g].mean())} for g in range(1, 11)],
        "spearman_mean_std": 0.1,
        "category_counts": {"incorrect": 8, "ambiguous": 8, "normal": 24},
        "incorrect_with_positive_strength": 3, "estimated_noise_rate": 0.1234,
    }


def _groups() -> list[dict[str, Any]]:
    out = []
    for g in range(1, 11):
        accs = [0.35 + 0.035 * g + 0.01 * s for s in range(3)]
        out.append({"group": g, "n_train": 4, "mean_strength": -2.0 + 0.4 * g,
                    "valid_accuracy_mean": float(np.mean(accs)),
                    "valid_accuracy_std": float(np.std(accs)), "train_loss": 0.6,
                    "valid_accuracy": accs})
    return out


def _compare() -> list[dict[str, Any]]:
    out = []
    for k, method in enumerate(METHODS):
        final = 0.66 + 0.006 * k
        curve = [{"step": step, "valid_accuracy_mean": 0.5 + (final - 0.5) * step / 100,
                  "valid_accuracy_std": 0.01} for step in (0, 25, 50, 75, 100)]
        out.append({"method": method, "valid_accuracy_mean": final, "valid_accuracy_std": 0.008,
                    "valid_loss": 0.62 - 0.002 * k, "ece": 0.03, "n_train": 32, "seeds": 3,
                    "curve": curve})
    return out


def _run_info() -> dict[str, Any]:
    return {
        "data": {"pairs": N_PAIRS, "by_file": {"data/<b>train</b>.jsonl.gz": N_PAIRS},
                 "by_source": {s: 13 + (i == 0) for i, s in enumerate(SOURCES)},
                 "skipped": {"empty text": 2}, "suspicious": {"duplicate": 1}},
        "settings": {"backend": "embedding", "model": "all-MiniLM-L6-v2", "members": N_MEMBERS,
                     "scheme": "bootstrap", "seed": 0, "epochs": 2},
        "split": {"train": 32, "valid": 8},
        "best_method": {"method": METHODS[-1], "valid_accuracy_mean": 0.702,
                        "gain_over_baseline": 0.042, "gain_split": "test",
                        "gain_ci95": [-0.01, 0.09], "gain_pairs": 8,
                        "distinguishable": False},
    }


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


PARTS = ("run", "strength", "summary", "groups", "compare")


def write_run(run_dir: Path, parts: tuple[str, ...] = PARTS, layout: str = "run",
              table: pa.Table | None = None) -> Path:
    """Write the chosen result files into ``run_dir`` (created) and return it.

    ``layout="plain"`` writes strength.parquet and summary.json at the top level, like
    ``rewardlab strength -o OUT``.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    strength_dir = run_dir / "strength" if layout == "run" else run_dir
    table = strength_table_for_tests() if table is None else table
    if "strength" in parts:
        strength_dir.mkdir(exist_ok=True)
        pq.write_table(table, strength_dir / "strength.parquet")
    if "summary" in parts:
        _write_json(strength_dir / "summary.json", _summary(table))
    if "groups" in parts:
        _write_json(run_dir / "groups" / "groups.json", _groups())
    if "compare" in parts:
        _write_json(run_dir / "compare" / "compare.json", _compare())
    if "run" in parts:
        _write_json(run_dir / "run.json", _run_info())
    return run_dir


PAIR_LIMIT = 5
"""Pairs per browser list in :func:`full_report`: small, so lists overlap and dedup matters."""


def expected_pair_ids(table: pa.Table, limit: int) -> dict[str, set[str]]:
    """The ids each browser list should hold, computed independently of the report code."""
    ids = np.array(table.column("id").to_pylist())
    mean = table.column("strength_mean").to_numpy()
    std = table.column("strength_std").to_numpy()
    return {
        "lowest": set(ids[np.argsort(mean, kind="stable")[:limit]]),
        "ambiguous": set(ids[np.argsort(np.abs(mean), kind="stable")[:limit]]),
        "disagree": set(ids[np.argsort(-std, kind="stable")[:limit]]),
    }
