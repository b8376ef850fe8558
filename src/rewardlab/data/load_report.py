"""What loading found: counts per file and format, skipped records, suspicious pairs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rewardlab.data.checks import SUSPICIOUS_KINDS
from rewardlab.data.errors import DataError

__all__ = ["MAX_SKIPPED_EXAMPLES", "LoadReport"]

MAX_SKIPPED_EXAMPLES = 5


@dataclass
class LoadReport:
    """Counts of one :func:`rewardlab.data.read_preferences` call.

    ``pairs``, ``by_file`` and ``by_format`` count the rows of the returned dataset (after
    ``drop_suspicious``), so they add up. ``suspicious`` lists the ids of every suspicious pair
    found, dropped or not; a pair can have several kinds.
    """

    pairs: int = 0
    """Rows in the returned dataset."""
    by_file: dict[str, int] = field(default_factory=dict)
    """Input (path as given; ``path[split]`` for dataset splits) -> pairs loaded from it."""
    by_format: dict[str, int] = field(default_factory=dict)
    """Layout name (:data:`~rewardlab.data.formats.LAYOUTS`: ``explicit``, ``hh``,
    ``conversational``, ``mapped``, ``winner``, ``scores``, ``ranking``) -> pairs."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Skip reason (``malformed_json``, ``missing_field``, ``wrong_type``, ...) -> records."""
    skipped_examples: list[str] = field(default_factory=list)
    """The first few full messages of skipped records."""
    suspicious: dict[str, list[str]] = field(
        default_factory=lambda: {kind: [] for kind in SUSPICIOUS_KINDS})
    """Suspicious kind -> ids of the pairs of that kind."""
    dropped_suspicious: int = 0
    """Suspicious pairs removed by ``drop_suspicious=True``."""
    ties_dropped: int = 0
    """Tied pairs (a tie label, equal scores or equal ranks), dropped (``ties="drop"``)."""
    ties_kept: int = 0
    """Tied records kept with ``target`` 0.5 (``ties="half"``); counted in ``pairs``."""
    warnings: list[str] = field(default_factory=list)
    """Things that loaded but look wrong, e.g. a leftover column that looks like a winner
    label (so the chosen/rejected order may not be what the data says)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return asdict(self)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skip_or_raise(self, exc: DataError, file: str, where: str, on_bad: str) -> str:
        """A malformed record at ``where`` in ``file``: raised, located, with ``--on-bad error``;
        otherwise counted as skipped. Returns its message."""
        error = exc.located(file, where)
        if on_bad == "error":
            raise error from None
        self.add_skipped(error.reason, str(error))
        return str(error)

    def add_skipped(self, reason: str, message: str) -> None:
        """Count one skipped record, keeping its message if it is among the first few."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_examples) < MAX_SKIPPED_EXAMPLES:
            self.skipped_examples.append(message)

    def problem_lines(self) -> list[str]:
        """The lines about warnings, skipped, tied and suspicious pairs (empty when all fine)."""
        lines = [f"warning: {text}" for text in self.warnings]
        if self.skipped:
            lines.append(f"skipped {self.skipped_total:,} malformed record(s): "
                         + _counts(self.skipped))
            lines.extend(f"  e.g. {msg}" for msg in self.skipped_examples)
        if self.ties_dropped:
            lines.append(f"dropped {self.ties_dropped:,} tie(s): the winner label prefers neither "
                         "response (ties='half' keeps them with target 0.5)")
        if self.ties_kept:
            lines.append(f"kept {self.ties_kept:,} tie(s) with target 0.5")
        found = {kind: len(ids) for kind, ids in self.suspicious.items() if ids}
        if found:
            action = (f"{self.dropped_suspicious:,} pair(s) dropped" if self.dropped_suspicious
                      else "kept")
            lines.append(f"suspicious pairs ({action}): {_counts(found)}")
        return lines

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        files = len(self.by_file)
        lines = [f"{self.pairs:,} pairs from {files} input{'s' if files != 1 else ''} "
                 f"({_counts(self.by_format)})"]
        lines.extend(f"  {name}: {count:,}" for name, count in self.by_file.items())
        lines.extend(self.problem_lines() or ["no malformed records, no suspicious pairs"])
        return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in counts.items())
