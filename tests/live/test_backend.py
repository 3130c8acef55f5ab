"""The capture back-end: tool counters, command lines, errors, and the pipe reader."""

from __future__ import annotations

import os
import stat
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.errors import CaptureError, FilterError
from portsniff.live.backend import (
    CaptureProcess,
    CaptureStats,
    PcapPipeReader,
    parse_dumpcap_stats,
    parse_tcpdump_stats,
    tool_command,
    tool_error,
)

TCPDUMP_EXIT = """tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes
3 packets captured
6 packets received by filter
2 packets dropped by kernel
"""
TCPDUMP_USR1 = (
    "tcpdump: 7 packets captured, 9 packets received by filter, 1 packet dropped by kernel\n"
)
DUMPCAP_EXIT = """Capturing on 'Loopback: lo'
File: -
Packets captured: 3
Packets received/dropped on interface 'Loopback: lo': 5/2 (pcap:1/dumpcap:0/flushed:1/ps_ifdrop:4) (60.0%)
"""


def test_tcpdump_exit_counters() -> None:
    assert parse_tcpdump_stats(TCPDUMP_EXIT) == CaptureStats("tcpdump", 3, 6, 2, None)


def test_tcpdump_latest_counters_win() -> None:
    stats = parse_tcpdump_stats(TCPDUMP_USR1 + TCPDUMP_EXIT.replace("2 packets", "5 packets"))
    assert stats is not None and stats.dropped_kernel == 5
    usr1 = parse_tcpdump_stats(TCPDUMP_USR1)
    assert usr1 == CaptureStats("tcpdump", 7, 9, 1, None)


def test_tcpdump_interface_drops() -> None:
    stats = parse_tcpdump_stats(TCPDUMP_EXIT + "4 packets dropped by interface\n")
    assert stats is not None
    assert (stats.dropped_kernel, stats.dropped_interface, stats.dropped) == (2, 4, 6)


def test_no_counters_is_none() -> None:
    assert parse_tcpdump_stats("tcpdump: listening on lo\n") is None
    assert parse_dumpcap_stats("Capturing on 'lo'\n") is None


def test_dumpcap_counters() -> None:
    stats = parse_dumpcap_stats(DUMPCAP_EXIT)
    assert stats == CaptureStats("dumpcap", 3, 5, 1, 4, 1)
    assert stats is not None and stats.dropped == 6
    plain = parse_dumpcap_stats("Packets received/dropped on interface 'lo': 5/2\n")
    assert plain == CaptureStats("dumpcap", None, 5, 2)


def test_stats_as_dict_names_every_counter() -> None:
    d = CaptureStats("tcpdump", 3, 6, 0).as_dict()
    assert d == {
        "tool": "tcpdump",
        "captured": 3,
        "received": 6,
        "dropped_by_kernel": 0,
        "dropped_by_interface": None,
        "dropped_by_tool": None,
    }


def test_tool_commands() -> None:
    argv = tool_command("tcpdump", "/t", "lo", bpf="udp", count=5, buffer_mib=2)
    assert argv == ["/t", "-i", "lo", "-U", "-w", "-", "-s", "262144", "-B", "2048",
                    "-c", "5", "udp"]  # fmt: skip
    argv = tool_command("dumpcap", "/d", "lo", bpf="udp", buffer_mib=2)
    assert argv == ["/d", "-i", "lo", "-P", "-w", "-", "-s", "262144", "-B", "2", "-f", "udp"]
    with pytest.raises(ValueError):
        tool_command("wireshark", "/w", "lo")


@pytest.mark.parametrize(
    ("stderr", "kind", "words"),
    [
        (
            "tcpdump: lo: You don't have permission to perform this capture on that device\n"
            "(socket: Operation not permitted)\n",
            CaptureError,
            ["CAP_NET_RAW", "setcap cap_net_raw,cap_net_admin=eip $(which tcpdump)", "sudo"],
        ),
        ("tcpdump: x0: No such device exists\n", CaptureError, ["no interface 'x0'", "lo, eth9"]),
        ('dumpcap: There is no device named "x0".\n', CaptureError, ["no interface 'x0'"]),
        ("tcpdump: can't parse filter expression: syntax error\n", FilterError, ["syntax error"]),
        ("tcpdump: x0: That device is not up\n", CaptureError, ["down", "ip link set x0 up"]),
        ("tcpdump: something odd\n", CaptureError, ["tcpdump failed on x0", "something odd"]),
    ],
)
def test_tool_errors_are_one_line(stderr: str, kind: type[Exception], words: list[str]) -> None:
    err = tool_error("tcpdump", "x0", stderr, ["lo", "eth9"])
    assert isinstance(err, kind)
    assert "\n" not in str(err)
    for w in words:
        assert w in str(err)


def test_a_failing_tool_becomes_our_error(tmp_path: Path) -> None:
    fake = tmp_path / "tcpdump"
    fake.write_text(
        "#!/bin/sh\necho \"tcpdump: lo: You don't have permission to perform this capture"
        ' on that device" >&2\nexit 1\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    proc = CaptureProcess("tcpdump", str(fake), [str(fake)])
    with pytest.raises(CaptureError, match="CAP_NET_RAW"):
        proc.start("lo", ["lo"])


def test_a_tool_that_writes_pcap_is_read_to_the_end(tmp_path: Path) -> None:
    data = _pcap([b"\x01" * 20, b"\x02" * 30])
    capture = tmp_path / "c.pcap"
    capture.write_bytes(data)
    fake = tmp_path / "tcpdump"
    fake.write_text(
        f"#!/bin/sh\necho 'tcpdump: listening on lo' >&2\ncat {capture}\n"
        "echo '2 packets captured' >&2\necho '2 packets received by filter' >&2\n"
        "echo '0 packets dropped by kernel' >&2\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    proc = CaptureProcess("tcpdump", str(fake), [str(fake)])
    proc.start("lo", ["lo"])
    try:
        reader = PcapPipeReader(proc.stdout_fd, "live:lo")
        sizes = [int(n) for b in reader.blocks(0.5) if b is not None for n in b.caplen]
        assert sizes == [20, 30]
        assert proc.wait() == 0
        assert proc.stats() == CaptureStats("tcpdump", 2, 2, 0)
    finally:
        proc.close()


# -- the pipe reader --------------------------------------------------------------------


def _pcap(packets: list[bytes], magic: bytes = b"\xd4\xc3\xb2\xa1") -> bytes:
    out = magic + struct.pack("<HHiIII", 2, 4, 0, 0, 262144, 1)
    for i, p in enumerate(packets):
        out += struct.pack("<IIII", 1_700_000_000 + i, 500, len(p), len(p)) + p
    return out


def test_packets_come_out_before_the_buffer_fills() -> None:
    r, w = os.pipe()
    try:
        reader = PcapPipeReader(r, "live:test", block_bytes=1 << 20)
        blocks = reader.blocks(timeout=0.05)
        data = _pcap([b"a" * 60, b"b" * 70])
        os.write(w, data[: 24 + 16 + 60 + 5])  # one whole packet and a bit of the next
        first = next(b for b in blocks if b is not None)
        assert len(first) == 1 and first.packet(0) == b"a" * 60
        assert first.ts_ns[0] == 1_700_000_000 * 10**9 + 500_000
        assert next(blocks) is None  # nothing whole yet: an idle tick, not a wait
        os.write(w, data[24 + 16 + 60 + 5 :])
        second = next(b for b in blocks if b is not None)
        assert second.first_frame == 2 and second.packet(0) == b"b" * 70
        os.close(w)
        w = -1
        assert list(blocks) == []
        assert reader.damage is None and reader.packets == 2
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_packet_larger_than_the_buffer_grows_it() -> None:
    r, w = os.pipe()
    big = bytes(range(256)) * 40
    data = _pcap([big, b"x"])

    def feed() -> None:
        os.write(w, data)
        os.close(w)

    t = threading.Thread(target=feed)
    t.start()
    try:
        reader = PcapPipeReader(r, "live:test", block_bytes=64)
        got = [b.packet(i) for b in reader.blocks(None) if b is not None for i in range(len(b))]
        assert got == [big, b"x"]
    finally:
        t.join()
        os.close(r)


def test_a_cut_record_at_the_end_is_damage() -> None:
    r, w = os.pipe()
    data = _pcap([b"a" * 10, b"b" * 10])[:-3]
    os.write(w, data)
    os.close(w)
    reader = PcapPipeReader(r, "live:test")
    blocks = [b for b in reader.blocks(1.0) if b is not None]
    os.close(r)
    assert sum(len(b) for b in blocks) == 1
    assert reader.damage is not None and "only 7 remain" in reader.damage.problem


def test_pcapng_on_the_pipe_is_refused() -> None:
    r, w = os.pipe()
    os.write(w, b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)
    os.close(w)
    reader = PcapPipeReader(r, "live:test")
    with pytest.raises(CaptureError, match="pcapng"):
        list(reader.blocks(1.0))
    os.close(r)


def test_empty_stream_is_no_packets() -> None:
    r, w = os.pipe()
    os.close(w)
    reader = PcapPipeReader(r, "live:test")
    assert list(reader.blocks(1.0)) == []
    assert reader.damage is None and reader.interfaces == []
    os.close(r)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=64, max_value=256))
def test_arbitrary_bytes_give_blocks_or_our_error(data: bytes, block: int) -> None:
    r, w = os.pipe()
    try:
        os.write(w, _pcap([])[:24] + data if data[:1] != b"!" else data)
        os.close(w)
        w = -1
        reader = PcapPipeReader(r, "live:fuzz", block_bytes=block)
        try:
            for b in reader.blocks(1.0):
                if b is not None:
                    assert all(int(c) >= 0 for c in b.caplen)
        except CaptureError:
            pass
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
