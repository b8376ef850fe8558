"""Stage: figures and report.html from whatever a run folder holds (reads saved results only)."""

from __future__ import annotations

from rewardlab.config import CommonConfig, ReportConfig, RunDirConfig
from rewardlab.layout import RunLayout
from rewardlab.stages.command import CommandResult

__all__ = ["report_command"]


def report_command(*, run_dir: RunDirConfig, report: ReportConfig,
                   common: CommonConfig) -> CommandResult:
    """``rewardlab report``: draw the figures and write report.html."""
    from rewardlab.report import build_report

    res = build_report(run_dir.run_dir, pair_limit=report.pair_limit,
                       agree_column=report.agree_column, progress=not common.quiet)
    layout = RunLayout.of(run_dir.run_dir)
    return CommandResult([f"skipped {why}" for why in res.skipped],
                         {"report": res.html, "figures": layout.figures_dir}, res)
