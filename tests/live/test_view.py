"""The live services table, rendered to text with rich's recording console."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from portsniff.annotate.records import PacketRecord
from portsniff.caveat import CAVEAT
from portsniff.live.backend import CaptureStats
from portsniff.live.view import LiveTable, ServiceBoard, drops_text, render_board


def rec(service: str | None, proto: str, port: int | None, size: int = 100,
        status: str | None = "assigned", description: str | None = None) -> PacketRecord:  # fmt: skip
    return PacketRecord(
        frame=1, file="live:lo", ts=1.0, len=size, caplen=size,
        src_ip="10.0.0.2", dst_ip="10.0.0.1", proto=proto,
        src_port=None if port is None else 60001, dst_port=port,
        service=service, service_port=port, service_side=None if port is None else "dst",
        description=description, status=None if port is None else status,
        port_class=None, aliases=(), unauthorized_use=None, basis=None, ambiguous=False,
        dnssd=(), inner=(), quoted=None, fragment=False, vlan=(),
    )  # fmt: skip


def text(board: ServiceBoard, now: float, rows: int = 20) -> str:
    console = Console(record=True, width=300, file=io.StringIO(), color_system=None)
    console.print(render_board(board, now, rows, color=False))
    return console.export_text()


def board_with_traffic() -> ServiceBoard:
    board = ServiceBoard("veth0", "tcpdump", started=100.0)
    for _ in range(10):
        board.add(rec("bacnet", "udp", 47808, 50, description="Building Automation"), 100.0)
    board.add(rec(None, "udp", 50000, 40, status="unassigned"), 100.0)
    board.add(rec(None, "icmp", None), 100.0)
    board.sample(100.0)
    for _ in range(20):
        board.add(rec("bacnet", "udp", 47808, 50), 101.0)
    board.add(rec("domain", "udp", 53, 80), 106.0)
    board.sample(102.0)
    return board


def test_table_shows_rates_totals_unknown_ports_and_new_services() -> None:
    board = board_with_traffic()
    board.stats = CaptureStats("tcpdump", 33, 33, 7, 2)
    out = text(board, 106.5)
    assert "portsniff live on veth0 (tcpdump)" in out
    assert "kernel drops: 7, interface drops: 2" in out
    lines = out.splitlines()
    (bacnet,) = [ln for ln in lines if "bacnet" in ln]
    assert "47808" in bacnet and "udp" in bacnet
    assert "10.0/s" in bacnet  # 20 packets in the 2 s between samples
    assert "500 B/s" in bacnet and "30" in bacnet and "1.5 KiB" in bacnet
    assert "new" not in bacnet  # first seen 6.5 s ago
    (domain,) = [ln for ln in lines if "domain" in ln]
    assert "assigned, new" in domain  # first seen 0.5 s ago
    (unknown,) = [ln for ln in lines if "50000" in ln]
    assert "(unknown port)" in unknown and "unassigned" in unknown
    assert "2 services, 1 unknown ports" in out
    assert "1 packets without ports" in out


def test_caveat_footer_is_whole() -> None:
    out = " ".join(text(ServiceBoard("lo", "tcpdump", 0.0), 1.0).split())
    assert f"IANA: {CAVEAT}" in out
    assert "kernel drops: not reported yet" in out


def test_rows_are_limited_with_a_note() -> None:
    board = ServiceBoard("lo", "tcpdump", 0.0)
    for port in range(1000, 1030):
        board.add(rec(f"svc{port}", "tcp", port), 0.0)
    out = text(board, 1.0, rows=5)
    assert sum("svc" in ln for ln in out.splitlines()) == 5
    assert "25 more services" in out


def test_packet_strings_are_not_markup_or_control() -> None:
    board = ServiceBoard("lo", "tcpdump", 0.0)
    board.add(rec("[bold]x[/bold]", "tcp", 1, description="evil\x1b[2Jclear"), 0.0)
    out = text(board, 1.0)
    assert "[bold]x[/bold]" in out
    assert "\x1b" not in out and "\\x1b" in out


def test_drops_text() -> None:
    assert drops_text(None) == "kernel drops: not reported yet"
    assert drops_text(CaptureStats("tcpdump", 1, 1, None)) == "kernel drops: unknown"
    assert drops_text(CaptureStats("dumpcap", 1, 1, 0, None, 3)) == (
        "kernel drops: 0, dumpcap drops: 3"
    )


def test_live_table_refreshes_at_most_twice_a_second() -> None:
    now = [0.0]
    board = ServiceBoard("lo", "tcpdump", 0.0)
    stream = io.StringIO()
    drawn: list[float] = []
    with LiveTable(board, stream, lambda: now[0]) as table:
        update = table.live.update

        def spy(renderable: object, *, refresh: bool = False) -> None:
            drawn.append(now[0])
            update(renderable, refresh=refresh)  # type: ignore[arg-type]

        table.live.update = spy  # type: ignore[method-assign]
        table.add(rec("bacnet", "udp", 47808))
        for t in (0.0, 0.1, 0.3, 0.6, 0.7, 1.2):
            now[0] = t
            table.refresh()
    assert drawn == [0.0, 0.6, 1.2, 1.2]  # the last: the final refresh on exit
    assert "bacnet" in stream.getvalue()  # rich draws the last frame when it stops


def test_a_labelled_batch_counts_as_its_records(official_xml: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from portsniff.annotate.pipeline import AnnotateRun
    from portsniff.registry.sources import open_registry
    from tests.conftest import shared_path

    capture = tmp_path / "w.pcap"
    subprocess.run(
        [sys.executable, str(shared_path("bench", "gen_pcap.py")), "--packets", "4000",
         "--seed", "5", "--flows", "200", "--out", str(capture)],
        check=True, capture_output=True,
    )  # fmt: skip
    index = open_registry([str(official_xml)])
    by_batch = ServiceBoard("veth0", "tcpdump", started=0.0)
    by_record = ServiceBoard("veth0", "tcpdump", started=0.0)
    batches = list(AnnotateRun([str(capture)], index, vector=True).batches())
    assert any(b.records for b in batches)  # rows with records of their own are covered
    for lb in batches:
        by_batch.add_batch(lb, 1.0)
        for record in lb.iter_records():
            by_record.add(record, 1.0)
    assert by_batch.packets == by_record.packets == 4000
    assert (by_batch.bytes, by_batch.no_port) == (by_record.bytes, by_record.no_port)
    assert by_batch.no_port > 0
    assert by_batch.rows == by_record.rows
    assert text(by_batch, 1.5) == text(by_record, 1.5)
