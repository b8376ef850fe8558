"""Stage: write the denoised training pairs for other trainers (TRL's ``RewardTrainer``).

Flipped pairs are written with chosen and rejected swapped, so every row reads "chosen is
preferred", and columns that describe one side (``chosen_score``/``rejected_score``, PandaLM's
``votes_for_chosen``/``votes_against``) are swapped with them, so no column contradicts the new
label; ``flipped`` marks those rows. Dropped pairs and pairs with chosen == rejected are left out
(and counted). The ``margin`` column is the adaptive margin *in the written orientation*: λ·û for
kept labels and -λ·û for flipped ones, which is what TRL subtracts inside
``-log σ(r_c - r_r - margin)``. TRL reads no soft target: ``target`` is written only when the
method smooths, for trainers that read it, and the export says which TRL method is nearest.

Conversational input is written as conversational messages in TRL's format (``prompt``,
``chosen``, ``rejected`` as ``[{role, content}]`` lists), not as the flattened text rewardlab
trains on.

Validation and test pairs of a run are not in its strength table (nothing was measured on them);
``--include-held-out`` appends them unchanged (margin 0, ``split`` column).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rewardlab.config import (
    CommonConfig,
    ConfigError,
    DenoiseConfig,
    ExportConfig,
    OutputConfig,
    RunDirConfig,
)
from rewardlab.data.formats import MESSAGE_COLUMNS, PROMPT_TEXT_COLUMN
from rewardlab.denoise import PRESETS, DenoisePlan, bind_floor, training_set
from rewardlab.files import read_json, write_jsonl, write_table
from rewardlab.layout import STRENGTH_COLUMNS, RunLayout, find_strength_file, supported_method
from rewardlab.stages.command import CommandResult
from rewardlab.stages.denoising import strength_floor
from rewardlab.stages.tables import read_strength_table
from rewardlab.stages.train import plan_from_config

__all__ = ["export_command", "export_table", "side_column_pairs"]

_SIDES = (("chosen", "rejected"),)
_NAMED_PAIRS = (("votes_for_chosen", "votes_against"),)
"""Column pairs whose names do not say "chosen"/"rejected" on both sides (PandaLM's votes)."""


def side_column_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Pairs of columns that describe the chosen and the rejected side of a pair: a name with
    ``chosen`` whose twin with ``rejected`` exists (``chosen_score``/``rejected_score``), and
    known pairs such as ``votes_for_chosen``/``votes_against``."""
    found = [(a, b) for a, b in _NAMED_PAIRS if a in names and b in names]
    for name in names:
        for one, other in _SIDES:
            twin = name.replace(one, other)
            if one in name and name not in ("chosen",) and twin in names and twin != name:
                found.append((name, twin))
    return found


def export_table(strength: pa.Table, plan: DenoisePlan) -> tuple[pa.Table, dict[str, Any]]:
    """The exported rows and counts, from a strength table (one row per training pair)."""
    u = strength.column("strength_mean").to_numpy().astype(np.float64)
    rows = strength.to_pylist()
    identical = np.array([r["chosen"] == r["rejected"] for r in rows], dtype=bool)
    label = (np.asarray(strength.column("target").to_pylist(), dtype=np.float64)
             if "target" in strength.column_names else None)
    chosen = training_set(u, plan, identical=identical, label_target=label,
                          orientation="written")
    sides = side_column_pairs(strength.column_names)
    out_rows = []
    for k, i in enumerate(chosen.index):
        row = {key: v for key, v in rows[i].items() if key not in STRENGTH_COLUMNS}
        if chosen.flipped[k]:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
            for a, b in sides:
                row[a], row[b] = row[b], row[a]
        row["margin"] = float(chosen.margin[k])
        if plan.smooth > 0 or label is not None:  # only where a reader has a use for it
            row["target"] = float(chosen.target[k])
        row["flipped"] = bool(chosen.flipped[k])
        row["strength_mean"] = float(u[i])
        out_rows.append(row)
    counts = {**chosen.counts, "written": len(out_rows),
              "conversational": _as_messages(out_rows)}
    return pa.Table.from_pylist(out_rows), counts


def _as_messages(rows: list[dict[str, Any]]) -> bool:
    """Write conversational input in TRL's conversational format: ``prompt``, ``chosen`` and
    ``rejected`` as lists of ``{role, content}`` messages (the loader kept them beside the
    flattened text; an empty response stays an empty message), or, where the input's prompt was
    a string, that string with responses that repeat its turns. Only when every row has them:
    one file cannot mix text and message columns."""
    if not rows or any(r.get(MESSAGE_COLUMNS[0]) is None for r in rows):
        return False
    for row in rows:
        for name, messages in zip(("prompt", "chosen", "rejected"), MESSAGE_COLUMNS, strict=True):
            row[name] = row.pop(messages)
        text = row.pop(PROMPT_TEXT_COLUMN, None)
        if text is not None:
            # The input's shape: a string prompt, and responses that open with its turns.
            turns = row["prompt"]
            row["prompt"], row["chosen"], row["rejected"] = (
                text, turns + row["chosen"], turns + row["rejected"])
    return True


def _choose_plan(layout: RunLayout, denoise: DenoiseConfig) -> tuple[DenoisePlan, list[str]]:
    """``--method`` (and options), or the run's best method from run.json, said out loud."""
    explicit = any(getattr(denoise, f.name) is not None for f in dataclasses.fields(denoise)
                   if f.name not in ("strength_file", "allow_overlap"))
    floor = strength_floor(layout.root)
    if explicit:
        return bind_floor(plan_from_config(denoise), floor), []
    if not layout.run_json.is_file():
        raise ConfigError("--method: this folder has no run.json to take the best method from; "
                          "name one, e.g. --method flip")
    summary = read_json(layout.run_json)
    best = (summary.get("best_method") or {}).get("method", "baseline")
    method = supported_method(summary) if summary.get("best_method") else "baseline"
    plan = bind_floor(plan_from_config(dataclasses.replace(denoise, method=method)), floor)
    why = ("the run's best on validation" + ("" if best == "baseline" else
                                              ", with a test gain its interval supports")
           if method == best else f"the run's best on validation, {best}, is not "
           f"distinguishable from the baseline on test")
    return plan, [f"method: {method}: {why} (from run.json); --method NAME exports another"]


def _trl_note(plan: DenoisePlan, ties: int) -> list[str]:
    """Soft targets have no place in TRL's RewardTrainer: say so, and name what TRL can
    express."""
    notes = [] if not ties else [
        f"note: {ties} kept ties have target 0.5, which TRL's RewardTrainer cannot read (it "
        f"trains every row as chosen ≻ rejected); drop them (--ties drop) for TRL"]
    if plan.smooth <= 0:
        return notes
    nearest = dataclasses.replace(plan, smooth=0.0, smooth_where="all")
    name = next((k for k, v in PRESETS.items() if v == nearest), None)
    if name is None:
        default = DenoisePlan()
        name = "the options " + ", ".join(
            f"{f.name}={getattr(nearest, f.name)}" for f in dataclasses.fields(nearest)
            if getattr(nearest, f.name) != getattr(default, f.name))
    return [*notes, f"note: TRL's RewardTrainer reads no soft target, so label smoothing does "
            f"not travel to it; the `target` column is for trainers that read one. The nearest "
            f"method TRL expresses is {name}."]


def _held_out(layout: RunLayout, include: bool) -> tuple[pa.Table | None, int]:
    """The run's validation and test pairs (appended only with ``include``) and their count."""
    if not layout.held_out_parquet.is_file():
        return None, 0
    table = pq.read_table(layout.held_out_parquet)
    if not include:
        return None, table.num_rows
    n = table.num_rows
    return (table.append_column("margin", pa.array([0.0] * n))
            .append_column("flipped", pa.array([False] * n))), n


def _write(table: pa.Table, out_file: Path, overwrite: bool) -> None:
    if out_file.suffix not in (".parquet", ".jsonl"):
        raise ConfigError(f"-o/--out: write .jsonl or .parquet (got "
                          f"{out_file.suffix or 'no suffix'!r})")
    if out_file.is_dir() or (out_file.exists() and not overwrite):
        raise ConfigError(f"-o/--out: {out_file} already exists; pass --overwrite to replace it")
    if out_file.suffix == ".parquet":
        write_table(out_file, table)
    else:
        write_jsonl(out_file, table.to_pylist())


def export_command(*, run_dir: RunDirConfig, denoise: DenoiseConfig, export: ExportConfig,
                   output: OutputConfig, common: CommonConfig) -> CommandResult:
    """``rewardlab export``: the denoised training pairs as one .jsonl or .parquet file."""
    layout = RunLayout.of(run_dir.run_dir)
    if find_strength_file(layout.root) is None:
        raise FileNotFoundError(f"{layout.root}: no strength table (run `rewardlab run` or "
                                f"`rewardlab strength` first)")
    plan, lines = _choose_plan(layout, denoise)
    table, counts = export_table(read_strength_table(layout.root), plan)
    held, n_held = _held_out(layout, export.include_held_out)
    if held is not None:
        rows = held.to_pylist()
        if counts["conversational"] and not _as_messages(rows):
            raise ValueError("--include-held-out: the held-out pairs are not all "
                             "conversational, so they cannot join the message-list export")
        table = pa.concat_tables([table, pa.Table.from_pylist(rows)],
                                 promote_options="permissive")
    _write(table, output.out_path, export.overwrite)
    ties = sum(1 for t in table.column("target").to_pylist() if t == 0.5) if (
        "target" in table.column_names and plan.smooth <= 0) else 0
    lines += _trl_note(plan, ties)
    if counts["conversational"]:
        lines.append("conversational input: prompt, chosen and rejected written as TRL "
                     "message lists")
    lines.append(f"{table.num_rows} pairs written ({counts['flipped']} flipped, "
                 f"{counts['dropped']} dropped, {counts['identical_left_out']} identical left out)")
    if n_held:
        lines.append(f"{n_held} validation/test pairs " + (
            "appended unchanged (--include-held-out)" if held is not None
            else "left out; --include-held-out adds them unchanged"))
    return CommandResult(lines, {"pairs": output.out_path},
                         {**counts, "held_out": n_held, "file": str(output.out_path)})
