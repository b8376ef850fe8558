"""Stage: write the denoised training pairs for other trainers (TRL's ``RewardTrainer``).

Flipped pairs are written with chosen and rejected swapped, so every row reads "chosen is
preferred"; dropped pairs and pairs with chosen == rejected are left out (and counted). The
``margin`` column is the adaptive margin *in the written orientation*: λ·û for kept labels and
-λ·û for flipped ones, which is what TRL subtracts inside ``-log σ(r_c - r_r - margin)``.
Smoothing has no TRL column: ``target`` records P(chosen ≻ rejected) for trainers that use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rewardlab.config import CommonConfig, DenoiseConfig, OutputConfig, RunDirConfig
from rewardlab.denoise import DenoisePlan, training_set
from rewardlab.files import write_jsonl, write_table
from rewardlab.layout import STRENGTH_COLUMNS
from rewardlab.stages.command import CommandResult
from rewardlab.stages.tables import read_strength_table
from rewardlab.stages.train import plan_from_config

__all__ = ["export_command", "export_pairs", "export_table"]


def export_table(strength: pa.Table, plan: DenoisePlan) -> tuple[pa.Table, dict[str, int]]:
    """The exported rows and counts, from a strength table (one row per training pair)."""
    u = strength.column("strength_mean").to_numpy().astype(np.float64)
    rows = strength.to_pylist()
    identical = np.array([r["chosen"] == r["rejected"] for r in rows], dtype=bool)
    chosen = training_set(u, plan, identical=identical, orientation="written")
    out_rows = []
    for k, i in enumerate(chosen.index):
        row = rows[i]
        kept = {key: v for key, v in row.items() if key not in STRENGTH_COLUMNS}
        if chosen.flipped[k]:
            kept["chosen"], kept["rejected"] = row["rejected"], row["chosen"]
        kept["margin"] = float(chosen.margin[k])
        kept["target"] = float(chosen.target[k])
        kept["flipped"] = bool(chosen.flipped[k])
        kept["strength_mean"] = float(u[i])
        out_rows.append(kept)
    counts = {**chosen.counts, "written": len(out_rows)}
    return pa.Table.from_pylist(out_rows), counts


def export_pairs(run_dir: str | os.PathLike[str], plan: DenoisePlan,
                 out_file: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the denoised pairs of ``run_dir`` (or a strength file) to .jsonl or .parquet."""
    out_file = Path(out_file)
    suffix = out_file.suffix
    if suffix not in (".parquet", ".jsonl"):
        raise ValueError(f"{out_file}: write .jsonl or .parquet (got {suffix or 'no suffix'!r})")
    table, counts = export_table(read_strength_table(run_dir), plan)
    if suffix == ".parquet":
        write_table(out_file, table)
    else:
        write_jsonl(out_file, table.to_pylist())
    return {"file": str(out_file), **counts}


def export_command(*, run_dir: RunDirConfig, denoise: DenoiseConfig, output: OutputConfig,
                   common: CommonConfig) -> CommandResult:
    """``rewardlab export``: the denoised training pairs as one .jsonl or .parquet file."""
    res = export_pairs(run_dir.run_dir, plan_from_config(denoise), output.out)
    line = (f"{res['written']} pairs written ({res['flipped']} flipped, {res['dropped']} "
            f"dropped, {res['identical_left_out']} identical left out)")
    return CommandResult([line], {"pairs": Path(res["file"])}, res)
