"""What every benchmark script shares: where the data lives, and glob expansion of --data."""

from __future__ import annotations

import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""
SHARED = ROOT.parent / "shared" / "data"
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
