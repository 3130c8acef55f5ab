"""The text summary: rich tables, plain when piped, never cropping, never obeying packet
data as markup or terminal codes."""

from __future__ import annotations

import io

import pytest

from portsniff.caveat import CAVEAT, CAVEAT_SOURCE
from portsniff.report.summaries import ReportOptions, reporter
from portsniff.report.summary_text import render
from tests.report.summary_samples import HOSTILE, empty_summary, sample_summary


def text(summary: object, **kw: object) -> str:
    buf = io.StringIO()
    render(summary, buf, ReportOptions(**{"width": 120, **kw}))  # type: ignore[arg-type]
    return buf.getvalue()


def unwrap(out: str) -> str:
    """The text with the caveat panel's frame and line breaks removed."""
    return " ".join(line.strip("|+- ") for line in out.splitlines())


def test_registered_as_text() -> None:
    assert reporter("text") is render


def test_sections_caveat_and_provenance() -> None:
    out = text(sample_summary())
    for heading in (
        "Capture",
        "Registry",
        "Services",
        "Unknown ports",
        "Conversations",
        "DNS-SD",
        "Transport mix",
        "Drill-down filters",
    ):
        assert f"\n{heading} ---" in out
    assert f'"{CAVEAT}"' in " ".join(unwrap(out).split())
    assert CAVEAT_SOURCE in out
    assert "src/portsniff/data/iana-registry-" in out  # path and sha256, folded
    assert "3f" * 16 in out
    assert "2026-03-27" in out
    assert "Times are UTC on 2024-05-01." in out


def test_rows_and_filters() -> None:
    out = text(sample_summary())
    assert "S1  https    tcp/443" in out
    assert "udp/50000" in out and "unassigned" in out and "dynamic" in out
    assert "tcp.port == 443" in out and "tcp port 443" in out
    assert "(udp port 47808) or (vlan and udp" in out  # wraps before "port 47808)"
    assert "(IANA notes unauthorized" in out
    assert "Problem: captures/cut.pcap truncated record at byte 1314" in " ".join(out.split())
    assert "Bedroom" in out and "Living Room" in out


@pytest.mark.parametrize("width", [120, 100, 80, 60, 40])
def test_plain_ascii_fits_the_width(width: int) -> None:
    out = text(sample_summary(), width=width)
    assert "\x1b" not in out
    assert all(ord(c) < 128 for c in out), "piped output is plain ASCII"
    assert max(len(line) for line in out.splitlines()) <= width
    assert not any(line != line.rstrip() for line in out.splitlines())
    assert out.count("\n") > 50


@pytest.mark.parametrize("width", [120, 100])
def test_numbers_times_and_endpoints_stay_whole(width: int) -> None:
    out = text(sample_summary(), width=width)
    joined = " ".join(out.split())
    # Every conversation's endpoints are there, whatever the folding.
    for needle in (
        "93.184.216.34:443",
        "[2001:db8::5]:40000",
        "192.168.1.255:47808",
        "12:00:21.560",
    ):
        assert needle in joined


def test_color_uses_ansi_and_boxes() -> None:
    out = text(sample_summary(), color=True)
    assert "\x1b[" in out
    assert "─" in out


def test_empty_summary() -> None:
    out = text(empty_summary())
    assert "(no traffic on assigned ports)" in out
    assert "(no conversations (no IP packets))" in out
    assert "Packets            0" in out
    assert "captures/empty.pcap" in out


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_are_inert(hostile: str) -> None:
    out = text(sample_summary(hostile=hostile))
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b" in out or "\x1b" not in hostile
    # rich markup and emoji codes are printed as they are, not interpreted
    if "[bold]" in hostile:
        assert "[bold]markup[/bold]" in out and ":smile:" in out
    assert "".join(hostile.split()).replace("\x1b", "\\x1b").replace("\x07", "\\x07")[
        :12
    ] in "".join(out.split())


def test_unicode() -> None:
    out = text(sample_summary(unicode=True))
    assert "Küche — 客厅 📺" in out


def test_width_defaults_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    buf = io.StringIO()
    render(sample_summary(), buf, ReportOptions())
    assert max(len(line) for line in buf.getvalue().splitlines()) == 100
