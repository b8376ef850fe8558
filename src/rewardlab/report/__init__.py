"""Figures and one self-contained HTML report from a run directory's saved results.

The report only reads what other stages wrote (``run.json``, ``strength/``, ``groups/``,
``compare/``, or a plain ``rewardlab strength`` output); it never trains. Whatever is missing is
skipped and the page says why, so a report can be made at any point of a run.

Example::

    from rewardlab.report import build_report
    result = build_report("runs/demo")
    print(result.html, result.skipped)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.files import atomic_write_text
from rewardlab.layout import RunLayout
from rewardlab.report.figures import make_figures
from rewardlab.report.html import PageInput, render_page
from rewardlab.report.loaders import load_run
from rewardlab.report.pairs import select_pairs
from rewardlab.report.stats import best_method

__all__ = ["ReportResult", "build_report"]



@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes:
        html: the report page.
        figures: the figure files written (PNG and SVG of each figure drawn).
        skipped: one line per figure not drawn: its name and why (e.g.
            ``"fig3_groups: no groups/groups.json"``).
        notes: result files that exist but could not be read, and why.
    """

    html: Path
    figures: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _progress_printer(enabled: bool) -> Callable[[str], None] | None:
    """Progress lines on stderr, so stdout stays clean for whoever pipes it."""
    if not enabled:
        return None
    return lambda msg: print(f"[report] {msg}", file=sys.stderr, flush=True)


def build_report(run_dir: str | Path, *, pair_limit: int = 60, agree_column: str | None = None,
                 progress: bool = True) -> ReportResult:
    """Draw the figures into ``RUN_DIR/figures/`` and write ``RUN_DIR/report.html``.

    Args:
        run_dir: a run directory, or a plain strength output (``strength.parquet`` and
            ``summary.json`` at its top level).
        pair_limit: pairs per list in the pair browser (lowest û, û nearest 0, highest σ̂).
        agree_column: column (or ``extras`` key) holding a second opinion on each label, either
            ``chosen``/``rejected`` or a bool / 0-1 "agrees"; default: detect
            ``reference_label``, annotator votes and ``injected_flip``.
        progress: print what is being done to stderr.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        ValueError: ``run_dir`` holds none of the result files, or ``pair_limit`` < 0.
    """
    if pair_limit < 0:
        raise ValueError(f"pair_limit must be >= 0, got {pair_limit}")
    say = _progress_printer(progress)
    run_dir = Path(run_dir)
    results = load_run(run_dir)
    if say:
        for note in results.notes:
            say(f"note: {note}")

    layout = RunLayout(run_dir)
    figures = make_figures(results, layout.figures_dir, agree_column=agree_column,
                           on_progress=say)
    pairs = select_pairs(results.strength, pair_limit) if results.strength is not None else []
    page = PageInput(run_dir=run_dir, results=results, figures=figures, pairs=pairs,
                     pair_limit=pair_limit, best=best_method(results), notes=results.notes)
    html_path = atomic_write_text(layout.report_html, render_page(page))
    if say:
        say(f"wrote {html_path} ({len(pairs)} pairs in the browser)")

    return ReportResult(
        html=html_path,
        figures=[p for f in figures for p in (f.png, f.svg) if p is not None],
        skipped=[f"{f.name}: {f.skipped}" for f in figures if f.skipped],
        notes=list(results.notes),
    )
