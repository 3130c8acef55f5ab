"""pcapng: sections, byte orders, interfaces, timestamp resolutions, packet blocks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.capture.pcapng import OptionError, parse_options
from portsniff.capture.reader import CaptureReader, open_capture
from portsniff.errors import CaptureError

SHB, IDB, PB, SPB, NRB, ISB, EPB, CUSTOM = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x40000BAD


def opt(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def opts(items: list[bytes], e: str = "<") -> bytes:
    return b"".join(items) + (struct.pack(e + "HH", 0, 0) if items else b"")


def block(btype: int, body: bytes, e: str = "<") -> bytes:
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e: str = "<", comment: str | None = None, version: tuple[int, int] = (1, 0)) -> bytes:
    o = [opt(1, comment.encode(), e)] if comment else []
    return block(SHB, struct.pack(e + "IHHq", 0x1A2B3C4D, *version, -1) + opts(o, e), e)


def idb(
    linktype: int,
    snaplen: int = 0,
    e: str = "<",
    name: str | None = None,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    o = []
    if name:
        o.append(opt(2, name.encode(), e))
    if tsresol is not None:
        o.append(opt(9, bytes([tsresol]), e))
    if tsoffset is not None:
        o.append(opt(14, struct.pack(e + "q", tsoffset), e))
    return block(IDB, struct.pack(e + "HHI", linktype, 0, snaplen) + opts(o, e), e)


def epb(
    iface: int,
    ticks: int,
    data: bytes,
    wirelen: int | None = None,
    e: str = "<",
    comments: tuple[str, ...] = (),
) -> bytes:
    head = struct.pack(
        e + "IIIII",
        iface,
        ticks >> 32,
        ticks & 0xFFFFFFFF,
        len(data),
        len(data) if wirelen is None else wirelen,
    )
    o = [opt(1, c.encode(), e) for c in comments]
    return block(EPB, head + data + b"\x00" * (-len(data) % 4) + opts(o, e), e)


def spb(wirelen: int, data: bytes, e: str = "<") -> bytes:
    return block(SPB, struct.pack(e + "I", wirelen) + data + b"\x00" * (-len(data) % 4), e)


def pb(iface: int, ticks: int, data: bytes, e: str = "<") -> bytes:
    head = struct.pack(
        e + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return block(PB, head + data + b"\x00" * (-len(data) % 4), e)


T0 = 1_700_000_000


def two_sections() -> bytes:
    """Section 1 little-endian (Ethernet, µs), section 2 big-endian (raw IP ns; SLL 2^-20 s)."""
    return b"".join(
        [
            shb("<", comment="first section"),
            idb(1, 65535, name="eth0"),
            epb(0, T0 * 1_000_000 + 5, b"A" * 61, 70, comments=("hello",)),
            block(NRB, opts([opt(1, b"\x0a\x00\x00\x01x.example\x00")])),
            spb(100, b"B" * 100),  # snaplen 65535: caplen 100
            block(CUSTOM, struct.pack("<I", 32473) + b"data"),
            shb(">", comment="second section"),
            idb(101, 64, e=">", tsresol=9),
            idb(113, 0, e=">", name="any", tsresol=0x80 | 20, tsoffset=10),
            epb(1, (T0 << 20) + (1 << 19), b"C" * 8, e=">", comments=("one", "two")),
            epb(0, T0 * 1_000_000_000 + 7, b"D" * 40, e=">"),
            spb(200, b"E" * 64, e=">"),  # snaplen 64 of interface 0 of this section
            pb(0, 42, b"F" * 3, e=">"),
            block(ISB, struct.pack(">IIII", 0, 0, 0, 0), e=">"),
        ]
    )


def read(
    path: Path, block_bytes: int = 8 << 20
) -> tuple[list[tuple[int, ...]], list[bytes], dict[int, str], CaptureReader]:
    rows: list[tuple[int, ...]] = []
    datas: list[bytes] = []
    comments: dict[int, str] = {}
    with open_capture(str(path), block_bytes=block_bytes) as reader:
        for b in reader.blocks():
            for i in range(len(b)):
                rows.append(
                    (
                        int(b.ts_ns[i]),
                        int(b.caplen[i]),
                        int(b.wirelen[i]),
                        int(b.linktype[i]),
                        int(b.interface[i]),
                    )
                )
                datas.append(b.packet(i))
            comments.update({b.first_frame + k: v for k, v in b.comments.items()})
    return rows, datas, comments, reader


EXPECTED_ROWS = [
    (T0 * 10**9 + 5000, 61, 70, 1, 0),
    (0, 100, 100, 1, 0),
    (T0 * 10**9 + 500_000_000 + 10 * 10**9, 8, 8, 113, 2),
    (T0 * 10**9 + 7, 40, 40, 101, 1),
    (0, 64, 200, 101, 1),
    (42, 3, 3, 101, 1),
]
EXPECTED_DATA = [b"A" * 61, b"B" * 100, b"C" * 8, b"D" * 40, b"E" * 64, b"F" * 3]


@pytest.mark.parametrize("block_bytes", [8 << 20, 32, 100])
def test_two_sections_two_byte_orders(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "two.pcapng"
    path.write_bytes(two_sections())
    rows, datas, comments, reader = read(path, block_bytes)
    assert rows == EXPECTED_ROWS
    assert datas == EXPECTED_DATA
    assert comments == {1: "hello", 3: "one\ntwo"}
    assert reader.section_comments == ["first section", "second section"]
    assert [
        (i.linktype, i.snaplen, i.name, i.ts_resolution, i.ts_offset) for i in reader.interfaces
    ] == [
        (1, 65535, "eth0", 10**6, 0),
        (101, 64, None, 10**9, 0),
        (113, 0, "any", 2**20, 10),
    ]
    assert reader.format == "pcapng"
    assert reader.damage is None
    assert reader.packets == 6
    assert sorted(reader.problems) == [
        "skipped Custom Block",
        "skipped Interface Statistics Block",
        "skipped Name Resolution Block",
    ]


def test_damage_offsets(tmp_path: Path) -> None:
    good = shb() + idb(1) + epb(0, 1, b"x" * 4)
    cases = {
        "length not a multiple of 4": struct.pack("<II", EPB, 30) + b"\x00" * 30,
        "trailer mismatch": block(EPB, b"\x00" * 24)[:-4] + struct.pack("<I", 99),
        "unknown interface": epb(5, 1, b"y"),
        "caplen beyond block": block(EPB, struct.pack("<IIIII", 0, 0, 0, 500, 500) + b"z" * 4),
        "2 GB block": struct.pack("<II", EPB, 0x8000_0000) + b"\x00" * 40,
        "short block": struct.pack("<II", EPB, 8) + b"\x00" * 8,
        "bad later SHB": shb(version=(2, 0)),
    }
    for why, bad in cases.items():
        path = tmp_path / "d.pcapng"
        path.write_bytes(good + bad + epb(0, 2, b"never"))
        rows, _, _, reader = read(path)
        assert len(rows) == 1, why
        assert reader.damage is not None, why
        assert reader.damage.offset == len(good), why


def test_spb_before_any_interface_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    path.write_bytes(shb() + spb(4, b"abcd"))
    rows, _, _, reader = read(path)
    assert rows == []
    assert reader.damage is not None
    assert "before any interface" in reader.damage.problem


def test_unreadable_packet_options_keep_the_packet(tmp_path: Path) -> None:
    bad_opt = struct.pack("<HH", 1, 200) + b"oops"
    body = struct.pack("<IIIII", 0, 0, 9, 4, 4) + b"abcd" + bad_opt
    path = tmp_path / "o.pcapng"
    path.write_bytes(shb() + idb(1) + block(EPB, body))
    _, datas, comments, reader = read(path)
    assert datas == [b"abcd"]
    assert comments == {}
    assert reader.damage is None
    assert any("packet options unreadable" in p for p in reader.problems)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (shb(version=(2, 0)), "unsupported pcapng version 2.0"),
        (shb()[:20], "truncated pcapng section header"),
        (shb()[:8] + b"\x00\x00\x00\x00" + shb()[12:], "bad byte-order magic"),
        (
            block(
                SHB,
                struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + struct.pack("<HH", 1, 300) + b"xxxx",
            ),
            "claims 300 bytes",
        ),
    ],
)
def test_bad_first_section_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.pcapng"
    path.write_bytes(data)
    with pytest.raises(CaptureError, match=message):
        open_capture(str(path))


def test_timestamps_out_of_int64_range_are_clamped(tmp_path: Path) -> None:
    path = tmp_path / "far.pcapng"
    path.write_bytes(shb() + idb(1) + epb(0, 2**64 - 1, b"x"))
    rows, _, _, reader = read(path)
    assert rows[0][0] == 2**63 - 1
    assert "timestamps out of range (clamped)" in reader.problems


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(["<", ">"]))
def test_parse_options_only_raises_option_error(data: bytes, endian: str) -> None:
    try:
        options = parse_options(data, 0, len(data), endian)
    except OptionError:
        return
    assert all(isinstance(code, int) and isinstance(v, bytes) for code, v in options)
    assert sum(4 + len(v) for _, v in options) <= len(data)


# -- runs of enhanced packet blocks read at once equal the one-by-one scan ---------------


@st.composite
def _stream(draw: st.DrawFn) -> bytes:
    """A pcapng stream: sections, interfaces of several resolutions, long runs of EPBs
    (some with comments or other options, far-off or wrapped timestamps), other blocks,
    and now and then a damaged block."""
    e = draw(st.sampled_from(["<", ">"]))
    out = [shb(e), idb(1, 0, e)]
    nifaces = 1
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(
            st.sampled_from(["run", "run", "run", "idb", "spb", "nrb", "shb", "opts", "damage"])
        )
        if kind == "run":
            for _ in range(draw(st.integers(1, 40))):
                ticks = draw(
                    st.one_of(
                        st.integers(T0 * 10**6, T0 * 10**6 + 10**9),
                        st.integers(0, 2**64 - 1),
                        st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**62]),
                    )
                )
                data = draw(st.binary(max_size=24))
                comments = tuple(draw(st.lists(st.sampled_from(["a", "bé", ""]), max_size=2)))
                out.append(epb(draw(st.integers(0, nifaces - 1)), ticks, data, None, e, comments))
        elif kind == "idb":
            tsresol = draw(st.sampled_from([None, 6, 9, 0, 0x80 | 20, 0x80, 12]))
            tsoffset = draw(st.sampled_from([None, 0, 10, -(10**6), 2**40]))
            out.append(idb(113, 64, e, tsresol=tsresol, tsoffset=tsoffset))
            nifaces += 1
        elif kind == "spb":
            out.append(spb(30, b"s" * draw(st.integers(0, 30)), e))
        elif kind == "nrb":
            out.append(block(NRB, opts([opt(1, b"\x0a\x00\x00\x01x\x00", e)], e), e))
        elif kind == "shb":
            e = draw(st.sampled_from(["<", ">"]))
            out += [shb(e), idb(1, 0, e)]
            nifaces = 1
        elif kind == "opts":  # a flags option (code 2), and an unreadable option
            head = struct.pack(e + "IIIII", 0, 0, 5, 4, 4) + b"abcd"
            o = draw(
                st.sampled_from(
                    [opts([opt(2, struct.pack(e + "I", 1), e)], e), struct.pack(e + "HH", 1, 99)]
                )
            )
            out.append(block(EPB, head + o, e))
        else:
            good = epb(0, 5, b"xyz", None, e)
            bad = draw(
                st.sampled_from(
                    [
                        good[:-4] + struct.pack(e + "I", 7),  # trailer mismatch
                        epb(9, 5, b"q", None, e),  # unknown interface
                        block(EPB, struct.pack(e + "IIIII", 0, 0, 0, 99, 99) + b"z" * 4, e),
                        good[: draw(st.integers(1, len(good) - 1))],  # cut short
                    ]
                )
            )
            out.append(bad)
    return b"".join(out)


@settings(max_examples=150, deadline=None)
@given(_stream(), st.sampled_from([8 << 20, 256, 1000]), st.booleans())
def test_runs_of_packet_blocks_are_the_one_by_one_scan(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, block_bytes: int, lanes: bool
) -> None:
    """Runs (walked in lanes or not) read what the one-by-one scan reads."""
    from portsniff.capture import pcap, pcapng

    path = tmp_path_factory.mktemp("runs") / "r.pcapng"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as mp:
        # Small lanes, so that small streams are walked in lanes too.
        mp.setattr(pcap, "LANES_MIN_BYTES", 512 if lanes else 1 << 62)
        mp.setattr(pcap, "LANE_BYTES", 128)
        mp.setattr(pcap, "LANE_WINDOW", 64)
        mp.setattr(pcap, "LANES_MIN_ACTIVE", 2)
        got = read(path, block_bytes)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pcapng, "EPB_RUNS", False)
        want = read(path, block_bytes)
    assert got[:3] == want[:3]
    assert got[3].problems == want[3].problems
    assert got[3].damage == want[3].damage


def test_a_long_run_is_read_at_once(tmp_path: Path) -> None:
    """A run's packets are exactly the packets (and runs and lanes did read them)."""
    from portsniff.capture import pcap, pcapng

    packets = [bytes([k % 251]) * (k % 50) for k in range(3000)]
    path = tmp_path / "long.pcapng"
    path.write_bytes(
        shb() + idb(1) + b"".join(epb(0, T0 * 10**6 + k, p) for k, p in enumerate(packets))
    )
    calls: list[bool] = []
    lanes: list[int] = []
    real = pcapng.PcapngParser._epb_run
    real_lanes = pcapng.PcapngParser._lanes

    def lane_spy(self: pcapng.PcapngParser, *args: object) -> object:
        got = real_lanes(self, *args)  # type: ignore[arg-type]
        lanes.append(len(got[0]))
        return got

    def spy(self: pcapng.PcapngParser, *args: object) -> object:
        got = real(self, *args)  # type: ignore[arg-type]
        calls.append(got is not None)
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pcapng.PcapngParser, "_epb_run", spy)
        mp.setattr(pcapng.PcapngParser, "_lanes", lane_spy)
        mp.setattr(pcap, "LANES_MIN_BYTES", 4096)
        mp.setattr(pcap, "LANE_BYTES", 1024)
        mp.setattr(pcap, "LANES_MIN_ACTIVE", 4)
        rows, datas, _, reader = read(path)
    assert datas == packets
    assert [r[0] for r in rows] == [(T0 * 10**6 + k) * 1000 for k in range(3000)]
    assert reader.damage is None
    assert any(calls)
    assert sum(lanes) > 2000  # most blocks were walked in lanes
