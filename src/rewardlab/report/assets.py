"""The report page's fixed CSS and JavaScript, kept apart from the Python that fills the page.

The script is constant (the data travels separately as JSON), which lets the page allow exactly
this script by its hash in the Content-Security-Policy: even if untrusted text ever slipped
through the escaping, an injected ``<script>`` or ``onerror=`` would not run.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSS", "SCRIPT", "script_hash"]

CSS = """
:root { --fg: #1d2125; --muted: #5f6b76; --line: #d7dde3; --bg-alt: #f5f7f9; --accent: #1f5fa8;
        --bad: #b42318; --warn: #9a6700; --good: #1a7f37; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 0 1.5rem 3rem; max-width: 1400px; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 1.2rem 0 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid var(--line);
     padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.muted, figcaption, .note { color: var(--muted); }
nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            font-size: 0.9em; }
pre { background: var(--bg-alt); border: 1px solid var(--line); padding: 0.6rem 0.8rem;
      overflow-x: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.9rem;
        overflow-x: auto; }
.card td:not(.num) { overflow-wrap: anywhere; }
.card h3 { margin-top: 0.2rem; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid var(--line); padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: var(--bg-alt); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { background: #e9f6ec; font-weight: 600; }
.extras { font-size: 0.85em; color: #555; margin-top: 0.3em; }
.skipped { border-left: 4px solid var(--warn); background: #fff8e5; padding: 0.4rem 0.8rem;
           margin: 0.6rem 0; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
.best-method { font-size: 1.05rem; }
.instrument { padding: .5rem .75rem; border-left: 4px solid #888; background: #f6f6f6; }
.instrument.ok { border-color: #2a7d2a; }
.instrument.weak { border-color: #b8860b; background: #fff8e6; }
.gain-pos { color: var(--good); } .gain-neg { color: var(--bad); }
.controls { display: flex; flex-wrap: wrap; gap: 0.6rem 1rem; align-items: center;
            margin: 0.8rem 0; position: sticky; top: 0; background: #fff; padding: 0.4rem 0;
            z-index: 2; }
.controls button { padding: 0.2rem 0.7rem; cursor: pointer; }
.controls button[aria-pressed="true"] { background: var(--accent); color: #fff;
                                        border-color: var(--accent); }
#pair-table { width: 100%; table-layout: fixed; }
#pair-table th.sortable { cursor: pointer; text-decoration: underline dotted; }
#pair-table td { overflow-wrap: anywhere; white-space: pre-wrap; }
#pair-table col.c-why { width: 9rem; } #pair-table col.c-id { width: 7rem; }
#pair-table col.c-num { width: 5rem; } #pair-table col.c-small { width: 6.5rem; }
details > summary { cursor: pointer; }
details[open] > summary .preview { display: none; }
summary .more { color: var(--accent); font-size: 0.85em; margin-left: 0.3rem; }
.tag { display: inline-block; font-size: 0.78em; border-radius: 3px; padding: 0 0.35rem;
       margin: 0 0.2rem 0.2rem 0; background: var(--bg-alt); border: 1px solid var(--line); }
.tag-lowest { border-color: var(--bad); color: var(--bad); }
.tag-ambiguous { border-color: var(--warn); color: var(--warn); }
.tag-disagree { border-color: var(--accent); color: var(--accent); }
.cat-incorrect { color: var(--bad); } .cat-ambiguous { color: var(--warn); }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.85em; }
"""

SCRIPT = """
(function () {
  "use strict";
  var PREVIEW = 160;
  var source = document.getElementById("pairs-data");
  var table = document.getElementById("pair-table");
  if (!source || !table) { return; }
  var data = JSON.parse(source.textContent);
  var tbody = table.tBodies[0];
  var filters = {
    category: document.getElementById("filter-category"),
    source: document.getElementById("filter-source"),
    list: document.getElementById("filter-list")
  };
  var sortButtons = {
    mean: document.getElementById("sort-mean"),
    std: document.getElementById("sort-std")
  };
  var resetButton = document.getElementById("sort-reset");
  var countEl = document.getElementById("pair-count");
  var state = { key: "", dir: 1 };

  // Every piece of data goes in through textContent / setAttribute: never parsed as HTML.
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function textCell(cls, text) {
    var td = el("td", cls);
    if (text.length <= PREVIEW) { td.textContent = text; return td; }
    var details = el("details");
    var summary = el("summary");
    summary.appendChild(el("span", "preview", text.slice(0, PREVIEW) + "\\u2026"));
    summary.appendChild(el("span", "more", "(" + text.length + " chars)"));
    details.appendChild(summary);
    details.appendChild(el("div", "full-text", text));
    td.appendChild(details);
    return td;
  }

  function fmt(x) { return x === null ? "\\u2013" : x.toFixed(3); }

  function numCell(cls, x) {
    var td = el("td", cls + " num", fmt(x));
    td.setAttribute("data-value", x === null ? "" : String(x));
    return td;
  }

  function makeRow(r) {
    var tr = el("tr", "pair-row");
    tr.setAttribute("data-id", r.id);
    tr.setAttribute("data-category", r.category);
    var why = el("td", "col-why");
    r.lists.forEach(function (k) {
      why.appendChild(el("span", "tag tag-" + k, data.lists[k] || k));
    });
    if (r.flipped) { why.appendChild(el("span", "tag tag-flip", "flipped on purpose")); }
    r.suspicious.forEach(function (s) {
      why.appendChild(el("span", "tag tag-suspicious", "suspicious: " + s));
    });
    var extras = Object.keys(r.extras || {});
    if (extras.length) {
      why.appendChild(el("div", "extras", extras.map(function (k) {
        return k + ": " + r.extras[k];
      }).join(", ")));
    }
    tr.appendChild(why);
    tr.appendChild(el("td", "col-id", r.id));
    ["prompt", "chosen", "rejected"].forEach(function (c) {
      tr.appendChild(textCell("col-" + c, r[c]));
    });
    tr.appendChild(numCell("col-mean", r.mean));
    tr.appendChild(numCell("col-std", r.std));
    tr.appendChild(el("td", "col-category cat-" + r.category, r.category));
    tr.appendChild(el("td", "col-group num", r.group === null ? "\\u2013" : r.group));
    tr.appendChild(el("td", "col-source", r.source));
    return tr;
  }

  var rows = data.rows.map(function (r) { return { data: r, tr: makeRow(r) }; });

  function compare(a, b) {
    var x = a.data[state.key], y = b.data[state.key];
    if (x === null && y === null) { return 0; }
    if (x === null) { return 1; }   // pairs without a value last, whichever the direction
    if (y === null) { return -1; }
    return (x - y) * state.dir;
  }

  function keep(r) {
    var d = r.data;
    return (!filters.category.value || d.category === filters.category.value) &&
      (!filters.source.value || d.source === filters.source.value) &&
      (!filters.list.value || d.lists.indexOf(filters.list.value) >= 0);
  }

  function render() {
    var shown = rows.filter(keep);
    if (state.key) { shown.sort(compare); }  // Array.prototype.sort is stable
    var frag = document.createDocumentFragment();
    shown.forEach(function (r) { frag.appendChild(r.tr); });
    if (!shown.length) {
      var empty = el("tr", "empty-row");
      var td = el("td", null, "No pairs match these filters.");
      td.colSpan = 10;
      empty.appendChild(td);
      frag.appendChild(empty);
    }
    tbody.replaceChildren(frag);
    countEl.textContent = shown.length + " of " + rows.length + " pairs shown";
    table.setAttribute("data-sort-key", state.key);
    table.setAttribute("data-sort-dir", state.dir > 0 ? "asc" : "desc");
    Object.keys(sortButtons).forEach(function (k) {
      var on = state.key === k;
      var button = sortButtons[k];
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = button.getAttribute("data-label") +
        (on ? (state.dir > 0 ? " \\u25b2" : " \\u25bc") : "");
      var th = table.querySelector("th[data-sort='" + k + "']");
      th.setAttribute("aria-sort", on ? (state.dir > 0 ? "ascending" : "descending") : "none");
    });
  }

  // First click sorts ascending (lowest strength first: the likely wrong labels); again reverses.
  function sortBy(key) {
    if (state.key === key) { state.dir = -state.dir; } else { state.key = key; state.dir = 1; }
    render();
  }

  Object.keys(sortButtons).forEach(function (k) {
    sortButtons[k].addEventListener("click", function () { sortBy(k); });
  });
  Array.prototype.forEach.call(table.querySelectorAll("th.sortable"), function (th) {
    var key = th.getAttribute("data-sort");
    th.addEventListener("click", function () { sortBy(key); });
    th.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(key); }
    });
  });
  resetButton.addEventListener("click", function () { state.key = ""; state.dir = 1; render(); });
  Object.keys(filters).forEach(function (k) { filters[k].addEventListener("change", render); });
  render();
}());
"""


def script_hash() -> str:
    """The CSP source expression that allows :data:`SCRIPT` and nothing else."""
    digest = hashlib.sha256(SCRIPT.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"
