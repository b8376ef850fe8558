"""The report page: self-contained, escaped, and holding what the summary promises."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fake_report_run import MALICIOUS, PAIR_LIMIT, expected_pair_ids

from rewardlab.report.assets import SCRIPT, script_hash
from rewardlab.report.figures import FIGURES
from rewardlab.report.html import embed_json, esc

DATA_OPEN = '<script type="application/json" id="pairs-data">'


@pytest.fixture(scope="module")
def page(full_report: tuple[Path, Any]) -> str:
    return full_report[1].html.read_text(encoding="utf-8")


def _pairs_payload(page: str) -> dict[str, Any]:
    start = page.index(DATA_OPEN) + len(DATA_OPEN)
    return json.loads(page[start:page.index("</script>", start)])


def _without_payload(page: str) -> str:
    """The page minus the pairs' JSON, whose texts may look like attributes (harmlessly)."""
    start = page.index(DATA_OPEN) + len(DATA_OPEN)
    return page[:start] + page[page.index("</script>", start):]


def test_page_is_self_contained(page: str) -> None:
    markup = _without_payload(page)
    # Every src/href is a data: URI or an in-page anchor: nothing is fetched.
    for attr in re.findall(r"""\b(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", markup):
        assert attr.startswith(("data:", "#")), attr
    assert "<link" not in page and "@import" not in page
    assert "http://" not in page and "https://" not in page
    # Two script elements: the JSON data and the inline script; neither loads anything.
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert re.search(r"<script[^>]*\bsrc=", page) is None


def test_figures_are_embedded(page: str, full_report: tuple[Path, Any]) -> None:
    run_dir = full_report[0]
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(FIGURES)
    for spec, data in zip(FIGURES, images, strict=True):
        assert base64.b64decode(data) == (run_dir / "figures" / f"{spec.name}.png").read_bytes()


def test_untrusted_text_is_escaped(page: str) -> None:
    for bad in MALICIOUS:
        assert bad not in page, f"raw {bad!r} in the page"
    assert "onerror=" not in _without_payload(page)
    # File names from run.json are data too.
    assert "data/&lt;b&gt;train&lt;/b&gt;.jsonl.gz" in page


def test_pairs_json_round_trips(page: str, full_report: tuple[Path, Any]) -> None:
    run_dir = full_report[0]
    payload = _pairs_payload(page)
    table = pq.read_table(run_dir / "strength" / "strength.parquet")
    by_id = {r["id"]: r for r in table.to_pylist()}
    expected = expected_pair_ids(table, PAIR_LIMIT)
    assert {r["id"] for r in payload["rows"]} == set().union(*expected.values())
    for row in payload["rows"]:
        saved = by_id[row["id"]]
        assert (row["prompt"], row["chosen"], row["rejected"]) == (
            saved["prompt"], saved["chosen"], saved["rejected"])
        assert row["mean"] == pytest.approx(saved["strength_mean"], abs=1e-6)  # rounded
        assert row["group"] == saved["strength_group"]
    texts = " ".join(r["chosen"] for r in payload["rows"])
    assert all(bad in texts for bad in MALICIOUS)


def test_embed_json_cannot_break_out() -> None:
    obj = {"t": "</script><!-- <script>&amp;", "u": "\u2028"}
    text = embed_json(obj)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == obj
    assert esc('"><x') == "&quot;&gt;&lt;x"


def test_csp_allows_only_the_page_script(page: str) -> None:
    assert f"script-src {script_hash()}" in page.replace("&#x27;", "'")
    inline = page[page.rindex("<script>") + len("<script>"):page.rindex("</script>")]
    assert inline == SCRIPT
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert digest in script_hash()


def test_summary_contents(page: str) -> None:
    for text in ("embedding", "all-MiniLM-L6-v2", "bootstrap", "ensemble size M",
                 "helpful-base", "empty text", "22.5%", "incorrect pairs",
                 "No method is distinguishable from the baseline on 8 test pairs",
                 "<strong>soft+margin:flipped</strong>", "+0.042", "95% CI",
                 # "incorrect" is a rank: how many of them the ensemble still agrees with
                 "with û &gt; 0", "a rank, not a verdict", "12.3%",
                 # suspicious pairs as a share of all 40 pairs, not of the suspicious ones
                 "Suspicious pairs (share of all pairs)", "2.5%"):
        assert text in page, text


def test_tables(page: str) -> None:
    groups = re.search(r'<table class="groups-table">.*?</table>', page, re.S)
    compare = re.search(r'<table class="compare-table">.*?</table>', page, re.S)
    assert groups and groups.group(0).count("<tr>") == 11  # header + 10 groups
    assert compare and compare.group(0).count("<tr") == 9  # header + 8 methods
    assert compare.group(0).count('class="best"') == 1


def test_export_command(page: str, full_report: tuple[Path, Any]) -> None:
    run_dir = full_report[0]
    # The fake run's best method (soft+margin:flipped) is not distinguishable from the baseline
    # on test, so the page offers the baseline: never an action the numbers do not support.
    assert f"rewardlab export {run_dir} --method baseline -o FILE" in page
    assert "--method soft+margin:flipped -o" not in page
    assert "RewardTrainer" in page and "<code>margin</code>" in page
