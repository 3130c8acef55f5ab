"""The summary as one self-contained HTML page: inline CSS, SVG charts and a few lines of
JavaScript to sort tables. Nothing is fetched (a Content-Security-Policy forbids it, and
only the page's own script, by hash, may run).

IANA's caveat is a banner at the top. Every string from packets or the registry is
escaped with ``html.escape``; the JSON copy of the data in a ``<script
type="application/json">`` block has ``<``, ``>`` and ``&`` written as ``\\u00XX`` so it
can never close the element or open a comment.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any, TextIO

from portsniff.report import summary_charts as charts
from portsniff.report import summary_view as sv
from portsniff.report.summaries import ReportOptions
from portsniff.summary import Summary

TIMELINE_SERIES = 6  # services drawn over time
BAR_ROWS = 12  # rows in the bytes-by-service chart
INSTANCES_OPEN = 10  # DNS-SD instances shown before "show all"
CLASS_COLORS = {"system": "#0072b2", "user": "#e69f00", "dynamic": "#009e73"}

_SORT_JS = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent.trim(); }
    var n = Number(v);
    return v !== "" && !isNaN(n) ? [0, n] : [1, v.toLowerCase()];
  }
  function sortBy(table, index, th) {
    var numeric = th.classList.contains("num");
    var current = th.getAttribute("aria-sort");
    var asc = current ? current !== "ascending" : !numeric;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      c.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      var c = x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (t) {
    Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.title = "Sort by " + th.textContent;
      th.addEventListener("click", function () { sortBy(t, i, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(t, i, th); }
      });
    });
  });
})();
""".strip()

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--head:#f0f2f5;
--accent:#0072b2;--track:#e4e7eb;--warn-bg:#fff8e1;--warn-line:#e6a700;--warn-fg:#5c4300;
--code:#f3f4f6;font-synthesis:none}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1e24;--fg:#e4e7eb;
--muted:#9aa5b1;--line:#2d333b;--head:#22272e;--track:#2d333b;--warn-bg:#2b2410;
--warn-line:#e6a700;--warn-fg:#f5d77a;--code:#22272e}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.caveat{position:sticky;top:0;z-index:5;background:var(--warn-bg);color:var(--warn-fg);
border-bottom:2px solid var(--warn-line);padding:10px 28px;font-size:12.5px}
.caveat strong{display:block;font-size:11px;letter-spacing:.04em;text-transform:uppercase}
.caveat q{quotes:"\\201C" "\\201D";font-weight:600}
main{max-width:1400px;margin:0 auto;padding:20px 28px 48px}
header h1{font-size:24px;margin:8px 0 2px}
header p{margin:0;color:var(--muted)}
nav{margin:14px 0 4px;display:flex;flex-wrap:wrap;gap:6px}
nav a{color:var(--accent);text-decoration:none;border:1px solid var(--line);
background:var(--card);border-radius:999px;padding:2px 12px;font-size:12.5px}
nav a:hover{border-color:var(--accent)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;
margin:16px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.kpi span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.charts{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;
margin:0 0 16px}
.card.wide{grid-column:1/-1}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:14px 0 6px}
.note,.empty{color:var(--muted);font-size:12.5px;margin:0 0 8px}
svg.chart{width:100%;height:auto;display:block}
svg text{fill:var(--fg);font-size:12px}
svg text.val,svg text.tick,svg tspan.val{fill:var(--muted)}
svg text.center{font-size:17px;font-weight:600}
svg line.grid{stroke:var(--line);stroke-width:1}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600;white-space:nowrap;position:relative}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th::after{content:"\\2195";color:var(--muted);font-size:10px;margin-left:4px}
th[aria-sort=ascending]::after{content:"\\25B2"}
th[aria-sort=descending]::after{content:"\\25BC"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums}
tbody tr:hover{background:var(--head)}
code{font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);
border-radius:4px;padding:1px 4px;word-break:break-all;user-select:all}
.filters{min-width:260px;max-width:560px}
.filters code{word-break:normal;overflow-wrap:anywhere}
.filters summary{cursor:pointer;color:var(--accent);font-size:12px}
.filters div{margin:1px 0}
.filters small{color:var(--muted);display:inline-block;width:62px}
.tag{display:inline-block;white-space:nowrap;border-radius:4px;padding:0 6px;font-size:11.5px;margin:1px 2px 1px 0;
background:var(--head);border:1px solid var(--line)}
.tag.warn{border-color:var(--warn-line);background:var(--warn-bg);color:var(--warn-fg)}
dl.pairs{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0 0 6px}
dl.pairs dt{color:var(--muted)}
dl.pairs dd{margin:0}
footer{color:var(--muted);font-size:12px;margin-top:24px}
@media (max-width:900px){.charts{grid-template-columns:1fr}}
@media print{.caveat{position:static}nav{display:none}.card{break-inside:avoid}}
""".strip()


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element: no ``</``, ``<!--``
    or ``]]>`` can appear, and U+2028/2029 are escaped too."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for ch, rep in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, rep)
    return text


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


# -- tables --------------------------------------------------------------------------


_TIME_COLUMNS = frozenset({"First seen", "Last seen", "Start", "First packet", "Last packet"})
_FLAG_COLUMNS = frozenset({"Flags", "Notes"})


def _cell_html(col: sv.Column, cell: sv.Cell) -> str:
    attrs = ""
    if cell.sort is not None:
        attrs += f' data-sort="{_e(cell.sort)}"'
    cls = "num" if col.numeric else "t" if col.name in _TIME_COLUMNS else ""
    if cls:
        attrs += f' class="{cls}"'
    if cell.code:
        body = f"<code>{_e(cell.text)}</code>" if cell.text else ""
    elif col.name in _FLAG_COLUMNS and cell.text:
        body = "".join(_tag(t) for t in cell.text.split(", "))
    elif "\n" in cell.text:
        lines = cell.text.split("\n")
        body = "<br>".join(_e(x) for x in lines[:INSTANCES_OPEN])
        if len(lines) > INSTANCES_OPEN:
            rest = "<br>".join(_e(x) for x in lines[INSTANCES_OPEN:])
            body += (
                f"<details><summary>{len(lines) - INSTANCES_OPEN} more</summary>{rest}</details>"
            )
    else:
        body = _e(cell.text)
    return f"<td{attrs}>{body}</td>"


def _tag(text: str) -> str:
    warn = "IANA" in text or "ambiguous" in text
    return f'<span class="tag{" warn" if warn else ""}">{_e(text)}</span>'


def table_html(table: sv.Table, *, sortable: bool = True) -> str:
    """A table (BPF and display filter columns merged into one "Filters" cell), or the
    table's empty message."""
    if not table.rows:
        return f'<p class="empty">{_e(table.empty.capitalize())}.</p>'
    names = [c.name for c in table.columns]
    fcols = [names.index(n) for n in ("BPF", "Display filter") if n in names]
    head = []
    for i, c in enumerate(table.columns):
        if i in fcols:
            if i == fcols[0]:
                head.append("<th>Filters</th>")
            continue
        num = ' class="num"' if c.numeric else ""
        head.append(f'<th scope="col"{num}>{_e(c.name)}</th>')
    body = []
    for row in table.rows:
        cells = []
        for i, (c, cell) in enumerate(zip(table.columns, row, strict=True)):
            if i in fcols:
                if i == fcols[0]:
                    cells.append(_filters_cell([row[j] for j in fcols], table.key == "flows"))
                continue
            cells.append(_cell_html(c, cell))
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return (
        f'<div class="scroll"><table{cls} id="t-{_e(table.key)}"><thead><tr>'
        + "".join(head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _filters_cell(cells: list[sv.Cell], folded: bool) -> str:
    labels = ("BPF", "Wireshark")
    parts = "".join(
        f"<div><small>{label}</small><code>{_e(c.text)}</code></div>"
        for label, c in zip(labels, cells, strict=False)
        if c.text
    )
    if folded and parts:
        # A conversation's filters run to several lines: folded, so rows stay compact.
        parts = f"<details><summary>BPF / Wireshark filter</summary>{parts}</details>"
    return f'<td class="filters">{parts}</td>'


# -- page ----------------------------------------------------------------------------


def _kpis(summary: Summary, view: sv.View) -> str:
    unknown = sum(r.bytes for r in summary.unknown_rows())
    items = [
        ("Packets", sv.count(summary.packets)),
        ("Bytes", sv.human_bytes(summary.bytes)),
        ("Duration", sv.duration(summary.capture_dict()["duration"])),
        ("Services", sv.count(len(summary.service_rows()))),
        ("Conversations", sv.count(summary.flow_total)),
        ("Unknown-port bytes", sv.percent(unknown, summary.bytes)),
    ]
    return (
        '<section class="kpis">'
        + "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in items)
        + "</section>"
    )


def _charts(summary: Summary, view: sv.View) -> str:
    rows = sorted(summary.services.values(), key=lambda r: (-r.bytes, r.proto, r.port))
    bar_items = [
        charts.Bar(
            f"{sv.service_label(r)} {r.proto}/{r.port}",
            r.bytes,
            f"{sv.human_bytes(r.bytes)} · {sv.percent(r.bytes, summary.bytes)}",
            charts.PALETTE[0] if r.status == "assigned" else charts.MUTED,
        )
        for r in rows[:BAR_ROWS]
    ]
    if bar_items:
        bar_svg = charts.bars(bar_items, title="Bytes by service")
        more = len(rows) - len(bar_items)
        if more > 0:
            bar_svg += f'<p class="note">{more} smaller rows not drawn.</p>'
        bar_svg += (
            '<p class="note">Grey: unassigned or reserved ports.</p>'
            if any(r.status != "assigned" for r in rows[:BAR_ROWS])
            else ""
        )
    else:
        bar_svg = '<p class="empty">No traffic on TCP, UDP, SCTP or DCCP ports.</p>'
    classes = sv.port_class_bytes(summary)
    total = sum(classes.values())
    parts = [
        charts.Bar(
            f"{name} ports",
            value,
            f"{sv.human_bytes(value)} · {sv.percent(value, total)}",
            CLASS_COLORS[name],
        )
        for name, value in classes.items()
    ]
    donut_svg = (
        charts.donut(parts, title="Bytes by port class", center=sv.human_bytes(total))
        if total
        else '<p class="empty">No traffic on ports.</p>'
    )
    top = summary.service_rows()[:TIMELINE_SERIES]
    series = [
        charts.Series(
            f"{sv.service_label(r)} {r.proto}/{r.port}",
            charts.PALETTE[i % len(charts.PALETTE)],
            r.timeline,
        )
        for i, r in enumerate(top)
        if r.timeline.bins
    ]
    line_svg = (
        charts.lines(
            series, title="Traffic over time, top services", clock=view.clock, human=sv.human_bytes
        )
        if series
        else '<p class="empty">No service traffic to draw over time.</p>'
    )
    return (
        '<section class="charts" id="charts">'
        f'<div class="card"><h2>Bytes by service</h2>{bar_svg}</div>'
        f'<div class="card"><h2>Port classes</h2>{donut_svg}'
        '<p class="note">RFC 6335: system 0–1023, user 1024–49151, dynamic 49152–65535.</p>'
        "</div>"
        f'<div class="card wide"><h2>Traffic over time (top services)</h2>{line_svg}</div>'
        "</section>"
    )


def _section(anchor: str, title: str, body: str, note: str | None = None) -> str:
    note_html = f'<p class="note">{_e(note)}</p>' if note else ""
    return f'<section class="card" id="{anchor}"><h2>{_e(title)}</h2>{note_html}{body}</section>'


def render(summary: Summary, stream: TextIO, options: ReportOptions) -> None:
    """Write the HTML summary of ``summary`` to ``stream``."""
    view = sv.build(summary, options, filters=True, max_instances=None)
    script = _SORT_JS
    files = [str(f.get("file")) for f in summary.files]
    subtitle = [f"{len(files)} file{'s' if len(files) != 1 else ''}"]
    if summary.first_ts is not None:
        subtitle.append(f"{sv.utc(summary.first_ts)} – {sv.utc(summary.last_ts)} UTC")
    if summary.registry:
        src = summary.registry[0]
        subtitle.append(
            f"registry {sv.clean(src.get('kind'))}, updated "
            f"{sv.clean(src.get('updated')) or 'date not stated'}"
        )
    title = "portsniff summary" + (f": {sv.clean(files[0])}" if len(files) == 1 else "")
    overview = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in view.overview)
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("charts", "Charts"),
            ("capture", "Capture"),
            ("registry", "Registry"),
            ("services", "Services"),
            ("unknown", "Unknown ports"),
            ("flows", "Conversations"),
            ("dnssd", "DNS-SD"),
            ("transports", "Transport mix"),
        )
    )
    sections = [
        _section(
            "capture",
            "Capture",
            f'<dl class="pairs">{overview}</dl><h3>Files</h3>{table_html(view.files)}',
        ),
        _section("registry", "Registry", table_html(view.registry, sortable=False)),
        _section("services", "Services", table_html(view.services), view.services.note),
        _section("unknown", "Unknown ports", table_html(view.unknown), view.unknown.note),
        _section("flows", "Conversations", table_html(view.flows), view.flows.note),
        _section("dnssd", "DNS-SD service types", table_html(view.dnssd)),
        _section("transports", "Transport mix", table_html(view.transports)),
    ]
    doc = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp(script))}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="portsniff">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<div class="caveat" role="note" id="caveat"><strong>{_e(view.caveat_source)}</strong>'
        f"<q>{_e(view.caveat)}</q></div>",
        "<main><header><h1>portsniff summary</h1>",
        f"<p>{_e(' · '.join(subtitle))}</p></header>",
        f"<nav>{nav}</nav>",
        _kpis(summary, view),
        _charts(summary, view),
        *sections,
        f"<footer>{_e(sv.times_note(view))} Click a column heading to sort. Filters: BPF for "
        "tcpdump/dumpcap capture filters, the other for Wireshark/tshark display filters. "
        "The data shown is also embedded as JSON (script#portsniff-summary).</footer>",
        "</main>",
        '<script type="application/json" id="portsniff-summary">'
        f"{script_json(summary.to_dict(view.top))}</script>",
        f"<script>{script}</script>",
        "</body></html>",
    ]
    stream.write("\n".join(doc) + "\n")
