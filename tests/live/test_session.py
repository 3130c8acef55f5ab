"""LiveSession without a real capture: a stand-in tool writes a known pcap to the pipe."""

from __future__ import annotations

import stat
import struct
from pathlib import Path

import pytest

from portsniff.capture.reader import open_capture
from portsniff.errors import CaptureError, FilterError, UsageError
from portsniff.live import session as live_session
from portsniff.live.backend import CaptureStats
from portsniff.live.session import LiveOptions, LiveReport, LiveSession, check_options
from portsniff.registry.sources import open_registry
from tests.live._workload import workload_tool

EXCERPT = Path(live_session.__file__).parent.parent / "data" / "iana-registry-excerpt.txt"


def _udp_frame(sport: int, dport: int, payload: bytes = b"hi") -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
        bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1]),
    ) + udp  # fmt: skip
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip


def _pcap(frames: list[bytes]) -> bytes:
    out = b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 262144, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    return out


@pytest.fixture
def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 'tcpdump' that writes three UDP packets, then its counters, and exits."""
    capture = tmp_path / "in.pcap"
    capture.write_bytes(
        _pcap([_udp_frame(60001, 47808), _udp_frame(60001, 50000), _udp_frame(60001, 47808)])
    )
    tool = tmp_path / "tcpdump"
    tool.write_text(
        "#!/bin/sh\necho 'tcpdump: listening on lo, link-type EN10MB' >&2\n"
        f"cat {capture}\n"
        "printf '3 packets captured\\n3 packets received by filter\\n"
        "4 packets dropped by kernel\\n' >&2\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(live_session, "find_tool", lambda preferred: ("tcpdump", str(tool)))
    return tool


def test_packets_are_labelled_and_written_to_pcapng(fake_tool: Path, tmp_path: Path) -> None:
    index = open_registry([str(EXCERPT)])
    s = LiveSession(LiveOptions("lo"), index)
    out = tmp_path / "out.pcapng"
    with out.open("wb") as fh:
        s.write_pcapng(fh, "section")
        records = list(s.records())
    assert [(r.service, r.service_port, r.status) for r in records] == [
        ("bacnet", 47808, "assigned"),
        (None, 50000, "unassigned"),
        ("bacnet", 47808, "assigned"),
    ]
    assert [r.frame for r in records] == [1, 2, 3]
    report = s.report
    assert report.stop_reason == "tool-exit" and report.error is None
    assert report.stats == CaptureStats("tcpdump", 3, 3, 4)
    assert report.packets == 3 and report.linktypes == {1: 3}
    assert report.drop_lines() == ["tcpdump: 4 dropped by kernel"]
    with open_capture(str(out)) as reader:
        blocks = list(reader.blocks())
        assert sum(len(b) for b in blocks) == 3
        assert reader.section_comments == ["section"]
        assert blocks[0].comments[0].startswith("bacnet/47808")


def test_the_count_limits_output(fake_tool: Path) -> None:
    s = LiveSession(LiveOptions("lo", limit=2), open_registry([str(EXCERPT)]))
    assert len(list(s.records())) == 2
    assert s.report.stop_reason == "count"


def test_stop_before_start_still_ends(fake_tool: Path) -> None:
    s = LiveSession(LiveOptions("lo"), open_registry([str(EXCERPT)]))
    s.stop("terminated")
    list(s.records())
    assert s.report.stop_reason == "terminated"


def test_a_tool_failure_mid_capture_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "tcpdump"
    tool.write_text(
        "#!/bin/sh\necho 'tcpdump: listening on lo' >&2\n"
        "echo 'tcpdump: pcap_loop: The interface disappeared' >&2\nexit 1\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(live_session, "find_tool", lambda preferred: ("tcpdump", str(tool)))
    s = LiveSession(LiveOptions("lo"), open_registry([str(EXCERPT)]))
    assert list(s.records()) == []
    assert s.report.stop_reason == "interface-gone"
    assert s.report.error is not None and "went away" in s.report.error
    assert s.report.drop_lines() == ["drop counters unavailable (tcpdump reported none)"]


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        (LiveOptions("lo", engine="pyshark"), UsageError, "files only"),
        (LiveOptions("lo", limit=0), UsageError, "-c"),
        (LiveOptions("lo", duration=0), UsageError, "--duration"),
        (LiveOptions("lo", buffer_mib=0), UsageError, "--buffer"),
        (LiveOptions("nosuchif0"), CaptureError, "interfaces: lo"),
        (LiveOptions("lo", bpf="udp prot 53"), FilterError, "bad filter"),
    ],
)
def test_options_are_checked_first(options: LiveOptions, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        check_options(options)


def test_report_dict_for_the_summary() -> None:
    r = LiveReport("lo", "tcpdump", "live:lo", stop_reason="interrupted")
    r.stats = CaptureStats("tcpdump", 5, 5, 0, 1)
    d = r.as_dict()
    assert d["file"] == "lo (live, tcpdump)"
    assert d["problems"] == [
        "tcpdump: 0 dropped by kernel, 1 dropped by interface",
        "stopped: interrupted (Ctrl-C)",
    ]
    assert d["capture"]["dropped_by_interface"] == 1
    assert r.drop_counts() == {
        "dropped_by_kernel": 0,
        "dropped_by_interface": 1,
        "dropped_by_tool": None,
    }


@pytest.mark.parametrize("gather", [(0, 0.0), (20_000, 0.002), (4 << 20, 0.02)])
def test_vector_and_reference_give_the_same_records_and_pcapng(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_xml: Path, gather: tuple[int, float]
) -> None:
    workload_tool(tmp_path, monkeypatch, 6000)
    index = open_registry([str(official_xml)])
    got = {}
    for vector in (True, False):
        s = LiveSession(LiveOptions("lo"), index, vector=vector)
        assert s.vector is vector
        s.gather_bytes, s.gather_seconds = gather
        out = tmp_path / f"out-{vector}.pcapng"
        with out.open("wb") as fh:
            s.write_pcapng(fh, "section")
            records = list(s.records())
        got[vector] = (records, s.counts.as_dict(), s.report.as_dict(), out.read_bytes())
    v_records, v_counts, v_report, v_pcapng = got[True]
    r_records, r_counts, r_report, r_pcapng = got[False]
    assert len(r_records) == 6000
    assert {r.proto for r in r_records} >= {"tcp", "udp"}
    assert any(r.vlan for r in r_records) and any(r.fragment for r in r_records)
    assert v_records == r_records
    assert v_counts == r_counts
    assert v_report == r_report
    assert v_pcapng == r_pcapng


def test_vector_batches_stop_at_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_xml: Path
) -> None:
    workload_tool(tmp_path, monkeypatch, 3000)
    index = open_registry([str(official_xml)])
    s = LiveSession(LiveOptions("lo", limit=1234), index)
    batches = list(s.batches())
    assert sum(len(b) for b in batches) == 1234
    assert s.report.stop_reason == "count"
    r = LiveSession(LiveOptions("lo", limit=1234), index, vector=False)
    assert [rec for b in batches for rec in b.iter_records()] == list(r.records())


def test_batches_need_the_vector_path(fake_tool: Path) -> None:
    s = LiveSession(LiveOptions("lo"), open_registry([str(EXCERPT)]), vector=False)
    with pytest.raises(ValueError, match="vector"):
        next(s.batches())
