"""The summary as GitHub-flavoured Markdown, ready to paste into a ticket or a wiki.

IANA's caveat is a blockquote at the top. Every cell is escaped: ``|`` cannot split a
row and packet or registry strings cannot become links, HTML or emphasis. Filters are
code spans, so they copy exactly.
"""

from __future__ import annotations

import re
from typing import TextIO

from portsniff.report import summary_view as sv
from portsniff.report.summaries import ReportOptions
from portsniff.summary import Summary

# The ASCII punctuation that can start markup inside a table cell or after a list
# label (CommonMark 2.4 lets any of it be backslash-escaped): emphasis, code, links,
# HTML, entities, strikethrough, GitHub's math ($) and @mentions, and the cell split.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$@])")


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text (one line; ``\\n`` becomes ``<br>``)."""
    return "<br>".join(_SPECIAL.sub(r"\\\1", line) for line in text.split("\n"))


def code(text: str) -> str:
    """``text`` as a code span that is safe in a table cell."""
    if not text:
        return ""
    text = text.replace("\n", " ")
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (ticks + 1)
    pad = " " if ticks or text.startswith(" ") or text.endswith(" ") else ""
    # GFM splits a row on every unescaped "|", even inside a code span.
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _cell(cell: sv.Cell) -> str:
    return code(cell.text) if cell.code else escape(cell.text)


def table_lines(table: sv.Table) -> list[str]:
    """A GFM table (numeric columns right-aligned), or the table's empty message."""
    if not table.rows:
        return [f"_{escape(table.empty.capitalize())}._"]
    head = "| " + " | ".join(escape(c.name) for c in table.columns) + " |"
    rule = "|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|"
    rows = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return [head, rule, *rows]


def render(summary: Summary, stream: TextIO, options: ReportOptions) -> None:
    """Write the Markdown summary of ``summary`` to ``stream``."""
    view = sv.build(summary, options)
    out: list[str] = ["# portsniff summary", ""]
    out += [
        f"> **{escape(view.caveat_source)}:**",
        ">",
        f"> {escape(chr(34) + view.caveat + chr(34))}",
        "",
    ]
    out += ["## Capture", ""]
    out += [f"- **{escape(k)}:** {escape(v)}" for k, v in view.overview]
    out += ["", "### Files", "", *table_lines(view.files), ""]
    out += ["## Registry", "", *table_lines(view.registry), ""]
    for title, table in (
        ("Services", view.services),
        ("Unknown ports", view.unknown),
        ("Conversations", view.flows),
        ("DNS-SD", view.dnssd),
        ("Transport mix", view.transports),
    ):
        out += [f"## {title}", ""]
        if table.note:
            out += [f"_{escape(table.note)}_", ""]
        out += [*table_lines(table), ""]
    out += [
        "## Drill-down filters",
        "",
        "_BPF for tcpdump/dumpcap capture filters; display filter for Wireshark and tshark -Y._",
        "",
    ]
    drill = sv.Table(
        "drill",
        "Drill-down filters",
        [sv.Column("#"), sv.Column("Row"), sv.Column("BPF"), sv.Column("Display filter")],
        [
            [
                sv.Cell(r.ref),
                sv.Cell(r.what),
                sv.Cell(r.bpf, code=True),
                sv.Cell(r.display_filter, code=True),
            ]
            for r in view.drill
        ],
        empty="no rows to filter for",
    )
    out += [*table_lines(drill), "", f"_{escape(sv.times_note(view))}_"]
    stream.write("\n".join(out) + "\n")
