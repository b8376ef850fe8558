"""HH-RLHF validation accuracy of the embedding backend (issue: reward models).

All 8,552 pairs of ../shared/data/hh-rlhf, a 90/10 prompt-grouped split (seeds 0, 1, 2), default
settings; M = 1 and the mean Δ of M = 10; overall, harmless (harmless-base) and helpful (the three
helpful splits).

Reproduce:  .venv/bin/python benchmarks/bench_accuracy.py
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np
from common import HH_FILES

from rewardlab.config import ModelConfig
from rewardlab.data import read_preferences, split_train_valid
from rewardlab.evaluation import accuracy
from rewardlab.models import Pairs, build_reward_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split-seeds", default="0,1,2")
    p.add_argument("--members", default="1,10")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    ds, _ = read_preferences(sorted(glob.glob(HH_FILES)))
    rows: dict[str, list[float]] = {}
    for split_seed in map(int, args.split_seeds.split(",")):
        train, valid = split_train_valid(ds, valid_frac=0.1, seed=split_seed)
        harmless = np.array([s == "harmless-base" for s in valid["source"]])
        for m in map(int, args.members.split(",")):
            model = build_reward_model(ModelConfig(members=m, seed=split_seed), progress=False)
            model.fit(Pairs.from_dataset(train))
            d = model.score(Pairs.from_dataset(valid)).mean(dim=0).numpy()
            for part, sel in (("all", np.ones_like(harmless)), ("harmless", harmless),
                              ("helpful", ~harmless)):
                rows.setdefault(f"M={m} {part}", []).append(accuracy(d[sel]))
            print(f"split seed {split_seed}, M={m}: {accuracy(d):.4f} "
                  f"(harmless {accuracy(d[harmless]):.4f}, helpful {accuracy(d[~harmless]):.4f}; "
                  f"n = {len(d)})", flush=True)
    print("\n| model | all | harmless | helpful |\n|---|---|---|---|")
    for m in args.members.split(","):
        cells = [f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}"
                 for v in (rows[f"M={m} {part}"] for part in ("all", "harmless", "helpful"))]
        label = f"embedding, M = {m}" + (" (mean Δ)" if m != "1" else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
