"""open_capture: real captures against tshark/scapy, compression, stdin, damage, bad input."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import random
import shutil
import struct
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsniff.capture.reader import CaptureReader, open_capture
from portsniff.errors import CaptureError
from tests.capture.test_pcap import MAGIC_NSEC, PACKETS, build_pcap
from tests.capture.test_pcapng import EXPECTED_DATA, EXPECTED_ROWS, shb, two_sections

#: The two files that tshark refuses too (pcap major version 1; SHB option overrun).
REFUSED = {
    "libpcap__pcap-invalid-version-1.pcap": "unsupported pcap version 1.4",
    "libpcap__shb-option-too-long.pcapng": "section header option",
}
INT64_MAX = 2**63 - 1

Row = tuple[int, int, int]  # ts_ns, caplen, wirelen


def capture_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name not in ("README.md", "MANIFEST.tsv"))


def our_rows(path: Path, **kw: int) -> tuple[list[Row], list[bytes], CaptureReader]:
    rows: list[Row] = []
    datas: list[bytes] = []
    with open_capture(str(path), **kw) as reader:
        for block in reader.blocks():
            assert block.first_frame == len(rows) + 1
            rows.extend(
                zip(
                    block.ts_ns.tolist(), block.caplen.tolist(), block.wirelen.tolist(), strict=True
                )
            )
            datas.extend(block.packet(i) for i in range(len(block)))
            # Every packet lies inside the data the block hands out.
            assert all(
                len(d) == c
                for d, c in zip(datas[-len(block) :], block.caplen.tolist(), strict=True)
            )
    return rows, datas, reader


def test_every_shared_capture_opens_or_is_refused(shared_captures: Path) -> None:
    manifest = {
        row["file"]: row
        for row in csv.DictReader((shared_captures / "MANIFEST.tsv").open(), delimiter="\t")
    }
    files = capture_files(shared_captures)
    assert {f.name for f in files} == set(manifest)
    for path in files:
        if path.name in REFUSED:
            with pytest.raises(CaptureError, match=REFUSED[path.name]) as info:
                open_capture(str(path))
            assert str(path) in str(info.value)
            assert "\n" not in str(info.value)
            continue
        rows, _, reader = our_rows(path)
        entry = manifest[path.name]
        assert reader.damage is None, path.name
        # MANIFEST counts packets, not tshark frames: custom blocks are not packets.
        assert len(rows) == int(entry["packets"]), path.name
        assert reader.format == ("pcapng" if "pcapng" in entry["filetype"] else "pcap"), path.name
        assert reader.compression == ("zstd" if path.suffix == ".zst" else None)


def test_classic_pcap_fields_equal_scapy(shared_captures: Path) -> None:
    from scapy.utils import RawPcapReader

    checked = 0
    for path in capture_files(shared_captures):
        if path.name in REFUSED:
            continue
        with path.open("rb") as f:
            if f.read(4) in (b"\x0a\x0d\x0d\x0a", b"\x28\xb5\x2f\xfd"):
                continue
        theirs = []
        scapy_reader = RawPcapReader(str(path))
        scale = 1 if getattr(scapy_reader, "nano", False) else 1000
        for _, meta in scapy_reader:
            theirs.append((meta.sec * 10**9 + meta.usec * scale, meta.caplen, meta.wirelen))
        scapy_reader.close()
        rows, _, _ = our_rows(path)
        assert rows == theirs, path.name
        checked += 1
    assert checked > 90


FIELDS = [
    arg for f in ("time_epoch", "cap_len", "len", "interface_id") for arg in ("-e", f"frame.{f}")
]


def tshark_rows(path: Path, pcapng: bool) -> list[Row]:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", *FIELDS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = []
    for line in out.splitlines():
        ts, caplen, wirelen, iface = line.split("\t")
        if pcapng and iface == "":
            continue  # a pcapng custom block that tshark shows as a frame
        # No timestamp (Simple Packet Block) is 0 for us; beyond int64 ns we clamp.
        ns = min(int(Decimal(ts) * 10**9), INT64_MAX) if ts else 0
        rows.append((ns, int(caplen), int(wirelen)))
    return rows


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_pcapng_and_special_pcap_fields_equal_tshark(shared_captures: Path) -> None:
    names = [
        p
        for p in capture_files(shared_captures)
        if p.name not in REFUSED
        and (
            p.open("rb").read(4) in (b"\x0a\x0d\x0d\x0a", b"\x28\xb5\x2f\xfd")
            or p.name in ("pcapplusplus__microsecs_big_endian.pcap", "pcapplusplus__nanosecs.pcap")
        )
    ]
    assert len(names) >= 14
    for path in names:
        rows, _, reader = our_rows(path)
        assert rows == tshark_rows(path, reader.format == "pcapng"), path.name


def test_test102_interfaces_and_comments(shared_captures: Path) -> None:
    path = shared_captures / "gopacket__le_test102.pcapng"
    _, _, reader = our_rows(path)
    assert [i.linktype for i in reader.interfaces] == [1, 0, 1]
    assert reader.section_comments == ["test102"]
    assert "skipped Custom Block (3 times)" in reader.problems


def test_tiny_blocks_give_the_same_packets(shared_captures: Path) -> None:
    path = shared_captures / "zeek__wikipedia.pcap"
    big = our_rows(path)
    small = our_rows(path, block_bytes=64)
    assert big[0] == small[0]
    assert big[1] == small[1]


# -- hand-made captures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "compress"),
    [
        ("gzip", gzip.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("bzip2", bz2.compress),
        ("xz", lzma.compress),
    ],
)
def test_compressed_captures(tmp_path: Path, kind: str, compress: object) -> None:
    plain = tmp_path / "plain.pcapng"
    plain.write_bytes(two_sections())
    packed = tmp_path / "packed.bin"  # the name says nothing: the magic decides
    packed.write_bytes(compress(two_sections()))  # type: ignore[operator]
    rows, datas, reader = our_rows(packed, block_bytes=50)
    assert reader.compression == kind
    assert reader.format == "pcapng"
    assert rows == [r[:3] for r in EXPECTED_ROWS]
    assert datas == EXPECTED_DATA


def test_zstd_with_several_frames(tmp_path: Path) -> None:
    data = build_pcap(PACKETS)
    c = zstandard.ZstdCompressor()
    path = tmp_path / "f.pcap.zst"
    path.write_bytes(c.compress(data[:50]) + c.compress(data[50:]))
    rows, _, reader = our_rows(path)
    assert len(rows) == 3
    assert reader.damage is None


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_truncated_compressed_stream_is_damage(tmp_path: Path, kind: str) -> None:
    rng = random.Random(7)
    # Incompressible and > 128 KiB, so that zstd has finished blocks before the cut.
    packets = [(i, 0, rng.randbytes(rng.randrange(40, 1500)), 1500) for i in range(400)]
    data = build_pcap(packets)
    packed = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    path = tmp_path / "cut"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    rows, datas, reader = our_rows(path)
    assert reader.damage is not None
    assert f"{kind} stream is damaged" in reader.damage.problem
    assert 0 < len(rows) < 400
    assert datas == [d for _, _, d, _ in packets[: len(rows)]]
    assert reader.damage.offset == 24 + sum(16 + len(d) for d in datas)


def test_truncated_tiny_zstd_is_refused(tmp_path: Path) -> None:
    packed = zstandard.ZstdCompressor().compress(build_pcap(PACKETS))
    path = tmp_path / "cut.zst"
    path.write_bytes(packed[:-5])
    with pytest.raises(CaptureError, match="zstd data is corrupt"):
        open_capture(str(path))


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress(build_pcap(PACKETS, magic=MAGIC_NSEC, endian=">"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rows = []
    with open_capture("-", block_bytes=40) as reader:
        for block in reader.blocks():
            assert block.file == "<stdin>"
            rows.extend(block.ts_ns.tolist())
    assert rows == [s * 10**9 + f for s, f, _, _ in PACKETS]
    assert reader.compression == "gzip"


def test_empty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(CaptureError, match="<stdin>: empty"):
        open_capture("-")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"<!DOCTYPE html><html></html>", "not a capture file \\(starts with '<!DO'\\)"),
        (b"\x00\x01\x02\x03\x04", "not a capture file \\(starts with bytes 00 01 02 03\\)"),
        (b"\xd4\xc3", "too short to be a capture"),
        (build_pcap([])[:20], "truncated pcap global header \\(20 of 24 bytes\\)"),
        (gzip.compress(b"hello world"), "gzip-compressed, starts with 'hell'"),
        (b"\x1f\x8b\x08\x00garbage-after-gzip-magic", "gzip data is corrupt"),
    ],
)
def test_unreadable_input_is_one_line_capture_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "in.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message) as info:
        open_capture(str(path))
    assert str(info.value).startswith(str(path))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        open_capture(str(tmp_path / "nope.pcap"))
    with pytest.raises(CaptureError, match="is a directory"):
        open_capture(str(tmp_path))


def boundaries(data: bytes, fmt: str) -> tuple[list[int], list[int]]:
    """(every record/block end, the ends of the packet ones), from the first record on."""
    ends: list[int] = []
    packet_ends: list[int] = []
    if fmt == "pcap":
        pos = 24
        while pos < len(data):
            pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
            ends.append(pos)
        return ends, ends
    second = data.index(shb(">", comment="second section"))
    pos = 0
    while pos < len(data):
        endian = "big" if pos >= second else "little"
        btype = int.from_bytes(data[pos : pos + 4], endian)
        pos += int.from_bytes(data[pos + 4 : pos + 8], endian)
        ends.append(pos)
        if btype in (2, 3, 6):
            packet_ends.append(pos)
    return ends, packet_ends


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_at_every_byte(tmp_path: Path, fmt: str) -> None:
    data = build_pcap(PACKETS) if fmt == "pcap" else two_sections()
    header = 24 if fmt == "pcap" else int.from_bytes(data[4:8], "little")
    ends, packet_ends = boundaries(data, fmt)
    path = tmp_path / f"cut.{fmt}"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        if cut < header:
            with pytest.raises(CaptureError, match=r"empty file|truncated"):
                open_capture(str(path))
            continue
        rows, _, reader = our_rows(path, block_bytes=32)
        assert len(rows) == sum(1 for end in packet_ends if end <= cut), cut
        damage = reader.damage
        if cut == header or cut in ends:
            assert damage is None, cut
            continue
        assert damage is not None, cut
        # The damage is where the record that the cut went through starts.
        assert damage.offset == max([header, *(e for e in ends if e < cut)]), cut
        assert damage.file == str(path)
        assert str(damage).startswith(f"{path}: damaged at byte {damage.offset}: ")


def test_pcap_cut_inside_a_record_names_the_record(tmp_path: Path) -> None:
    data = build_pcap(PACKETS)
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: 24 + 16 + 60 + 16 + 4])
    rows, _, reader = our_rows(path)
    assert len(rows) == 1
    assert reader.damage is not None
    assert reader.damage.offset == 24 + 16 + 60
    assert reader.damage.problem == "record claims 14 bytes but only 4 remain"
    path.write_bytes(data[: 24 + 16 + 60 + 5])
    _, _, reader = our_rows(path)
    assert reader.damage is not None
    assert reader.damage.problem == "truncated record header (5 of 16 bytes)"


def test_length_field_claiming_2gb_allocates_nothing_big(tmp_path: Path) -> None:
    # A snaplen of 2**32-1 lets a 10 MB record be plausible; only 50 bytes are there.
    header = build_pcap([], snaplen=2**32 - 1)
    record = (1).to_bytes(4, "little") * 2 + (10 << 20).to_bytes(4, "little") * 2
    path = tmp_path / "claim.pcap"
    path.write_bytes(header + record + b"x" * 50)
    tracemalloc.start()
    try:
        rows, _, reader = our_rows(path, block_bytes=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == []
    assert reader.damage is not None
    assert reader.damage.problem == f"record claims {10 << 20} bytes but only 50 remain"
    assert peak < 1 << 20


def test_close_while_iterating_stops_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "p.pcap"
    path.write_bytes(build_pcap(PACKETS * 20))
    reader = open_capture(str(path), block_bytes=64)
    blocks = reader.blocks()
    first = next(blocks)
    assert first.first_frame == 1
    reader.close()
    assert list(blocks) == []
    assert reader.damage is None


def test_records_larger_than_the_buffer(tmp_path: Path) -> None:
    packets = [(1, 2, bytes([i]) * 3000, 3000) for i in range(5)]
    path = tmp_path / "big.pcap"
    path.write_bytes(build_pcap(packets))
    _, datas, reader = our_rows(path, block_bytes=64)
    assert datas == [d for _, _, d, _ in packets]
    assert reader.damage is None


MAGICS = [b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a", b""]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(MAGICS), st.binary(max_size=300), st.integers(32, 128))
def test_arbitrary_bytes_give_records_damage_or_capture_error(
    tmp_path: Path, magic: bytes, tail: bytes, block_bytes: int
) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(magic + tail)
    try:
        rows, _, reader = our_rows(path, block_bytes=block_bytes)
    except CaptureError as exc:
        assert "\n" not in str(exc)
        return
    assert reader.packets == len(rows)
    assert reader.bytes_read <= len(magic + tail)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_pcapng_gives_records_damage_or_capture_error(
    tmp_path: Path, data: st.DataObject
) -> None:
    raw = bytearray(two_sections())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    path = tmp_path / "mut.pcapng"
    path.write_bytes(bytes(raw))
    try:
        rows, _, reader = our_rows(path, block_bytes=data.draw(st.integers(32, 256)))
    except CaptureError:
        return
    assert reader.packets == len(rows)
    if reader.damage is not None:
        assert 0 <= reader.damage.offset < len(raw)


@pytest.mark.parametrize("rows", [1, 2, 4, 1000])
def test_blocks_hold_at_most_block_rows_packets(
    tmp_path: Path, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buffer of many small packets comes out as blocks of at most BLOCK_ROWS packets:
    the same packets, frames and comments as whole blocks."""
    from portsniff.capture import reader as reader_module

    path = tmp_path / "two.pcapng"
    path.write_bytes(two_sections())

    def read_all() -> tuple[list[tuple[int, bytes, int]], dict[int, str], list[int]]:
        packets, comments, sizes = [], {}, []
        with open_capture(str(path)) as r:
            for b in r.blocks():
                sizes.append(len(b))
                packets += [
                    (b.first_frame + i, b.packet(i), int(b.ts_ns[i])) for i in range(len(b))
                ]
                comments.update({b.first_frame + k: v for k, v in b.comments.items()})
        return packets, comments, sizes

    whole = read_all()
    monkeypatch.setattr(reader_module, "BLOCK_ROWS", rows)
    split = read_all()
    assert split[:2] == whole[:2]
    assert [p[1] for p in split[0]] == EXPECTED_DATA
    assert max(split[2]) <= rows
    assert split[1]  # the sample has comments: they moved with their packets


# -- reading up to a byte, and from a byte (two processes reading halves of a file) ---------


@st.composite
def clean_stream(
    draw: st.DrawFn, fmt: str | None = None
) -> tuple[bytes, str, list[tuple[int, bool, bool]]]:
    """An intact pcap or pcapng, and each record's or block's (start, carries a packet,
    describes an interface). pcapng: runs of EPBs, SPBs, name resolution blocks, and now
    and then a second interface described after packets."""
    from tests.capture.test_pcapng import NRB, block, epb, idb, opt, opts, spb

    fmt = fmt or draw(st.sampled_from(["pcap", "pcapng"]))
    n = draw(st.integers(0, 80))
    sizes = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    if fmt == "pcap":
        data = build_pcap([(T0 + k, 0, bytes([k % 251]) * s, s) for k, s in enumerate(sizes)])
        starts, pos = [], 24
        for s in sizes:
            starts.append((pos, True, False))
            pos += 16 + s
        return data, fmt, starts
    e = draw(st.sampled_from(["<", ">"]))
    parts = [shb(e), idb(1, 0, e)]
    starts = [(0, False, False), (len(parts[0]), False, True)]
    pos = sum(map(len, parts))
    ifaces = 1
    for k, s in enumerate(sizes):
        kind = draw(st.sampled_from(["epb", "epb", "epb", "epb", "spb", "nrb", "idb"]))
        payload = bytes([k % 251]) * s
        if kind == "epb":
            b = epb(draw(st.integers(0, ifaces - 1)), T0 * 10**6 + k, payload, None, e)
        elif kind == "spb":
            b = spb(s, payload, e)
        elif kind == "nrb":
            b = block(NRB, opts([opt(1, b"\x0a\x00\x00\x01x\x00", e)], e), e)
        else:
            b = idb(101, 0, e)
            ifaces += 1
        parts.append(b)
        starts.append((pos, kind in ("epb", "spb"), kind == "idb"))
        pos += len(b)
    return b"".join(parts), fmt, starts


T0 = 1_700_000_000


def _rows(blocks: object) -> list[tuple[int, int, int, bytes]]:
    out = []
    for b in blocks:  # type: ignore[attr-defined]
        out.extend(
            zip(
                b.ts_ns.tolist(),
                b.caplen.tolist(),
                b.wirelen.tolist(),
                [b.packet(i) for i in range(len(b))],
                strict=True,
            )
        )
    return out


@settings(max_examples=120, deadline=None)
@given(clean_stream(), st.floats(0.0, 1.0), st.sampled_from([64, 1000, 8 << 20]))
def test_a_stop_ends_reading_at_a_record_and_reading_goes_on(
    tmp_path_factory: pytest.TempPathFactory,
    stream: tuple[bytes, str, list[tuple[int, bool, bool]]],
    cut: float,
    block_bytes: int,
) -> None:
    """``blocks(stop)`` stops before the first record or block that starts at ``stop`` or
    later; reading on gives the rest: together, what one straight read gives."""
    data, fmt, starts = stream
    path = tmp_path_factory.mktemp("stop") / f"s.{fmt}"
    path.write_bytes(data)
    stop = int(cut * len(data))
    with open_capture(str(path), block_bytes=block_bytes) as reader:
        straight = _rows(reader.blocks())
    with open_capture(str(path), block_bytes=block_bytes) as reader:
        first = _rows(reader.blocks(stop))
        at = reader.next_start
        rest = _rows(reader.blocks())
        assert reader.next_start == len(data) and reader.damage is None
    header = 24 if fmt == "pcap" else starts[1][0]
    want = next((s for s, _, _ in starts if s >= max(stop, header)), len(data))
    assert at == want
    assert len(first) == sum(1 for s, packet, _ in starts if packet and s < want)
    assert first + rest == straight


@settings(max_examples=120, deadline=None)
@given(clean_stream("pcapng"), st.floats(0.0, 1.0))
def test_a_pcapng_read_from_its_middle(
    tmp_path_factory: pytest.TempPathFactory,
    stream: tuple[bytes, str, list[tuple[int, bool, bool]]],
    cut: float,
) -> None:
    """``resume_at`` finds the first block at or after a byte; from there it reads what a
    straight read reads from there, and its state (interfaces) is a straight reader's at
    that block unless an interface was described after the first packet before it."""
    data, _, starts = stream
    path = tmp_path_factory.mktemp("resume") / "r.pcapng"
    path.write_bytes(data)
    offset = int(cut * len(data))
    want = next((s for s, _, _ in starts if s >= max(offset, 1)), len(data))
    with open_capture(str(path), block_bytes=256) as straight:
        before = _rows(straight.blocks(want))
        state = straight.state()
        tail = _rows(straight.blocks())
    with open_capture(str(path), block_bytes=256) as reader:
        assert reader.resume_at(offset) == want
        got_state = reader.state()
        got = _rows(reader.blocks())
        problems = sum(reader.problem_counts().values())
    first_packet = next((s for s, packet, _ in starts if packet), len(data))
    late_idb = any(i for s, _, i in starts if first_packet < s < want)
    assert (got_state == state) == (not late_idb)
    if not late_idb:
        assert got == tail
        # Only what it read is counted (not the blocks it learnt the interfaces from).
        nrb = sum(1 for s, packet, iface in starts[2:] if s >= want and not packet and not iface)
        assert problems == nrb
    assert len(before) + len(tail) == sum(1 for _, packet, _ in starts if packet)


def test_resume_at_needs_an_uncompressed_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "a.pcap"
    path.write_bytes(build_pcap(PACKETS))
    with open_capture(str(path)) as reader, pytest.raises(ValueError, match="pcapng"):
        reader.resume_at(30)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_damage_before_a_stop_is_reported(tmp_path: Path, fmt: str) -> None:
    """Reading up to a byte past damage stops at the damage, and says so."""
    from tests.capture.test_pcapng import epb, idb

    if fmt == "pcap":
        good = build_pcap(PACKETS)
        data = good + struct.pack("<IIII", T0, 0, 1 << 30, 1 << 30) + bytes(64)
    else:
        good = shb() + idb(1) + epb(0, 5, b"abc") + epb(0, 6, b"defg")
        data = good + struct.pack("<II", 6, 7) + bytes(64)
    path = tmp_path / f"d.{fmt}"
    path.write_bytes(data)
    with open_capture(str(path), block_bytes=64) as reader:
        got = _rows(reader.blocks(len(data) - 8))
        assert reader.damage is not None and reader.damage.offset == len(good)
        assert len(got) == (3 if fmt == "pcap" else 2)


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_a_stop_in_a_section_of_the_other_byte_order(tmp_path: Path, block_bytes: int) -> None:
    """Blocks after a section header of the other byte order are walked in its order:
    reading stops at a block's start at or after any byte, and goes on from there."""
    data = two_sections()
    path = tmp_path / "two.pcapng"
    path.write_bytes(data)
    ends, _ = boundaries(data, "pcapng")
    with open_capture(str(path), block_bytes=block_bytes) as reader:
        straight = _rows(reader.blocks())
    for stop in range(len(data) + 1):
        with open_capture(str(path), block_bytes=block_bytes) as reader:
            first = _rows(reader.blocks(stop))
            at = reader.next_start
            assert first + _rows(reader.blocks()) == straight, stop
        assert at == next(e for e in [*ends, len(data)] if e >= max(stop, ends[0])), stop


def test_a_wrong_cut_reads_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the walk to name a cut inside a record, reading goes on to the end (it never
    loops on the cut)."""
    from portsniff.capture.pcap import PcapParser

    path = tmp_path / "p.pcap"
    path.write_bytes(build_pcap(PACKETS))
    monkeypatch.setattr(PcapParser, "next_start", lambda self, buf, pos, end, stop: pos + 20)
    with open_capture(str(path), block_bytes=64) as reader:
        assert len(_rows(reader.blocks(30))) == len(PACKETS)
        assert reader.next_start == path.stat().st_size and reader.damage is None


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_hostile_captures_read_in_two(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Damaged streams (bad lengths, cut blocks, odd options): reading up to any byte and
    then on gives what one straight read gives, damage included; reading from any byte
    never raises (it reads, or reports damage)."""
    from tests.capture.test_pcap import _records
    from tests.capture.test_pcapng import _stream

    if data.draw(st.booleans()):
        blob = data.draw(_stream())
        path = tmp_path_factory.mktemp("hostile") / "h.pcapng"
    else:
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0, 1)
        blob = header + data.draw(st.composite(_records)())
        path = tmp_path_factory.mktemp("hostile") / "h.pcap"
    path.write_bytes(blob)
    stop = data.draw(st.integers(0, len(blob)))
    block_bytes = data.draw(st.sampled_from([64, 1000, 1 << 20]))
    with open_capture(str(path), block_bytes=block_bytes) as reader:
        straight = _rows(reader.blocks())
        damage = reader.damage
    with open_capture(str(path), block_bytes=block_bytes) as reader:
        got = _rows(reader.blocks(stop))
        got += _rows(reader.blocks())
        assert (got, reader.damage) == (straight, damage)
    if path.suffix == ".pcapng":
        with open_capture(str(path), block_bytes=block_bytes) as reader:
            reader.resume_at(data.draw(st.integers(0, len(blob))))
            _rows(reader.blocks())
