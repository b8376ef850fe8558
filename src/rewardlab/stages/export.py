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

from rewardlab.denoise import DenoisePlan, denoise
from rewardlab.files import write_jsonl, write_table
from rewardlab.stages.tables import STRENGTH_COLUMNS, read_table

__all__ = ["export_pairs", "export_table"]


def export_table(strength: pa.Table, plan: DenoisePlan) -> tuple[pa.Table, dict[str, int]]:
    """The exported rows and counts, from a strength table (one row per training pair)."""
    u = strength.column("strength_mean").to_numpy().astype(np.float64)
    result = denoise(u, plan)
    rows = strength.to_pylist()
    out_rows = []
    identical = 0
    for i, row in enumerate(rows):
        if not result.keep[i]:
            continue
        if row["chosen"] == row["rejected"]:
            identical += 1
            continue
        flipped = bool(result.flipped[i])
        kept = {k: v for k, v in row.items() if k not in STRENGTH_COLUMNS}
        if flipped:
            kept["chosen"], kept["rejected"] = row["rejected"], row["chosen"]
        # In the written orientation a flipped pair's target and margin change sign.
        kept["margin"] = float(-result.margin[i] if flipped else result.margin[i])
        kept["target"] = float(1 - result.target[i] if flipped else result.target[i])
        kept["flipped"] = flipped
        kept["strength_mean"] = float(u[i])
        out_rows.append(kept)
    counts = {**result.counts(), "identical_left_out": identical, "written": len(out_rows)}
    return pa.Table.from_pylist(out_rows), counts


def export_pairs(run_dir: str | os.PathLike[str], plan: DenoisePlan,
                 out_file: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the denoised pairs of ``run_dir`` (or a strength file) to .jsonl or .parquet."""
    out_file = Path(out_file)
    table, counts = export_table(read_table(run_dir), plan)
    suffix = out_file.suffix
    if suffix == ".parquet":
        write_table(out_file, table)
    elif suffix == ".jsonl":
        write_jsonl(out_file, table.to_pylist())
    else:
        raise ValueError(f"{out_file}: write .jsonl or .parquet (got {suffix or 'no suffix'!r})")
    return {"file": str(out_file), **counts}


