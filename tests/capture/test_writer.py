"""PcapngWriter: round trip through our reader, and tshark reads what we write."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.capture.reader import open_capture
from portsniff.capture.writer import PcapngWriter

UDP_DNS = bytes.fromhex(
    "ffffffffffff0001020304050800"  # Ethernet
    "4500001c00010000401100000102030405060708"  # IPv4
    "0035003500080000"  # UDP 53 -> 53
)

# (interface, ts_ns, wirelen, data, comment)
PACKETS = [
    (0, 1_700_000_000_123_456_789, 100, UDP_DNS, "first, with a comma"),
    (1, 1_700_000_001_123_456_000, 28, UDP_DNS[14:], None),
    (0, 1_700_000_002_000_000_001, len(UDP_DNS), UDP_DNS, "third\nline ünïcode"),
    (0, 1_700_000_003_000_000_000, 0, b"", "empty packet"),
]


def write(path: Path) -> None:
    with path.open("wb") as f, PcapngWriter(f, section_comment="made by a test") as w:
        assert w.add_interface(1, 65535, "eth0") == 0
        assert w.add_interface(101, 262144, None, ts_resolution=1_000_000) == 1
        for iface, ts, wirelen, data, comment in PACKETS:
            w.write_packet(iface, ts, wirelen, data, comment)
        w.flush()


def test_round_trip_through_our_reader(tmp_path: Path) -> None:
    path = tmp_path / "out.pcapng"
    write(path)
    got = []
    with open_capture(str(path)) as reader:
        for block in reader.blocks():
            for i in range(len(block)):
                got.append(
                    (
                        int(block.interface[i]),
                        int(block.ts_ns[i]),
                        int(block.wirelen[i]),
                        block.packet(i),
                        block.comments.get(i),
                    )
                )
    assert got == PACKETS
    assert reader.section_comments == ["made by a test"]
    assert [(i.linktype, i.snaplen, i.name, i.ts_resolution) for i in reader.interfaces] == [
        (1, 65535, "eth0", 10**9),
        (101, 262144, None, 10**6),
    ]
    assert reader.problems == []
    assert reader.damage is None


FIELDS = [arg for f in ("comment", "time_epoch", "len", "cap_len") for arg in ("-e", f"frame.{f}")]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_comments_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "out.pcapng"
    write(path)
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|", *FIELDS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out == [
        "first, with a comma|1700000000.123456789|100|42",
        "|1700000001.123456000|28|28",
        "third\\nline ünïcode|1700000002.000000001|42|42",
        "empty packet|1700000003.000000000|0|0",
    ]


def test_bad_arguments(tmp_path: Path) -> None:
    w = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="unknown interface"):
        w.write_packet(0, 0, 1, b"x")
    with pytest.raises(ValueError, match="not a power of 10 or of 2"):
        w.add_interface(1, 0, ts_resolution=1000 * 3)
    w.add_interface(1, 0, ts_resolution=2**20)
    with pytest.raises(ValueError, match="cannot be written"):
        w.write_packet(0, -1, 1, b"x")


# Trailing NULs are padding to the reader, so comments never contain them.
COMMENT_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**62),
            st.binary(max_size=70),
            st.none() | st.text(COMMENT_CHARS, max_size=20),
        ),
        max_size=8,
    ),
    st.sampled_from([10**9, 10**6, 2**30, 10**3]),
)
def test_any_packets_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    packets: list[tuple[int, bytes, str | None]],
    resolution: int,
) -> None:
    path = tmp_path_factory.mktemp("w") / "p.pcapng"
    with path.open("wb") as f:
        w = PcapngWriter(f, section_comment=None, application="")
        w.add_interface(1, 0, "x", ts_resolution=resolution)
        for ts, data, comment in packets:
            w.write_packet(0, ts, len(data) + 3, data, comment)
        w.close()
    got = []
    with open_capture(str(path)) as reader:
        for block in reader.blocks():
            got.extend(
                (int(block.ts_ns[i]), block.packet(i), block.comments.get(i))
                for i in range(len(block))
            )
    # Timestamps keep the interface's resolution (truncated to its ticks).
    assert got == [
        (ts * resolution // 10**9 * 10**9 // resolution, d, c or None) for ts, d, c in packets
    ]
    assert reader.damage is None
