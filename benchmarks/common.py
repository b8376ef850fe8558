"""What every benchmark script shares: where the data lives, and glob expansion of --data."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""


def _shared() -> Path:
    """``$REWARDLAB_SHARED``, else the first ``shared/data`` beside the checkout or beside one of
    its parents (a git worktree under ``wt/`` sits one level deeper than the main checkout)."""
    if os.environ.get("REWARDLAB_SHARED"):
        return Path(os.environ["REWARDLAB_SHARED"])
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


SHARED = _shared()
"""The real data sets, beside the checkout (never copied into it)."""
HH_FILES = str(SHARED / "hh-rlhf" / "*.jsonl.gz")


def expand(patterns: list[str]) -> list[str]:
    """Glob-expand ``patterns`` (a pattern that matches nothing is an error)."""
    paths: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if not found:
            raise SystemExit(f"--data: nothing matches {pattern}")
        paths += found
    return paths


def write_results(path: Path | None, results: Any) -> Any:
    """Write ``results`` as indented JSON to ``path`` (``--json``) when given; return them."""
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results
