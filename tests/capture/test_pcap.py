"""Classic pcap: byte orders, timestamp precisions, link-type field, record walk."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.capture.reader import CaptureReader, open_capture
from portsniff.errors import CaptureError

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
MAGIC_KUZNETZOV = 0xA1B2CD34

Packet = tuple[int, int, bytes, int]  # (seconds, fraction, data, wirelen)


def build_pcap(
    packets: list[Packet],
    *,
    endian: str = "<",
    magic: int = MAGIC_USEC,
    linktype: int = 1,
    snaplen: int = 65535,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    """A classic pcap file, written field by field (independent of the code under test)."""
    out = [struct.pack(endian + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)]
    for sec, frac, data, wirelen in packets:
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), wirelen))
        if magic == MAGIC_KUZNETZOV:
            out.append(struct.pack(endian + "iHBB", 3, 0x0800, 0, 0))
        out.append(data)
    return b"".join(out)


PACKETS: list[Packet] = [
    (1_700_000_000, 123_456, bytes(range(60)), 60),
    (1_700_000_001, 999_999, b"\xaa" * 14, 1514),
    (1_700_000_002, 0, b"", 0),
]


def read_all(path: Path, **kw: int) -> tuple[list[tuple[int, int, int, bytes, int]], CaptureReader]:
    """(ts_ns, caplen, wirelen, data, frame) per packet, and the reader."""
    rows = []
    with open_capture(str(path), **kw) as reader:
        for block in reader.blocks():
            for i in range(len(block)):
                rows.append(
                    (
                        int(block.ts_ns[i]),
                        int(block.caplen[i]),
                        int(block.wirelen[i]),
                        block.packet(i),
                        block.first_frame + i,
                    )
                )
    return rows, reader


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("magic", [MAGIC_USEC, MAGIC_NSEC])
def test_byte_orders_and_precisions(tmp_path: Path, endian: str, magic: int) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(build_pcap(PACKETS, endian=endian, magic=magic, linktype=113))
    rows, reader = read_all(path)
    scale = 1 if magic == MAGIC_NSEC else 1000
    assert rows == [
        (s * 1_000_000_000 + f * scale, len(d), w, d, n + 1)
        for n, (s, f, d, w) in enumerate(PACKETS)
    ]
    assert reader.format == "pcap"
    assert reader.compression is None
    (iface,) = reader.interfaces
    assert iface.linktype == 113
    assert iface.snaplen == 65535
    assert iface.ts_resolution == (1_000_000_000 if magic == MAGIC_NSEC else 1_000_000)
    assert reader.packets == 3
    assert reader.damage is None
    assert reader.bytes_read == path.stat().st_size


def test_fcs_bits_of_the_link_type_field_are_masked(tmp_path: Path) -> None:
    # F bit set and FCS length 4 (in 16-bit units: 2) in the upper bits.
    field = 1 | (1 << 28) | (2 << 29)
    path = tmp_path / "fcs.pcap"
    path.write_bytes(build_pcap(PACKETS[:1], linktype=field))
    rows, reader = read_all(path)
    assert reader.interfaces[0].linktype == 1
    assert len(rows) == 1


def test_kuznetzov_records_skip_the_extra_header(tmp_path: Path) -> None:
    path = tmp_path / "kuz.pcap"
    path.write_bytes(build_pcap(PACKETS, magic=MAGIC_KUZNETZOV))
    rows, _ = read_all(path)
    assert [r[3] for r in rows] == [d for _, _, d, _ in PACKETS]


def test_unsupported_major_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v1.pcap"
    path.write_bytes(build_pcap(PACKETS, version=(1, 4)))
    with pytest.raises(CaptureError, match=r"v1\.pcap: unsupported pcap version 1\.4"):
        open_capture(str(path))


def test_oddities_are_counted_not_fatal(tmp_path: Path) -> None:
    packets: list[Packet] = [
        (1, 0, b"x" * 20, 10),  # caplen > wirelen
        (2, 0, b"y" * 20, 20),  # caplen > snaplen 16
        (3, 2_000_000, b"z", 1),  # fraction >= 1 s in microseconds
    ]
    path = tmp_path / "odd.pcap"
    path.write_bytes(build_pcap(packets, snaplen=16))
    rows, reader = read_all(path)
    assert len(rows) == 3
    assert rows[2][0] == 3 * 1_000_000_000 + 2_000_000_000  # the excess carries over
    problems = reader.problems
    assert "records whose caplen exceeds the snaplen 16 (2 times)" in problems
    assert "records whose caplen exceeds their original length" in problems
    assert "timestamps whose fraction of a second is out of range" in problems


def test_huge_caplen_is_damage_without_allocation(tmp_path: Path) -> None:
    data = (
        build_pcap(PACKETS[:1]) + struct.pack("<IIII", 5, 0, 0x7FFF_FFFF, 0x7FFF_FFFF) + b"x" * 50
    )
    path = tmp_path / "huge.pcap"
    path.write_bytes(data)
    rows, reader = read_all(path)
    assert len(rows) == 1
    damage = reader.damage
    assert damage is not None
    assert damage.offset == 24 + 16 + 60
    assert "claims 2147483647" in damage.problem


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.integers(0, 999_999),
            st.binary(max_size=80),
            st.integers(0, 2**32 - 1),
        ),
        max_size=12,
    ),
    st.sampled_from(["<", ">"]),
    st.integers(32, 200),
)
def test_any_valid_pcap_reads_back(
    tmp_path_factory: pytest.TempPathFactory,
    packets: list[Packet],
    endian: str,
    block_bytes: int,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.pcap"
    path.write_bytes(build_pcap(packets, endian=endian, snaplen=0))
    rows, reader = read_all(path, block_bytes=block_bytes)
    assert reader.damage is None
    assert [(r[0], r[3], r[2]) for r in rows] == [
        (s * 1_000_000_000 + f * 1000, d, w) for s, f, d, w in packets
    ]


# -- the lane walk ---------------------------------------------------------------------


def _scan_both(data: bytes, eof: bool) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """(lanes, sequential) scans of a whole buffer: starts, stop position, need, damage
    (small lanes, so that short buffers have many)."""
    from portsniff.capture import pcap

    parser = pcap.PcapParser(data[:24], "t.pcap")
    buf = bytearray(data)
    out = []
    for lanes in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(pcap, "LANES_MIN_BYTES", 1024 if lanes else 1 << 62)
            mp.setattr(pcap, "LANE_BYTES", 256)
            mp.setattr(pcap, "LANE_WINDOW", 128)
            mp.setattr(pcap, "LANES_MIN_ACTIVE", 3)
            scan = parser.scan(buf, 24, len(buf), eof, 1)
        starts = [] if scan.block is None else scan.block.offset.tolist()
        out.append((starts, scan.pos, scan.need, scan.damage))
    return out[0], out[1]


def _records(draw: st.DrawFn) -> bytes:
    """Records of many sizes; in a messy stream, with damage or junk now and then."""
    messy = draw(st.booleans())
    parts = []
    sec = 1_700_000_000
    for _ in range(draw(st.integers(0, 150))):
        size = draw(st.sampled_from([0, 4, 14, 60, 90, 200, 300]))
        data = draw(st.binary(min_size=size, max_size=size))
        if messy:
            sec += draw(st.sampled_from([0, 0, 1, 7200]))
            frac = draw(st.sampled_from([0, 5, 999_999, 1_000_000]))
            wire = max(size + draw(st.sampled_from([0, 0, 10, -1])), 0)
            junk = draw(st.sampled_from([b"", b"", b"", b"\x00" * 3, b"\xff" * 20]))
        else:
            sec += draw(st.sampled_from([0, 0, 1]))
            frac, wire, junk = 5, size, b""
        parts.append(struct.pack("<IIII", sec, frac, size, wire) + data + junk)
    return b"".join(parts)


@settings(max_examples=150, deadline=None)
@given(st.composite(_records)(), st.booleans())
def test_lane_walk_finds_exactly_the_sequential_records(body: bytes, eof: bool) -> None:
    header = struct.pack("<IHHiIII", MAGIC_USEC, 2, 4, 0, 0, 0, 1)
    lanes, sequential = _scan_both(header + body, eof)
    assert lanes == sequential


@pytest.mark.parametrize(
    ("endian", "magic"),
    [("<", MAGIC_USEC), (">", MAGIC_USEC), ("<", MAGIC_NSEC), (">", MAGIC_KUZNETZOV)],
)
def test_lane_walk_on_a_clean_capture_uses_lanes(
    monkeypatch: pytest.MonkeyPatch, endian: str, magic: int
) -> None:
    """Many small records: the lanes confirm each other and every record is found."""
    from portsniff.capture import pcap

    packets = [(1_700_000_000 + i // 100, i, bytes([i % 256]) * (i % 70), 70) for i in range(3000)]
    data = build_pcap(packets, endian=endian, magic=magic)
    calls = []
    real = pcap.PcapParser._lanes

    def spy(self: pcap.PcapParser, buf: bytearray, pos: int, end: int) -> object:
        got = real(self, buf, pos, end)
        calls.append(len(got[0]))
        return got

    monkeypatch.setattr(pcap.PcapParser, "_lanes", spy)
    lanes, sequential = _scan_both(data, True)
    assert lanes == sequential
    assert len(lanes[0]) == 3000
    assert calls and calls[0] > 2500  # nearly all found by the lanes


def test_a_late_guess_that_chains_on_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read 4 bytes late, (fraction, caplen, wirelen, packet bytes) chains like a header
    (equal caplen and wirelen, big first packet bytes); clocks tell them apart."""
    packets = [(1_700_000_000, 60, b"\xff" * 60, 60) for _ in range(2000)]
    lanes, sequential = _scan_both(build_pcap(packets), True)
    assert lanes == sequential
    assert len(lanes[0]) == 2000
