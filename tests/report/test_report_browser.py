"""The report in a real browser (headless Chromium driven by Playwright).

Checks what static tests cannot: the page's script runs without errors under its own
Content-Security-Policy, the pair browser sorts and filters, and the injected markup in the
pairs' texts shows as text and never runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fake_report_run import MALICIOUS, PAIR_LIMIT, expected_pair_ids

pytestmark = pytest.mark.browser

SKIP_REASON = "Chromium not installed: `make test` installs it with apt-get as root"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium browser context; skipped (with the reason) where Chromium or Playwright is not.

    Playwright normally passes its own temporary profile; where that launch fails, a persistent
    context on a fresh empty profile directory is the fallback.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip(SKIP_REASON)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"{SKIP_REASON} (playwright not importable: {exc})")

    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception:  # any launch failure: try the documented fallback below
            profile = tmp_path_factory.mktemp("chromium-profile")
            context = p.chromium.launch_persistent_context(
                str(profile), executable_path=executable, args=CHROMIUM_ARGS)
            yield context
            context.close()
            return
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        yield context
        context.close()
        browser.close()


class LoadedPage:
    """A report page opened in the browser, with every error and dialog it produced."""

    def __init__(self, context: Any, url: str) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page = context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._on_dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def column(self, name: str) -> list[str]:
        """The text of one column of the shown pair rows, top to bottom."""
        return self.page.eval_on_selector_all(
            f"#pair-table tr.pair-row td.col-{name}", "els => els.map(e => e.textContent)")

    def numbers(self, name: str) -> list[float]:
        """A numeric column (û or σ̂) of the shown rows, at full precision."""
        return self.page.eval_on_selector_all(
            f"#pair-table tr.pair-row td.col-{name}",
            "els => els.map(e => parseFloat(e.getAttribute('data-value')))")

    def rows(self) -> int:
        return self.page.locator("#pair-table tr.pair-row").count()


@pytest.fixture
def report(browser_context: Any, full_report: tuple[Path, Any]) -> Iterator[LoadedPage]:
    loaded = LoadedPage(browser_context, full_report[1].html.resolve().as_uri())
    yield loaded
    loaded.page.close()


def _expected(full_report: tuple[Path, Any]) -> tuple[set[str], list[dict[str, Any]]]:
    table = pq.read_table(full_report[0] / "strength" / "strength.parquet")
    ids = set().union(*expected_pair_ids(table, PAIR_LIMIT).values())
    return ids, [r for r in table.to_pylist() if r["id"] in ids]


def test_page_loads_cleanly_and_offline(report: LoadedPage, full_report: tuple[Path, Any],
                                        tmp_path: Path) -> None:
    ids, _ = _expected(full_report)
    assert report.rows() == len(ids)
    shown = report.page.eval_on_selector_all("#pair-table tr.pair-row",
                                             "els => els.map(e => e.getAttribute('data-id'))")
    assert set(shown) == ids
    assert report.page.locator("#figures img").count() == 8
    assert report.page.text_content("#pair-count") == f"{len(ids)} of {len(ids)} pairs shown"
    assert report.errors == [], report.errors
    # Only the file itself and its inline data: URIs: nothing from the network.
    assert all(u.startswith(("file://", "data:")) for u in report.requests), report.requests
    report.page.screenshot(path=str(tmp_path / "report-top.png"))
    report.page.locator("#pairs").screenshot(path=str(tmp_path / "report-pairs.png"))
    assert (tmp_path / "report-pairs.png").stat().st_size > 0


def test_injected_markup_stays_text(report: LoadedPage) -> None:
    assert report.page.evaluate("typeof window.__pwned") == "undefined"
    assert report.dialogs == []
    assert report.page.locator("#pair-table img, #pair-table script").count() == 0
    cells = " ".join(report.column("prompt") + report.column("chosen") + report.column("rejected"))
    for bad in MALICIOUS:
        assert bad in cells, f"{bad!r} not shown as text"
    assert report.errors == [], report.errors


def test_sort_by_mean_and_std(report: LoadedPage) -> None:
    before = report.numbers("mean")
    report.page.click("#sort-mean")
    ascending = report.numbers("mean")
    assert ascending == sorted(before)
    assert report.page.get_attribute("#pair-table", "data-sort-dir") == "asc"
    assert report.page.get_attribute("#sort-mean", "aria-pressed") == "true"
    report.page.click("#sort-mean")
    assert report.numbers("mean") == sorted(before, reverse=True)
    # Header clicks sort too; σ̂ starts ascending.
    report.page.click("#pair-table th[data-sort='std']")
    stds = report.numbers("std")
    assert stds == sorted(stds)
    report.page.click("#sort-std")
    assert report.numbers("std") == sorted(stds, reverse=True)
    report.page.click("#sort-reset")
    assert report.numbers("mean") == before
    assert report.errors == [], report.errors


def test_filters(report: LoadedPage, full_report: tuple[Path, Any]) -> None:
    ids, rows = _expected(full_report)
    by_category: dict[str, int] = {}
    for r in rows:
        by_category[r["category"]] = by_category.get(r["category"], 0) + 1

    report.page.select_option("#filter-category", "incorrect")
    assert report.rows() == by_category["incorrect"]
    assert set(report.column("category")) == {"incorrect"}
    report.page.select_option("#filter-category", "")
    assert report.rows() == len(ids)

    source = rows[0]["source"]
    report.page.select_option("#filter-source", source)
    assert report.rows() == sum(r["source"] == source for r in rows)
    assert set(report.column("source")) == {source}
    report.page.select_option("#filter-source", "")

    report.page.select_option("#filter-list", "lowest")
    assert report.rows() == PAIR_LIMIT
    assert all("lowest" in why for why in report.column("why"))

    # Filters combine; a combination with no pairs says so instead of showing an empty table.
    report.page.select_option("#filter-category", "normal")
    assert report.rows() == 0
    assert report.page.locator("#pair-table tr.empty-row").count() == 1
    assert report.errors == [], report.errors


def test_long_text_is_collapsed_until_clicked(report: LoadedPage) -> None:
    details = report.page.locator("#pair-table tr[data-id='pair-000'] td.col-rejected details")
    assert details.count() == 1, "the long answer was not collapsed"
    full = details.locator(".full-text")
    assert not full.is_visible()
    details.locator("summary").click()
    assert full.is_visible()
    assert "A long answer that the browser should collapse." in full.text_content()
