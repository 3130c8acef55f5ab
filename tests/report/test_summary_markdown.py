"""The Markdown summary: GFM tables that render as intended, whatever the strings."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from portsniff.caveat import CAVEAT, CAVEAT_SOURCE
from portsniff.report.summaries import ReportOptions, reporter
from portsniff.report.summary_markdown import code, escape, render
from tests.report.summary_samples import HOSTILE, empty_summary, sample_summary

MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def markdown(summary: object, **kw: object) -> str:
    buf = io.StringIO()
    render(summary, buf, ReportOptions(**kw))  # type: ignore[arg-type]
    return buf.getvalue()


def tables(html: str) -> list[list[list[str]]]:
    """Rendered tables as rows of cell HTML."""
    out = []
    for t in re.findall(r"<table>(.*?)</table>", html, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", t, re.S)
        out.append([re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S) for r in rows])
    return out


def test_registered_as_markdown() -> None:
    assert reporter("markdown") is render


def test_structure_and_caveat_blockquote() -> None:
    out = markdown(sample_summary())
    html = MD.render(out)
    assert re.search(r"<blockquote>.*ASSIGNMENT OF A PORT NUMBER.*</blockquote>", html, re.S)
    assert CAVEAT.replace('"', "&quot;") in html
    assert CAVEAT_SOURCE in html
    for h in (
        "Capture",
        "Registry",
        "Services",
        "Unknown ports",
        "Conversations",
        "DNS-SD",
        "Transport mix",
        "Drill-down filters",
    ):
        assert f"<h2>{h}</h2>" in html
    ts = tables(html)
    assert len(ts) == 8  # files, registry, services, unknown, flows, dnssd, transports, drill
    for t in ts:
        assert len({len(r) for r in t}) == 1, "every row has the header's cell count"


def test_filters_are_code_and_survive_pipes() -> None:
    html = MD.render(markdown(sample_summary()))
    drill = tables(html)[-1]
    assert drill[1][2] == "<code>tcp port 443</code>"
    flow = next(r for r in drill if r[0] == "C1")
    assert "||" in flow[3] and flow[3].startswith("<code>tcp &amp;&amp; ((ip.src")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_render_as_text(hostile: str) -> None:
    html = MD.render(markdown(sample_summary(hostile=hostile)))
    assert "<script" not in html and "<img" not in html and "<a " not in html
    for t in tables(html):
        assert len({len(r) for r in t}) == 1
        for row in t:
            for c in row:
                assert re.sub(r"<br>|</?code>", "", c).count("<") == 0, c
    assert "&lt;" in html or "<" not in hostile


def test_empty_summary() -> None:
    out = markdown(empty_summary())
    assert "_No traffic on assigned ports._" in out
    assert "- **Packets:** 0" in out


def test_unicode() -> None:
    assert "Küche — 客厅 📺" in MD.render(markdown(sample_summary(unicode=True)))


def test_code_spans() -> None:
    assert code("a || b") == "`a \\|\\| b`"
    assert code("x`y") == "`` x`y ``"
    assert code("") == ""


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_escaped_cell_renders_as_its_text(s: str) -> None:
    """Any one-line string, escaped into a table cell, renders as that literal text."""
    s = " ".join(s.split())
    row = f"| h |\n|---|\n| {escape(s)} |\n"
    html = MD.render(row)
    cells = tables(html)
    assert len(cells) == 1 and len(cells[0][1]) == 1
    rendered = cells[0][1][0]
    assert "<" not in rendered.replace("<br>", "")
    import html as h

    assert h.unescape(rendered).strip() == s.replace("\x00", "\ufffd").strip()
