"""Assemble the report: one self-contained HTML file (figures inlined, no network).

All text that comes from data (prompts, answers, ids, sources, file names, settings) is
untrusted: it goes through :func:`esc` into HTML, or through :func:`embed_json` into the pair
browser's JSON, which the page's script turns into DOM nodes with ``textContent`` only. A
Content-Security-Policy that allows no network access and only the page's own script (by hash)
backs this up.
"""

from __future__ import annotations

import base64
import html
import json
import math
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab import __version__
from rewardlab.report.assets import CSS, SCRIPT, script_hash
from rewardlab.report.figures import FigureResult
from rewardlab.report.loaders import RunResults
from rewardlab.report.pairs import LISTS
from rewardlab.report.stats import BestMethod, category_counts, fraction_negative

__all__ = ["PageInput", "embed_json", "esc", "render_page"]

# The settings a reader looks for first, with their labels; any others go in a collapsed list.
_MAIN_SETTINGS = {"backend": "backend", "model": "model", "members": "ensemble size M",
                  "scheme": "scheme", "seed": "seed"}
_CATEGORY_ORDER = ("incorrect", "ambiguous", "normal")


@dataclass
class PageInput:
    """What the page shows; built by :func:`rewardlab.report.build_report`."""

    run_dir: Path
    results: RunResults
    figures: list[FigureResult]
    pairs: list[dict[str, Any]]
    pair_limit: int
    best: BestMethod | None
    notes: list[str] = field(default_factory=list)


def esc(value: Any) -> str:
    """HTML-escape anything (quotes too, so the result is safe in attribute values)."""
    return html.escape(str(value), quote=True)


def embed_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e`` and ``\\u0026``: still the same JSON
    to ``JSON.parse``, but ``</script>`` or ``<!--`` in a text can no longer end the element or
    switch the HTML parser into a comment state.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# --- small formatting helpers ------------------------------------------------------------------

def _num(x: Any, digits: int = 3) -> str:
    """Numbers for tables: ints with thousands separators, floats rounded, missing as a dash."""
    if isinstance(x, bool) or x is None:
        return "–" if x is None else esc(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return "–" if math.isnan(x) else f"{x:.{digits}f}"
    return esc(x)


def _pm(mean: Any, std: Any) -> str:
    """"mean ± std" with a dash for a missing part."""
    if not isinstance(mean, (int, float)):
        return "–"
    return f"{_num(float(mean))} ± {_num(float(std))}" if isinstance(std, (int, float)) \
        else _num(float(mean))


def _signed(x: float | None) -> str:
    """A gain with its sign and a colour class (green up, red down)."""
    if x is None or math.isnan(x):
        return "–"
    cls = "gain-pos" if x > 0 else "gain-neg" if x < 0 else ""
    return f'<span class="{cls}">{x:+.3f}</span>'


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], *, cls: str = "",
           row_classes: Iterable[str] | None = None, numeric: Iterable[int] = ()) -> str:
    """An HTML table of already-escaped cells; ``numeric`` column indices are right-aligned."""
    numeric = set(numeric)

    def cell(tag: str, i: int, value: str) -> str:
        return f'<{tag} class="num">{value}</{tag}>' if i in numeric else f"<{tag}>{value}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(headers))
    row_cls = list(row_classes) if row_classes is not None else None
    body = []
    for k, row in enumerate(rows):
        attr = f' class="{row_cls[k]}"' if row_cls and row_cls[k] else ""
        body.append(f"<tr{attr}>" + "".join(cell("td", i, v) for i, v in enumerate(row))
                    + "</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _counts_table(title: str, counts: Any, key_header: str, total: Any = None) -> str:
    """A card with a count table (e.g. pairs by source); nothing when there are no counts.

    Shares are of ``total`` when given (all pairs: a pair can be suspicious of several kinds,
    so the counts need not add up), else of the counts' sum.
    """
    if not isinstance(counts, Mapping) or not any(counts.values()):
        return ""
    if not isinstance(total, int):
        total = sum(v for v in counts.values() if isinstance(v, (int, float)))
    rows = [[esc(k), _num(v), f"{v / total:.1%}" if total and isinstance(v, (int, float))
             else "–"] for k, v in counts.items()]
    return (f'<div class="card"><h3>{esc(title)}</h3>'
            f"{_table([key_header, 'pairs', 'share'], rows, numeric=(1, 2))}</div>")


def _kv_card(title: str, items: Iterable[tuple[str, str]], extra: str = "") -> str:
    """A card with a two-column label/value table (values already escaped)."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<div class="card"><h3>{esc(title)}</h3><table>{rows}</table>{extra}</div>'


# --- sections ----------------------------------------------------------------------------------

def _settings(results: RunResults) -> dict[str, Any]:
    """run.json's settings, completed from summary.json (a plain strength output has only it)."""
    settings = dict((results.run_info or {}).get("settings") or {})
    for key in _MAIN_SETTINGS:
        if key not in settings and results.summary and key in results.summary:
            settings[key] = results.summary[key]
    return settings


def _data_cards(results: RunResults) -> list[str]:
    run = results.run_info or {}
    data = run.get("data") if isinstance(run.get("data"), Mapping) else {}
    pairs = data.get("pairs")
    if pairs is None and results.summary:
        pairs = results.summary.get("n")
    if pairs is None and results.strength is not None:
        pairs = results.strength.num_rows
    items = [("pairs", _num(pairs))]
    split = run.get("split")
    if isinstance(split, Mapping):
        items += [(f"{k} pairs", _num(v)) for k, v in split.items()]
    cards = [_kv_card("Data", items)]
    cards += [_counts_table("Pairs by source", data.get("by_source"), "source"),
              _counts_table("Pairs by file", data.get("by_file"), "file"),
              _counts_table("Skipped records", data.get("skipped"), "reason"),
              _counts_table("Suspicious pairs (share of all pairs)", data.get("suspicious"),
                            "kind", pairs)]
    return [c for c in cards if c]


def _settings_card(results: RunResults) -> str:
    settings = _settings(results)
    if not settings:
        return _kv_card("Settings", [("settings", "not recorded (no run.json or summary.json)")])
    items = [(label, esc(settings[key])) for key, label in _MAIN_SETTINGS.items()
             if key in settings]
    others = {k: v for k, v in settings.items() if k not in _MAIN_SETTINGS}
    extra = ""
    if others:
        rows = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(json.dumps(v, default=str))}"
                       "</code></td></tr>" for k, v in sorted(others.items()))
        extra = f"<details><summary>all settings ({len(others)} more)</summary>" \
                f"<table>{rows}</table></details>"
    return _kv_card("Settings", items, extra)


def _strength_card(results: RunResults) -> str:
    items: list[tuple[str, str]] = []
    frac = fraction_negative(results)
    if frac is not None:
        items.append(("pairs with û < 0", f"{frac:.1%}"))
    rho = (results.summary or {}).get("spearman_mean_std")
    if isinstance(rho, (int, float)):
        items.append(("Spearman(û, σ̂)", _num(float(rho))))
    counts = category_counts(results)
    total = sum(counts.values())
    for cat in [*(c for c in _CATEGORY_ORDER if c in counts),
                *(c for c in counts if c not in _CATEGORY_ORDER)]:
        share = f" ({counts[cat] / total:.1%})" if total else ""
        items.append((f"{cat} pairs", f'<span class="cat-{esc(cat)}">{_num(counts[cat])}'
                      f"</span>{share}"))
    items += _rank_notes(results.summary or {})
    if not items:
        items.append(("strength", "no strength results"))
    return _kv_card("Preference strength", items, _quantiles_table(results))


def _rank_notes(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """"incorrect" is a rank, not a verdict; and the noise rate flip@auto would flip."""
    items = []
    positive = summary.get("incorrect_with_positive_strength")
    if isinstance(positive, int):
        items.append(("“incorrect” with û > 0", f"{_num(positive)} <span class=\"muted\">"
                      "(the lowest 20% by rank: a rank, not a verdict)</span>"))
    rate = summary.get("estimated_noise_rate")
    noise = summary.get("noise")
    if isinstance(noise, Mapping) and noise.get("status") != "estimated":
        why = ("the self-tested ensemble found no evidence of any" if noise.get("status")
               == "clean" else "no evidence: 0 here does not mean clean data")
        items.append(("estimated share of wrong labels", f"0 <span class=\"muted\">({why})"
                      "</span>"))
    elif isinstance(rate, (int, float)) and math.isfinite(rate):
        scheme = summary.get("scheme")
        note = "" if scheme == "crossfit" else (
            ' <span class="muted">(in-sample û: members saw these labels, so this '
            "underestimates; cross-fitted strength is what flip@auto should read)</span>")
        items.append(("estimated share of wrong labels", f"{rate:.1%}{note}"))
    return items


def _quantiles_table(results: RunResults) -> str:
    quantiles = (results.summary or {}).get("quantiles")
    if not isinstance(quantiles, Mapping):
        return ""
    names = {"strength_mean": "û", "strength_std": "σ̂"}
    qs = sorted({q for v in quantiles.values() if isinstance(v, Mapping) for q in v},
                key=lambda q: float(q) if _is_number(q) else math.inf)
    rows = [[esc(names.get(col, col)), *(_num(v.get(q)) for q in qs)]
            for col, v in quantiles.items() if isinstance(v, Mapping)]
    headers = ["", *(f"{float(q):.0%}" if _is_number(q) else str(q) for q in qs)]
    return "<h3>Quantiles</h3>" + _table(headers, rows, numeric=range(1, len(qs) + 1))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _best_line(best: BestMethod | None) -> str:
    if best is None:
        return '<p class="muted">No methods comparison in this run (no compare/compare.json).</p>'
    acc = f", validation accuracy {_num(best.valid_accuracy_mean)}" \
        if best.valid_accuracy_mean is not None else ""
    where = "test" if best.gain_split == "test" else "validation"
    gain = f", {_signed(best.gain_over_baseline)} over the baseline on {where}" \
        if best.gain_over_baseline is not None else ""
    if best.gain_ci95 is not None:
        gain += f" (95% CI {_signed(best.gain_ci95[0])} to {_signed(best.gain_ci95[1])})"
    source = f' <span class="muted">(from {esc(best.source)})</span></p>'
    if best.distinguishable is False:
        return (f'<p class="best-method">No method is distinguishable from the baseline on '
                f"{_num(best.gain_pairs)} {where} pairs: the best on validation, "
                f"<strong>{esc(best.method)}</strong>{acc}{gain}.{source}")
    return (f'<p class="best-method">Best method (picked on validation): '
            f"<strong>{esc(best.method)}</strong>{acc}{gain}{source}")


def _instrument_line(summary: Mapping[str, Any] | None) -> str:
    """The self-test's verdict, first on the page: whether the ensemble's ranks can be acted
    on at all."""
    inst = (summary or {}).get("instrument")
    if not isinstance(inst, Mapping) or not isinstance(inst.get("verdict"), str):
        return ('<p class="instrument muted">This ensemble was not self-tested (run '
                "<code>strength --self-test</code>): its ranks of wrong labels are unverified, "
                "and an estimated noise rate of 0 would not mean clean data.</p>")
    cls = "instrument ok" if inst.get("ok") else "instrument weak"
    return f'<p class="{cls}"><strong>Self-test:</strong> {esc(inst["verdict"])}.</p>'


def _summary_section(page: PageInput) -> str:
    cards = [*_data_cards(page.results), _settings_card(page.results),
             _strength_card(page.results)]
    return (f'<section id="summary"><h2>Summary</h2>{_instrument_line(page.results.summary)}'
            f'{_best_line(page.best)}<div class="grid">{"".join(cards)}</div></section>')


def _notes_section(page: PageInput) -> str:
    skipped = [f"<li><strong>{esc(f.name)}</strong>: {esc(f.skipped)}</li>"
               for f in page.figures if f.skipped]
    notes = [f"<li>{esc(n)}</li>" for n in page.notes]
    if not skipped and not notes:
        return ""
    return ('<section id="notes" class="skipped"><h2>Not in this report</h2>'
            f"<ul>{''.join(notes + skipped)}</ul></section>")


def _figure_html(fig: FigureResult) -> str:
    if fig.skipped or fig.png is None:
        return (f'<div class="skipped" id="{esc(fig.name)}">{esc(fig.spec.title)}: skipped '
                f"({esc(fig.skipped)})</div>")
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    files = f"figures/{fig.name}.png, figures/{fig.name}.svg"
    return (f'<figure id="{esc(fig.name)}"><h3>{esc(fig.spec.title)}</h3>'
            f'<img src="data:image/png;base64,{data}" alt="{esc(fig.spec.title)}">'
            f"<figcaption>{esc(fig.spec.caption)} <span class=\"muted\">Files: {esc(files)}"
            "</span></figcaption></figure>")


def _figures_section(figures: list[FigureResult]) -> str:
    return (f'<section id="figures"><h2>Figures</h2>'
            f"{''.join(_figure_html(f) for f in figures)}</section>")


def _groups_table(groups: list[dict[str, Any]]) -> str:
    rows = []
    for r in sorted(groups, key=lambda r: r.get("group") if isinstance(r.get("group"), int)
                    else 0):
        seeds = r.get("valid_accuracy")
        per_seed = ", ".join(_num(a) for a in seeds) if isinstance(seeds, list) else "–"
        rows.append([_num(r.get("group")), _num(r.get("n_train")), _num(r.get("mean_strength")),
                     _pm(r.get("valid_accuracy_mean"), r.get("valid_accuracy_std")), per_seed,
                     _num(r.get("train_loss"))])
    headers = ["group", "training pairs", "mean û", "validation accuracy", "per seed",
               "train loss"]
    return _table(headers, rows, cls="groups-table", numeric=(0, 1, 2, 3, 5))


def _compare_table(compare: list[dict[str, Any]], best: BestMethod | None) -> str:
    base = next((r.get("valid_accuracy_mean") for r in compare if r.get("method") == "baseline"),
                None)
    rows, classes = [], []
    for r in compare:
        acc = r.get("valid_accuracy_mean")
        gain = acc - base if isinstance(acc, (int, float)) and isinstance(base, (int, float)) \
            else None
        seeds = r.get("seeds")
        rows.append([esc(r.get("method")), _pm(acc, r.get("valid_accuracy_std")), _signed(gain),
                     _num(r.get("valid_loss")), _num(r.get("ece")), _num(r.get("n_train")),
                     _num(len(seeds)) if isinstance(seeds, list) else _num(seeds)])
        classes.append("best" if best and r.get("method") == best.method else "")
    headers = ["method", "validation accuracy", "vs baseline", "validation loss", "ECE",
               "training pairs", "seeds"]
    return _table(headers, rows, cls="compare-table", row_classes=classes,
                  numeric=(1, 2, 3, 4, 5, 6))


def _tables_section(page: PageInput) -> str:
    parts = ['<section id="tables"><h2>Tables</h2><h3>Training on one strength group</h3>']
    results = page.results
    parts.append(_groups_table(results.groups) if results.groups
                 else '<p class="skipped">No groups/groups.json in this run.</p>')
    parts.append("<h3>Methods</h3>")
    parts.append(_compare_table(results.compare, page.best) if results.compare
                 else '<p class="skipped">No compare/compare.json in this run.</p>')
    parts.append("</section>")
    return "".join(parts)


def _options(values: Iterable[str], all_label: str) -> str:
    """<option>s for a filter: "all" (empty value) first, then each value, escaped."""
    opts = [f'<option value="">{esc(all_label)}</option>']
    opts += [f'<option value="{esc(v)}">{esc(v)}</option>' for v in values]
    return "".join(opts)


def _pairs_section(page: PageInput) -> str:
    if page.results.strength is None:
        return ('<section id="pairs"><h2>Pairs to look at</h2><p class="skipped">No strength '
                "table (strength/strength.parquet): no pairs to show.</p></section>")
    rows = page.pairs
    present = {r["category"] for r in rows if r["category"]}
    categories = [c for c in _CATEGORY_ORDER if c in present] + sorted(present
                                                                       - set(_CATEGORY_ORDER))
    sources = sorted({r["source"] for r in rows if r["source"]})
    list_opts = "".join(f'<option value="{esc(k)}">{esc(v)}</option>' for k, v in LISTS.items())
    payload = embed_json({"lists": LISTS, "rows": rows})
    explain = "; ".join(esc(v) for v in LISTS.values())
    inst = (page.results.summary or {}).get("instrument") or {}
    gauge = (f'<p class="{"instrument ok" if inst.get("ok") else "instrument weak"}">'
             f"“incorrect” is a rank by û. Self-test: {esc(inst['verdict'])}.</p>"
             if isinstance(inst.get("verdict"), str) else
             '<p class="instrument muted">“incorrect” is a rank by û, from an ensemble that '
             "was not self-tested.</p>")
    return f"""<section id="pairs"><h2>Pairs to look at</h2>{gauge}
<p>Up to {page.pair_limit:,} pairs from each list: {explain}. A pair on several lists is shown
once with all its tags ({len(rows):,} pairs). Click a long text to read all of it.</p>
<div class="controls">
<label>List <select id="filter-list"><option value="">all lists</option>{list_opts}</select></label>
<label>Category <select id="filter-category">{_options(categories, "all categories")}</select>
</label>
<label>Source <select id="filter-source">{_options(sources, "all sources")}</select></label>
<button type="button" id="sort-mean" data-label="sort by û" aria-pressed="false">sort by û</button>
<button type="button" id="sort-std" data-label="sort by σ̂" aria-pressed="false">sort by σ̂</button>
<button type="button" id="sort-reset">list order</button>
<span id="pair-count" class="muted" aria-live="polite"></span>
</div>
<table id="pair-table" data-sort-key="" data-sort-dir="asc">
<colgroup><col class="c-why"><col class="c-id"><col><col><col><col class="c-num"><col class="c-num">
<col class="c-small"><col class="c-num"><col class="c-small"></colgroup>
<thead><tr><th>why listed</th><th>id</th><th>prompt</th><th>chosen</th><th>rejected</th>
<th class="num sortable" data-sort="mean" tabindex="0" aria-sort="none">û</th>
<th class="num sortable" data-sort="std" tabindex="0" aria-sort="none">σ̂</th>
<th>category</th><th class="num">group</th><th>source</th></tr></thead>
<tbody></tbody></table>
<noscript><p class="skipped">The pair browser needs JavaScript.</p></noscript>
<script type="application/json" id="pairs-data">{payload}</script>
</section>"""


def _export_section(page: PageInput) -> str:
    # Only what the run's numbers support: a best method whose test gain is not
    # distinguishable from 0 exports as the baseline.
    method = ("NAME" if page.best is None else "baseline" if page.best.distinguishable is False
              else page.best.method)
    methods = [r["method"] for r in page.results.compare or [] if isinstance(r.get("method"), str)]
    command = (f"rewardlab export {shlex.quote(str(page.run_dir))} "
               f"--method {shlex.quote(method)} -o FILE")
    others = (f"<p>Methods in this run: {', '.join(f'<code>{esc(m)}</code>' for m in methods)}."
              "</p>") if methods else ""
    chosen = "the best method of this run" if page.best else "a method (baseline, flip, ...)"
    return f"""<section id="export"><h2>Export the training pairs</h2>
<p>To train elsewhere with {esc(chosen)}:</p>
<pre><code id="export-command">{esc(command)}</code></pre>
<p>This writes the training pairs with the method's label flips applied and a
<code>margin</code> column, in the layout TRL's <code>RewardTrainer</code> reads
(<code>chosen</code>, <code>rejected</code>, <code>margin</code>). Replace <code>FILE</code> with
the output path.</p>{others}</section>"""


def render_page(page: PageInput) -> str:
    """The whole report as one HTML string."""
    title = f"rewardlab report: {page.run_dir.name or page.run_dir}"
    # No network at all: images are data: URIs, CSS and the one script are inline (the script
    # allowed by hash, so injected inline scripts and event handlers could not run either).
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src {script_hash()}; base-uri 'none'; form-action 'none'")
    body = "".join([
        _notes_section(page),
        _summary_section(page),
        _figures_section(page.figures),
        _tables_section(page),
        _pairs_section(page),
        _export_section(page),
    ])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">
<meta name="referrer" content="no-referrer">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="muted">Results read from <code>{esc(page.run_dir)}</code>. Nothing was trained to
make this page.</p>
<nav><a href="#summary">Summary</a><a href="#figures">Figures</a><a href="#tables">Tables</a>\
<a href="#pairs">Pairs</a><a href="#export">Export</a></nav>
</header>
{body}
<footer>Made by rewardlab {esc(__version__)}. The page is self-contained: it loads nothing from
the network and can be mailed or archived as one file.</footer>
<script>{SCRIPT}</script>
</body>
</html>
"""
