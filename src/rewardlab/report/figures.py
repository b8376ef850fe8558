"""The report's figures, drawn with matplotlib from saved results.

This is the only module of rewardlab that imports matplotlib, and only inside functions, so
``import rewardlab`` (and ``import rewardlab.report``) stays light. Figures are built with the
object-oriented API (``matplotlib.figure.Figure`` saved through the Agg/SVG canvases) rather than
pyplot: nothing touches the process-wide backend or pyplot's figure list, so building a report
from a notebook or a headless server behaves the same and leaks no figures.

Every figure is written as PNG and SVG under ``RUN_DIR/figures/`` atomically, with the date and
version stamps removed and a fixed SVG hash salt, so re-running on the same results gives the
same bytes (no churn under version control).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.files import atomic_path
from rewardlab.report.loaders import RunResults, numeric_column
from rewardlab.report.stats import (
    Unavailable,
    agreement_by_group,
    detect_opinions,
    group_stats,
    table_groups,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "FigureResult", "FigureSpec", "make_figures"]

# Labels in mathtext: DejaVu has no good combining circumflex, so "σ̂" would render badly.
U_HAT = r"$\hat{u}$"
SIGMA_HAT = r"$\hat{\sigma}$"
GROUP_AXIS = "strength group (1 = lowest 10% of " + U_HAT + ")"

_RC: dict[str, Any] = {
    "svg.hashsalt": "rewardlab-report",  # fixed ids in the SVG: same results, same bytes
    "svg.fonttype": "path",  # text as paths: the SVG looks the same without the fonts
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}
_DPI = 120
_BASE_COLOR = "#7f7f7f"
_METHOD_COLOR = "#1f77b4"
_NEG_COLOR = "#d62728"


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: file stem, title in the report, caption, drawing function."""

    name: str
    title: str
    caption: str
    draw: Callable[[RunResults, str | None], Figure]


@dataclass(frozen=True)
class FigureResult:
    """What became of one figure: its files, or why it was skipped."""

    spec: FigureSpec
    png: Path | None = None
    svg: Path | None = None
    skipped: str | None = None

    @property
    def name(self) -> str:
        """The figure's file stem, e.g. ``fig1_strength_hist``."""
        return self.spec.name


@contextmanager
def _style() -> Iterator[None]:
    """The report's matplotlib settings, for drawing and saving, without touching the globals."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def _new_figure(ncols: int = 1, width: float = 6.4, height: float = 3.8) -> tuple[Figure,
                                                                                  list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _n(n: int) -> str:
    return f"{n:,}"


def _n_seeds(seeds: Any) -> int | None:
    """compare/groups records give seeds as a count or as the list of seeds used."""
    if isinstance(seeds, bool):
        return None
    if isinstance(seeds, int):
        return seeds
    if isinstance(seeds, list):
        return len(seeds)
    return None


def _seeds_text(seeds: int | None) -> str:
    if not seeds:
        return ""
    return f", {seeds} seed{'s' if seeds != 1 else ''}"


# --- fig1, fig2, fig2b: from the strength table ------------------------------------------------

def _strength_arrays(results: RunResults) -> tuple[np.ndarray, np.ndarray]:
    if results.strength is None:
        raise Unavailable("no strength/strength.parquet")
    mean = numeric_column(results.strength, "strength_mean")
    std = numeric_column(results.strength, "strength_std")
    assert mean is not None and std is not None  # the loader rejects tables without them
    return mean, std


def _bins(n: int) -> int:
    """About √n bins, within [10, 60]: enough shape for small runs, no comb for big ones."""
    return int(np.clip(np.sqrt(max(n, 1)), 10, 60))


def draw_strength_hist(results: RunResults, _agree: str | None = None) -> Figure:
    """fig1: histograms of û and σ̂ over all pairs, with the share of û < 0 marked."""
    mean, std = _strength_arrays(results)
    mean, std = mean[~np.isnan(mean)], std[~np.isnan(std)]
    if len(mean) == 0:
        raise Unavailable("strength table has no û values")
    fig, (ax_u, ax_s) = _new_figure(2, width=8.0)
    edges = np.histogram_bin_edges(mean, bins=_bins(len(mean)))
    # Counted from the plotted values (not summary.json) so the share matches the bars.
    share = float((mean < 0).mean())
    ax_u.hist(mean[mean < 0], bins=edges, color=_NEG_COLOR, alpha=0.8,
              label=f"{U_HAT} < 0: {share:.1%} of pairs")
    ax_u.hist(mean[mean >= 0], bins=edges, color=_METHOD_COLOR, alpha=0.8,
              label=f"{U_HAT} ≥ 0: {1 - share:.1%}")
    ax_u.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax_u.set(title="mean preference strength " + U_HAT, xlabel=U_HAT + " (mean over members)",
             ylabel="pairs")
    ax_u.legend(loc="best")
    ax_s.hist(std, bins=_bins(len(std)), color="#9467bd", alpha=0.8)
    ax_s.set(title="member disagreement " + SIGMA_HAT, xlabel=SIGMA_HAT + " (std over members)",
             ylabel="pairs")
    fig.suptitle(f"Preference strength over all pairs — N = {_n(len(mean))} pairs")
    return fig


def draw_group_stats(results: RunResults, _agree: str | None = None) -> Figure:
    """fig2: mean û and mean σ̂ per strength group (σ̂ is U-shaped in the paper)."""
    stats = group_stats(results)
    fig, (ax_u, ax_s) = _new_figure(2, width=8.0)
    colors = [_NEG_COLOR if m < 0 else _METHOD_COLOR for m in stats.mean_strength]
    ax_u.bar(stats.group, stats.mean_strength, color=colors)
    ax_u.axhline(0.0, color="black", linewidth=0.8)
    ax_u.set(title="mean " + U_HAT + " per group", xlabel=GROUP_AXIS, ylabel="mean " + U_HAT,
             xticks=stats.group)
    ax_s.plot(stats.group, stats.mean_std, marker="o", color="#9467bd")
    ax_s.set(title="mean " + SIGMA_HAT + " per group", xlabel=GROUP_AXIS,
             ylabel="mean " + SIGMA_HAT, xticks=stats.group)
    fig.suptitle(f"Strength groups (deciles of {U_HAT}) — N = {_n(stats.total)} pairs, "
                 f"from {stats.source}")
    return fig


def draw_agreement(results: RunResults, agree_column: str | None = None) -> Figure:
    """fig2b: per group, the share of pairs where a second opinion agrees with the label."""
    if results.strength is None:
        raise Unavailable("no strength/strength.parquet")
    opinions = detect_opinions(results.strength, agree_column)
    groups = table_groups(results.strength)
    fig, (ax,) = _new_figure()
    markers = ["o", "s", "^", "D"]
    for k, opinion in enumerate(opinions):
        ids, shares, _ = agreement_by_group(opinion, groups)
        ax.plot(ids, shares, marker=markers[k % len(markers)],
                label=f"{opinion.name} (n = {_n(opinion.n_known)})")
    ax.axhline(0.5, color=_BASE_COLOR, linestyle="--", linewidth=1)
    ax.set(xlabel=GROUP_AXIS, ylabel="share agreeing with the dataset's label",
           ylim=(-0.02, 1.02), xticks=list(range(1, 11)))
    if len(opinions) > 1:
        # Below the axes: the curves can cross any corner of the plot.
        fig.legend(loc="outside lower center", ncols=1)
    n = max(o.n_known for o in opinions)
    what = opinions[0].name if len(opinions) == 1 else "a second opinion"
    # Opinion names can be long ("label not flipped on purpose (injected_flip)"): keep the
    # title on lines short enough for the axes.
    ax.set_title(f"Agreement of {what} with the label\n"
                 f"per strength group, N = {_n(n)} pairs with a second opinion")
    return fig


# --- fig3: groups experiment -------------------------------------------------------------------

def draw_groups(results: RunResults, _agree: str | None = None) -> Figure:
    """fig3: validation accuracy of a model trained on each 10% group, ± std over seeds."""
    if results.groups is None:
        raise Unavailable("no groups/groups.json")
    rows = sorted((r for r in results.groups if isinstance(r.get("group"), int)
                   and isinstance(r.get("valid_accuracy_mean"), (int, float))),
                  key=lambda r: r["group"])
    if not rows:
        raise Unavailable("groups/groups.json has no group with a validation accuracy")
    fig, (ax,) = _new_figure()
    x = [r["group"] for r in rows]
    acc = [r["valid_accuracy_mean"] for r in rows]
    err = [r.get("valid_accuracy_std") or 0.0 for r in rows]
    ax.bar(x, acc, yerr=err, capsize=3, color=_METHOD_COLOR, alpha=0.85,
           label="mean ± std over seeds")
    per_seed = [(g, a) for r, g in zip(rows, x, strict=True)
                for a in r.get("valid_accuracy") or [] if isinstance(a, (int, float))]
    if per_seed:
        ax.scatter(*zip(*per_seed, strict=True), s=10, color="black", zorder=3,
                   label="single seeds")
    ax.axhline(0.5, color=_NEG_COLOR, linestyle="--", linewidth=1, label="chance (0.5)")
    low = min([*acc, *(a for _, a in per_seed), 0.5]) - 0.05
    ax.set(xlabel=GROUP_AXIS, ylabel="validation accuracy", xticks=x,
           ylim=(max(0.0, low), 1.0))
    ax.legend(loc="upper left")
    n_train = sum(int(r.get("n_train") or 0) for r in rows)
    seeds = max((len(r.get("valid_accuracy") or []) for r in rows), default=0)
    ax.set_title("Reward model trained on one 10% strength group\n"
                 f"N = {_n(n_train)} training pairs in {len(rows)} groups{_seeds_text(seeds)}")
    return fig


# --- fig4-fig7: methods comparison -------------------------------------------------------------

def _method_records(results: RunResults) -> dict[str, dict[str, Any]]:
    if results.compare is None:
        raise Unavailable("no compare/compare.json")
    return {r["method"]: r for r in results.compare if isinstance(r.get("method"), str)}


def _curve(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean and std of a method's validation curve (points without a mean are dropped)."""
    points = [p for p in record.get("curve") or [] if isinstance(p, dict)
              and isinstance(p.get("step"), (int, float))
              and isinstance(p.get("valid_accuracy_mean"), (int, float))]
    points.sort(key=lambda p: p["step"])
    steps = np.array([p["step"] for p in points], dtype=np.float64)
    mean = np.array([p["valid_accuracy_mean"] for p in points], dtype=np.float64)
    std = np.array([p.get("valid_accuracy_std") or 0.0 for p in points], dtype=np.float64)
    return steps, mean, std


def _draw_vs_baseline(results: RunResults, method: str, what: str) -> Figure:
    """Validation accuracy over training steps of ``method`` and the baseline, ± std bands."""
    records = _method_records(results)
    for name in ("baseline", method):
        if name not in records:
            raise Unavailable(f"compare/compare.json has no {name!r} method")
        if len(_curve(records[name])[0]) == 0:
            raise Unavailable(f"compare/compare.json: {name!r} has no validation curve")
    fig, (ax,) = _new_figure()
    for name, color in (("baseline", _BASE_COLOR), (method, _METHOD_COLOR)):
        steps, mean, std = _curve(records[name])
        ax.plot(steps, mean, marker="o", markersize=3, color=color, label=name)
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    ax.set(xlabel="training step", ylabel="validation accuracy")
    ax.legend(loc="lower right", title="mean ± std over seeds")
    base = records["baseline"]
    n_train = base.get("n_train")
    n_text = f"N = {_n(int(n_train))} training pairs" if isinstance(n_train, int) else ""
    ax.set_title(f"{what} vs baseline: validation accuracy during training\n"
                 f"{n_text}{_seeds_text(_n_seeds(base.get('seeds')))}")
    return fig


def draw_flip(results: RunResults, _agree: str | None = None) -> Figure:
    """fig4: flipping the lowest-strength labels vs the baseline."""
    return _draw_vs_baseline(results, "flip", "Flip (lowest-strength labels)")


def draw_smooth(results: RunResults, _agree: str | None = None) -> Figure:
    """fig5: label smoothing vs the baseline."""
    return _draw_vs_baseline(results, "smooth", "Label smoothing")


def draw_margin(results: RunResults, _agree: str | None = None) -> Figure:
    """fig6: adaptive margin vs the baseline."""
    return _draw_vs_baseline(results, "margin", "Adaptive margin")


def draw_methods(results: RunResults, _agree: str | None = None) -> Figure:
    """fig7: final validation accuracy of every method, mean ± std, baseline marked."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    records = [r for r in _method_records(results).values()
               if isinstance(r.get("valid_accuracy_mean"), (int, float))]
    if not records:
        raise Unavailable("compare/compare.json has no method with a validation accuracy")
    names = [r["method"] for r in records]
    acc = np.array([r["valid_accuracy_mean"] for r in records], dtype=np.float64)
    err = np.array([r.get("valid_accuracy_std") or 0.0 for r in records], dtype=np.float64)
    best = int(np.argmax(acc))
    colors = [_BASE_COLOR if n == "baseline" else _METHOD_COLOR for n in names]
    colors[best] = "#2ca02c"
    fig, (ax,) = _new_figure(width=max(6.4, 0.8 * len(names) + 2))
    x = np.arange(len(names))
    ax.bar(x, acc, yerr=err, capsize=3, color=colors, alpha=0.9)
    for xi, a, e in zip(x, acc, err, strict=True):
        ax.annotate(f"{a:.3f}", (xi, a + e), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7)
    # Proxy handles: the bars have several colours, so one bar label would show the wrong one.
    handles = [Patch(color=colors[best], label=f"best: {names[best]}"),
               Patch(color=_METHOD_COLOR, label="other methods (mean ± std over seeds)")]
    if "baseline" in names:
        ax.axhline(acc[names.index("baseline")], color="black", linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color="black", linestyle="--", label="baseline"))
    # Differences between methods are a few points of accuracy: start the axis near the data,
    # not at 0, or every bar looks the same. The bars' numbers keep the reading honest.
    low = float(np.min(acc - err)) - 0.03
    high = float(np.max(acc + err)) + 0.03
    ax.set(xticks=x, ylabel="final validation accuracy", xlabel="method",
           ylim=(max(0.0, low), min(1.0, high)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.legend(handles=handles, loc="upper left")
    base = next((r for r in records if r["method"] == "baseline"), records[0])
    n_train = base.get("n_train")
    n_text = f"N = {_n(int(n_train))} training pairs" if isinstance(n_train, int) else ""
    ax.set_title(f"All methods: final validation accuracy (best: {names[best]})\n"
                 f"{n_text}{_seeds_text(_n_seeds(base.get('seeds')))}")
    return fig


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig1_strength_hist", "Preference strength over all pairs",
               "Left: mean preference strength û over the ensemble members; pairs left of the "
               "dashed line (û < 0) are ones the ensemble thinks are labelled the wrong way round. "
               "Right: σ̂, how much the members disagree.", draw_strength_hist),
    FigureSpec("fig2_group_stats", "Strength groups: mean û and σ̂",
               "Pairs ordered by û and cut into 10 equal groups. The paper finds σ̂ U-shaped "
               "against û: members disagree most on the clearest wrong and clearest right "
               "pairs.", draw_group_stats),
    FigureSpec("fig2b_agreement", "Agreement with a second opinion",
               "Share of pairs in each strength group on which an independent opinion "
               "(reference label, annotator votes, or the known injected flips) agrees with the "
               "dataset's label. It should rise with the group if û finds the wrong labels.",
               draw_agreement),
    FigureSpec("fig3_groups", "Training on one strength group at a time",
               "Validation accuracy of a reward model trained on each 10% group only (error "
               "bars: std over seeds). Below the dashed line (0.5) the group teaches the "
               "opposite of the validation labels.", draw_groups),
    FigureSpec("fig4_flip", "Flip vs baseline",
               "Validation accuracy during training, mean ± std over seeds.", draw_flip),
    FigureSpec("fig5_smooth", "Label smoothing vs baseline",
               "Validation accuracy during training, mean ± std over seeds.", draw_smooth),
    FigureSpec("fig6_margin", "Adaptive margin vs baseline",
               "Validation accuracy during training, mean ± std over seeds.", draw_margin),
    FigureSpec("fig7_methods", "All methods",
               "Final validation accuracy, mean ± std over seeds; the dashed line is the "
               "baseline and the best method is green. The axis does not start at 0.",
               draw_methods),
)
"""The report's figures, in report order."""


def _save(fig: Figure, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``fig`` as PNG and SVG atomically, without date/version stamps."""
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None})
    # The layout is in inches, the same for both formats: keep the one the PNG computed rather
    # than paying for constrained layout (most of the drawing time) a second time.
    fig.set_layout_engine("none")
    with atomic_path(svg) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None, "Creator": None})
    return png, svg


def make_figures(results: RunResults, out_dir: Path, *, agree_column: str | None = None,
                 on_progress: Callable[[str], None] | None = None) -> list[FigureResult]:
    """Draw every figure the results allow into ``out_dir``; say why the others were skipped.

    Files of a skipped figure left from an earlier report are removed, so ``out_dir`` always
    matches the report beside it.
    """
    out: list[FigureResult] = []
    with _style():
        for spec in FIGURES:
            try:
                fig = spec.draw(results, agree_column)
            except Unavailable as why:
                for suffix in (".png", ".svg"):
                    (out_dir / f"{spec.name}{suffix}").unlink(missing_ok=True)
                out.append(FigureResult(spec, skipped=str(why)))
                if on_progress:
                    on_progress(f"skipped {spec.name}: {why}")
                continue
            png, svg = _save(fig, out_dir, spec.name)
            out.append(FigureResult(spec, png=png, svg=svg))
            if on_progress:
                on_progress(f"wrote {spec.name}")
    return out
