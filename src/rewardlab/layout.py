"""The run folder: every path and column name a run writes, in one place.

Every command writes into a run folder with the same layout, so ``report`` and ``export`` read
the output of ``strength``, ``groups``, ``compare`` or ``run`` alike::

    OUT/
      run.json                 the main job's summary (data, settings, split, best method)
      stages.json              which stages finished, under which input fingerprint
      strength/strength.parquet, strength.jsonl, summary.json, .partial/<fingerprint>/
      groups/groups.json
      compare/compare.json, predictions.parquet
      split/held_out.parquet   the validation and test pairs (never denoised, never exported
                               unless asked)
      final/model/, final/metrics.json     (``train -o OUT`` writes OUT/model, OUT/metrics.json)
      figures/, report.html
      .rewardlab.lock          held by the one process writing here (see rewardlab.locks)

Stages never spell a file name themselves: they ask a :class:`RunLayout` (or, for one trained
model, a :class:`TrainLayout`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LOCK_FILE",
    "MODEL_INFO_FILE",
    "STRENGTH_COLUMNS",
    "RunLayout",
    "TrainLayout",
    "best_method",
    "find_strength_file",
    "find_strength_summary",
    "supported_method",
]

MODEL_INFO_FILE = "rewardlab.json"
"""Written into every saved model folder: which backend it is and the settings to rebuild it."""

LOCK_FILE = ".rewardlab.lock"
"""In every folder a command writes (:mod:`rewardlab.locks`): the ``fcntl`` lock that keeps a
second writer out, and while held the holder's pid. Empty once the holder has finished."""

STRENGTH_COLUMNS: dict[str, str] = {
    "strength_mean": "û: mean over members of Δ = r(chosen) - r(rejected); > 0 agrees with the "
                     "label",
    "strength_std": "σ̂: population std of Δ over members",
    "strength_members": "the M values of Δ, members in order",
    "strength_rank": "0 = lowest û",
    "strength_group": "1..10, equal-sized by rank; 1 holds the lowest û",
    "category": "incorrect, ambiguous or normal",
}
"""The columns the strength stage adds to every input column, and what each holds."""

_STRENGTH_DIR = "strength"
_STRENGTH_FILE = "strength.parquet"
_SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class TrainLayout:
    """What training one reward model writes: ``model/`` and ``metrics.json``."""

    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run folder rooted at ``root`` (see the module docstring)."""

    root: Path

    @classmethod
    def of(cls, root: str | os.PathLike[str]) -> RunLayout:
        return cls(Path(root))

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def stages_json(self) -> Path:
        return self.root / "stages.json"

    @property
    def strength_dir(self) -> Path:
        return self.root / _STRENGTH_DIR

    @property
    def strength_parquet(self) -> Path:
        return self.strength_dir / _STRENGTH_FILE

    @property
    def strength_jsonl(self) -> Path:
        return self.strength_dir / "strength.jsonl"

    @property
    def strength_summary(self) -> Path:
        return self.strength_dir / _SUMMARY_FILE

    @property
    def partial_root(self) -> Path:
        """Unfinished strength computations: removed once the strength table is written."""
        return self.strength_dir / ".partial"

    def partial_dir(self, fingerprint: str) -> Path:
        """Finished strength jobs of one computation, kept for resuming."""
        return self.partial_root / fingerprint

    @property
    def groups_json(self) -> Path:
        return self.root / "groups" / "groups.json"

    @property
    def compare_json(self) -> Path:
        return self.root / "compare" / "compare.json"

    @property
    def compare_predictions(self) -> Path:
        """Per method, split and held-out pair: the mean Δ over seeds and the share correct."""
        return self.root / "compare" / "predictions.parquet"

    @property
    def held_out_parquet(self) -> Path:
        """The validation and test pairs of a run (column ``split``), as loaded."""
        return self.root / "split" / "held_out.parquet"

    @property
    def final(self) -> TrainLayout:
        return TrainLayout(self.root / "final")

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def written_folders(self) -> list[Path]:
        """Every folder a command may write into under the root (that of ``train -o`` too), for
        checking write access before any work starts. Existing ones only."""
        partial = self.partial_root
        folders = [self.root, self.strength_dir, partial, self.groups_json.parent,
                   self.compare_json.parent, self.held_out_parquet.parent, self.final.root,
                   self.final.model_dir, self.figures_dir, TrainLayout(self.root).model_dir]
        if partial.is_dir():
            folders += sorted(p for p in partial.iterdir() if p.is_dir())
        return [p for p in folders if p.is_dir()]

    def looked_for(self) -> list[str]:
        """The result files a reader looks for, relative to the root (for error messages)."""
        files = [self.run_json, self.strength_parquet, self.strength_summary, self.groups_json,
                 self.compare_json]
        return [str(p.relative_to(self.root)) for p in files]


def find_strength_file(path: str | os.PathLike[str]) -> Path | None:
    """The strength table named by ``path``: the file itself, a run folder's, or the flat layout
    of rewardlab 0.1 (``strength.parquet`` at the top of a ``strength -o`` folder)."""
    path = Path(path)
    if path.is_file():
        return path
    for candidate in (RunLayout(path).strength_parquet, path / _STRENGTH_FILE):
        if candidate.is_file():
            return candidate
    return None


def find_strength_summary(root: str | os.PathLike[str], table: Path | None) -> Path | None:
    """The strength ``summary.json`` of a run folder: beside its table, else in either layout."""
    root = Path(root)
    candidates = [table.parent / _SUMMARY_FILE] if table is not None else []
    candidates += [RunLayout(root).strength_summary, root / _SUMMARY_FILE]
    return next((p for p in candidates if p.is_file()), None)


def best_method(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The method with the best mean *validation* accuracy, graded on *test*.

    ``records`` are compare.json's rows; a tie keeps the first in file order. The pick is made
    on validation only, so the test split, which nothing was chosen on, gives an honest
    ``gain_over_baseline`` (``gain_split`` says which split it was measured on: ``valid`` only
    when the run has no test split). Returns ``None`` when no row has a validation accuracy.
    """
    scored = [r for r in records if isinstance(r.get("method"), str)
              and isinstance(r.get("valid_accuracy_mean"), (int, float))]
    if not scored:
        return None
    top = max(scored, key=lambda r: r["valid_accuracy_mean"])
    base = next((r for r in scored if r["method"] == "baseline"), None)
    split = "test" if isinstance(top.get("test_accuracy_mean"), (int, float)) else "valid"
    key = f"{split}_accuracy_mean"
    return {"method": top["method"], "valid_accuracy_mean": top["valid_accuracy_mean"],
            "test_accuracy_mean": top.get("test_accuracy_mean"),
            "gain_over_baseline": top[key] - base[key] if base else None,
            "gain_split": split}


def supported_method(run_summary: dict[str, Any]) -> str:
    """The method the run's own numbers support: the best one when its test gain is
    distinguishable from 0 (or, with no interval, when it is positive), else the baseline."""
    b = run_summary["best_method"]
    if b["method"] == "baseline" or b.get("gain_over_baseline") is None:
        return "baseline"
    if "gain_ci95" in b:
        return b["method"] if b.get("distinguishable") and b["gain_ci95"][0] > 0 else "baseline"
    return b["method"] if b["gain_over_baseline"] > 0 else "baseline"
