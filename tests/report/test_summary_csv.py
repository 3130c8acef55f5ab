"""The CSV summary: ``#`` provenance lines, JSON key names as columns, one file per table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from portsniff.caveat import CAVEAT
from portsniff.errors import UsageError
from portsniff.flows import FLOW_FIELDS
from portsniff.report.summaries import ReportOptions, reporter
from portsniff.report.summary_csv import (
    SERVICE_FIELDS,
    TABLE_FILES,
    cell,
    render,
    write_tables,
)
from tests.report.summary_samples import HOSTILE, empty_summary, sample_summary


def read(text: str) -> tuple[list[str], list[dict[str, str]]]:
    comments = [line for line in text.splitlines() if line.startswith("#")]
    body = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
    return comments, list(csv.DictReader(io.StringIO("".join(body))))


def test_registered_as_csv() -> None:
    assert reporter("csv") is render


def test_render_writes_services_with_provenance() -> None:
    s = sample_summary()
    buf = io.StringIO()
    render(s, buf, ReportOptions())
    comments, rows = read(buf.getvalue())
    assert comments[0].endswith(CAVEAT) and "IANA" in comments[0]
    assert comments[1].startswith("# registry: iana-text src/portsniff/data/")
    assert "updated=2026-03-27" in comments[1] and "sha256=" + "3f" * 32 in comments[1]
    assert buf.getvalue().splitlines()[len(comments)] == ",".join(SERVICE_FIELDS)
    expected = s.to_dict()["services"]
    assert [r["service"] for r in rows] == [e["service"] for e in expected]
    assert rows[0]["bpf"] == "tcp port 443" and rows[0]["display_filter"] == "tcp.port == 443"
    assert int(rows[0]["bytes"]) == expected[0]["bytes"]
    bacnet = rows[-1]
    assert bacnet["flags"] == "iana-unauthorized-use-note;ambiguous-side"


def test_top_limits_services() -> None:
    buf = io.StringIO()
    render(sample_summary(), buf, ReportOptions(top=2))
    assert len(read(buf.getvalue())[1]) == 2


def test_write_tables(tmp_path: Path) -> None:
    s = sample_summary()
    out = tmp_path / "new" / "dir"
    paths = write_tables(s, out, ReportOptions())
    assert [p.name for p in paths] == list(TABLE_FILES)
    tables = {p.stem: read(p.read_text(encoding="utf-8")) for p in paths}
    for comments, _ in tables.values():
        assert comments[0].endswith(CAVEAT)
    flows = tables["flows"][1]
    assert list(flows[0]) == list(FLOW_FIELDS)
    assert len(flows) == len(s.flows), "every flow"
    bacnet = next(f for f in flows if f["service"] == "bacnet")
    assert bacnet["vlan"] == "100" and bacnet["ambiguous"] == "true"
    inner = next(f for f in flows if f["tunnel"])
    assert inner["tunnel"] == "vxlan" and inner["service"] == "http"
    capture = tables["capture"][1]
    assert [r["scope"] for r in capture] == ["file", "file", "file", "total"]
    assert capture[0]["linktypes"] == "1=50" and capture[0]["duration"] == "41.0"
    assert capture[2]["error"] == "captures/notes.txt: not a pcap or pcapng file"
    total = capture[-1]
    assert (total["packets"], total["malformed"], total["truncated"]) == ("50", "1", "1")
    assert total["problems"] == "truncated IPv4 header=1"
    unknown = tables["unknown_ports"][1]
    assert [(r["proto"], r["port"], r["status"]) for r in unknown] == [
        ("udp", "50000", "unassigned"),
        ("tcp", "1023", "reserved"),
    ]
    dnssd = tables["dnssd"][1]
    assert [(r["type"], r["instance"]) for r in dnssd] == [
        ("_airplay._tcp", "Bedroom"),
        ("_airplay._tcp", "Living Room"),
        ("_xyzzy._udp", ""),
    ]
    transports = {
        r["transport"]: (int(r["packets"]), int(r["bytes"])) for r in tables["transports"][1]
    }
    assert sum(p for p, _ in transports.values()) == s.packets
    assert sum(b for _, b in transports.values()) == s.bytes


def test_write_tables_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot create the output directory"):
        write_tables(sample_summary(), blocker / "sub", ReportOptions())


def test_empty_summary(tmp_path: Path) -> None:
    paths = write_tables(empty_summary(), tmp_path, ReportOptions())
    tables = {p.stem: read(p.read_text(encoding="utf-8"))[1] for p in paths}
    assert tables["services"] == [] and tables["flows"] == []
    assert [r["scope"] for r in tables["capture"]] == ["file", "total"]
    assert all(r["packets"] == "0" for r in tables["transports"])


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_stay_in_their_cell(hostile: str, tmp_path: Path) -> None:
    paths = write_tables(sample_summary(hostile=hostile), tmp_path, ReportOptions())
    for p in paths:
        text = p.read_text(encoding="utf-8")
        comments, rows = read(text)
        assert all(c.startswith("# ") for c in comments)
        header = text.splitlines()[len(comments)].split(",")
        assert all(None not in r and len(r) == len(header) for r in rows)
    services = read((tmp_path / "services.csv").read_text(encoding="utf-8"))[1]
    desc = services[0]["description"]
    assert desc == ("'" + hostile if hostile.startswith("=") else hostile)


def test_cell() -> None:
    assert cell(None) == "" and cell(True) == "true" and cell([1, 2]) == "1;2"
    assert cell("=1+1") == "'=1+1" and cell("-x") == "'-x" and cell("@a") == "'@a"
    assert cell(-1) == "-1" and cell(0.5) == "0.5" and cell({"a": 1}) == "a=1"
