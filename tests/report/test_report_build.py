"""build_report: which figures come from which results, and what happens when some are missing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fake_report_run import N_PAIRS, PAIR_LIMIT, expected_pair_ids

from rewardlab.report import build_report
from rewardlab.report.figures import FIGURES, draw_agreement
from rewardlab.report.loaders import RunResults, load_run
from rewardlab.report.pairs import select_pairs
from rewardlab.report.stats import Unavailable, agreement_by_group, detect_opinions

ALL_FIGURES = [spec.name for spec in FIGURES]
STRENGTH_FIGURES = ["fig1_strength_hist", "fig2_group_stats", "fig2b_agreement"]
COMPARE_FIGURES = ["fig4_flip", "fig5_smooth", "fig6_margin", "fig7_methods"]


def _skipped(result: Any) -> dict[str, str]:
    """ReportResult.skipped as {figure name: reason}."""
    return dict(line.split(": ", 1) for line in result.skipped)


def _assert_drawn(run_dir: Path, names: list[str]) -> None:
    for name in names:
        for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml")):
            path = run_dir / "figures" / f"{name}{suffix}"
            assert path.is_file(), f"{path.name} missing"
            assert path.read_bytes().startswith(magic)


def test_full_run_draws_every_figure(full_report: tuple[Path, Any]) -> None:
    run_dir, result = full_report
    assert result.skipped == []
    assert result.notes == []
    assert result.html == run_dir / "report.html"
    _assert_drawn(run_dir, ALL_FIGURES)
    assert sorted(result.figures) == sorted(
        run_dir / "figures" / f"{n}{s}" for n in ALL_FIGURES for s in (".png", ".svg"))
    # Atomic writes leave no temporary files behind.
    assert not [p for p in run_dir.rglob("*.tmp")]


def test_compare_only_with_missing_methods(make_run: Callable[..., Path]) -> None:
    run_dir = make_run(parts=("compare",))
    path = run_dir / "compare" / "compare.json"
    records = [r for r in json.loads(path.read_text()) if r["method"] != "smooth"]
    assert records[1]["method"] == "flip"
    records[1]["curve"] = []  # a final accuracy but no curve
    path.write_text(json.dumps(records))
    result = build_report(run_dir, progress=False)
    _assert_drawn(run_dir, ["fig6_margin", "fig7_methods"])
    skipped = _skipped(result)
    assert set(skipped) == {*STRENGTH_FIGURES, "fig3_groups", "fig4_flip", "fig5_smooth"}
    assert skipped["fig1_strength_hist"] == "no strength/strength.parquet"
    assert skipped["fig5_smooth"] == "compare/compare.json has no 'smooth' method"
    assert skipped["fig4_flip"] == "compare/compare.json: 'flip' has no validation curve"
    assert "No strength table" in result.html.read_text(encoding="utf-8")


def test_group_stats_fall_back_to_summary(make_run: Callable[..., Path]) -> None:
    run_dir = make_run(parts=("summary",))
    result = build_report(run_dir, progress=False)
    _assert_drawn(run_dir, ["fig2_group_stats"])
    assert "fig1_strength_hist" in _skipped(result)


def test_unreadable_files_are_noted_not_fatal(make_run: Callable[..., Path]) -> None:
    run_dir = make_run(parts=("groups", "compare", "run"))
    (run_dir / "groups" / "groups.json").write_text("{not json")
    (run_dir / "compare" / "compare.json").write_text('{"method": "baseline"}')
    result = build_report(run_dir, progress=False)
    assert any(n.startswith("groups: cannot read groups.json") for n in result.notes)
    assert any("compare.json holds a dict, expected a list" in n for n in result.notes)
    assert {"fig3_groups", *COMPARE_FIGURES} <= set(_skipped(result))
    assert "cannot read groups.json" in result.html.read_text(encoding="utf-8")


def test_strength_table_without_strength_columns(make_run: Callable[..., Path],
                                                 strength_table: pa.Table) -> None:
    table = strength_table.drop_columns(["strength_std"])
    result = build_report(make_run(parts=("strength",), table=table), progress=False)
    assert any("lacks column(s) strength_std" in n for n in result.notes)
    assert "fig1_strength_hist" in _skipped(result)


def test_plain_strength_output_skips_training_figures(make_run: Callable[..., Path]) -> None:
    """`rewardlab strength -o OUT` layout: strength figures drawn, the rest skipped with reasons."""
    run_dir = make_run(parts=("strength", "summary"), layout="plain")
    result = build_report(run_dir, progress=False)
    _assert_drawn(run_dir, STRENGTH_FIGURES)
    skipped = _skipped(result)
    assert set(skipped) == {"fig3_groups", *COMPARE_FIGURES}
    assert skipped["fig3_groups"] == "no groups/groups.json"
    assert all(skipped[n] == "no compare/compare.json" for n in COMPARE_FIGURES)
    assert not (run_dir / "figures" / "fig3_groups.png").exists()
    page = result.html.read_text(encoding="utf-8")
    assert "Not in this report" in page and "no groups/groups.json" in page
    # Settings come from summary.json when there is no run.json.
    assert "all-MiniLM-L6-v2" in page and "bootstrap" in page


def test_bad_run_dirs_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope", progress=False)
    with pytest.raises(ValueError, match="no results"):
        build_report(tmp_path, progress=False)


def test_stale_figures_are_removed(make_run: Callable[..., Path]) -> None:
    run_dir = make_run(parts=("groups",))
    build_report(run_dir, progress=False)
    _assert_drawn(run_dir, ["fig3_groups"])
    (run_dir / "groups" / "groups.json").unlink()
    (run_dir / "run.json").write_text("{}")
    build_report(run_dir, progress=False)
    assert not (run_dir / "figures" / "fig3_groups.png").exists()


def test_progress_goes_to_stderr(make_run: Callable[..., Path],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    build_report(make_run(parts=("groups",)), progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "[report] wrote fig3_groups" in err and "skipped fig1_strength_hist" in err


def test_reruns_are_byte_identical(make_run: Callable[..., Path]) -> None:
    """Same results, same bytes (figures and page), so reruns do not churn."""
    run_dir = make_run(parts=("summary", "groups", "run"))
    first = build_report(run_dir, progress=False)
    before = {p: p.read_bytes() for p in [first.html, *first.figures]}
    assert len(before) == 5  # the page and fig2, fig3 as PNG and SVG
    again = build_report(run_dir, progress=False)
    for path in [again.html, *again.figures]:
        assert path.read_bytes() == before[path], f"{path.name} changed on rerun"


# --- agreement (fig2b) -------------------------------------------------------------------------

def test_agreement_needs_a_second_opinion(strength_table: pa.Table) -> None:
    table = strength_table.drop_columns(["extras", "injected_flip"])
    with pytest.raises(Unavailable, match="no second opinion"):
        detect_opinions(table)
    with pytest.raises(Unavailable, match="column 'judge' not found"):
        detect_opinions(strength_table, "judge")


def test_agree_column_bool(strength_table: pa.Table) -> None:
    judge = [i % 2 == 0 for i in range(N_PAIRS)]
    table = strength_table.append_column("judge_agrees", pa.array(judge))
    (opinion,) = detect_opinions(table, "judge_agrees")
    assert opinion.name == "judge_agrees" and np.mean(opinion.agrees) == 0.5
    fig = draw_agreement(RunResults(run_dir=Path("."), strength=table), "judge_agrees")
    assert "N = 40 pairs" in fig.axes[0].get_title()


def test_agreement_shares(strength_table: pa.Table) -> None:
    """reference_label (in extras) and votes give the per-group shares computed by hand."""
    opinions = {o.name: o for o in detect_opinions(strength_table)}
    groups = strength_table.column("strength_group").to_numpy()
    extras = strength_table.column("extras").to_pylist()
    ref = np.array([e["reference_label"] == "chosen" for e in extras], dtype=float)
    votes = np.array([e["votes_for_chosen"] > e["votes_against"] for e in extras], dtype=float)
    for name, truth in (("reference_label", ref), ("votes (for chosen > against)", votes)):
        ids, shares, counts = agreement_by_group(opinions[name], groups)
        assert ids == list(range(1, 11))
        assert shares == pytest.approx([truth[groups == g].mean() for g in ids])
        assert counts == [int((groups == g).sum()) for g in ids]
    flips = opinions["label not flipped on purpose (injected_flip)"]
    assert flips.n_known == N_PAIRS


def test_agree_column_words(strength_table: pa.Table) -> None:
    values = ["chosen", "rejected", None, "maybe"] * (N_PAIRS // 4)
    table = strength_table.append_column("ref2", pa.array(values))
    (opinion,) = detect_opinions(table, "ref2")
    assert opinion.n_known == N_PAIRS // 2
    assert np.nanmean(opinion.agrees) == 0.5
    bad = strength_table.append_column("ref3", pa.array(["x"] * N_PAIRS))
    with pytest.raises(Unavailable, match="no usable values"):
        detect_opinions(bad, "ref3")


# --- pair browser selection --------------------------------------------------------------------

def test_pair_selection_lists_and_dedup(strength_table: pa.Table) -> None:
    rows = select_pairs(strength_table, PAIR_LIMIT)
    expected = expected_pair_ids(strength_table, PAIR_LIMIT)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(set().union(*expected.values()))
    for row in rows:
        assert set(row["lists"]) == {k for k, v in expected.items() if row["id"] in v}
    by_id = {r["id"]: r for r in rows}
    assert by_id["pair-000"]["flipped"] is True  # the lowest û; flipped on purpose (0 % 9 == 0)
    assert by_id["pair-001"]["flipped"] is False
    assert select_pairs(strength_table, 0) == []


def test_pair_selection_without_optional_columns(strength_table: pa.Table) -> None:
    table = strength_table.select(["strength_mean", "strength_std"])
    rows = select_pairs(table, 3)
    assert rows and all(r["prompt"] == "" and r["source"] == "" for r in rows)
    # Groups recomputed from û with the strength stage's rule match the saved ones.
    saved = dict(zip(strength_table.column("id").to_pylist(),
                     strength_table.column("strength_group").to_pylist(), strict=True))
    assert all(r["group"] == saved[f"pair-{int(r['id']):03d}"] for r in rows)


def test_loader_reads_extras_as_json_text(strength_table: pa.Table) -> None:
    from rewardlab.report.loaders import column_values

    text = pa.array([json.dumps(e) for e in strength_table.column("extras").to_pylist()])
    table = strength_table.set_column(strength_table.column_names.index("extras"), "extras", text)
    assert column_values(table, "reference_label") == column_values(strength_table,
                                                                    "reference_label")
    assert column_values(table, "nothing") is None


def test_load_run_reports_paths(make_run: Callable[..., Path]) -> None:
    res = load_run(make_run())
    assert res.strength_path is not None and res.strength_path.parent.name == "strength"
    assert res.strength is not None and res.strength.num_rows == N_PAIRS
    assert res.groups is not None and len(res.groups) == 10


def test_report_package_does_not_import_matplotlib() -> None:
    code = ("import sys, rewardlab, rewardlab.report, rewardlab.report.figures; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pair_browser_shows_extra_input_columns_beside_strength() -> None:
    table = pa.table({
        "id": ["a", "b", "c"], "prompt": ["p"] * 3, "chosen": ["x", "y", "z"],
        "rejected": ["u", "v", "w"], "strength_mean": [-1.0, 0.1, 2.0],
        "strength_std": [0.1, 0.2, 0.3], "strength_group": [1, 5, 10],
        "votes_for_chosen": [0, 2, 3], "votes_against": [3, 1, 0],
        "score": [float("nan"), 1.5, float("inf")], "long_note": ["n" * 200] * 3,
    })
    rows = {r["id"]: r for r in select_pairs(table, 3)}
    assert rows["a"]["extras"] == {"votes_for_chosen": 0, "votes_against": 3}
    assert rows["b"]["extras"]["score"] == 1.5
    # NaN, inf and long texts are left out instead of breaking the page's strict JSON.
    assert "score" not in rows["c"]["extras"] and "long_note" not in rows["a"]["extras"]
    json.dumps(list(rows.values()), allow_nan=False)
