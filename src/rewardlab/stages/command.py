"""What a command recipe hands back to the CLI: lines to print and the files it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CommandResult"]


@dataclass
class CommandResult:
    """The outcome of one command: ``lines`` for the terminal, ``outputs`` (name -> path) of what
    it wrote, and ``data`` for callers that want the numbers (tests, notebooks)."""

    lines: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    data: Any = None
