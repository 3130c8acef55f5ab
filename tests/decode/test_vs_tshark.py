"""The reference decoder against tshark, on real captures and on crafted packets.

For every packet, the outermost transport (the first of tcp/udp/sctp/dccp in tshark's
``frame.protocols``) and its ports must equal ours, and so must the outermost IP
addresses; the innermost tunnelled ports must equal tshark's last transport header's.
tshark runs with ``-o ip.defragment:FALSE -o ipv6.defragment:FALSE`` and with its
Teredo heuristic on (ours recognises Teredo on any port; tshark's is off by default).
Deliberate differences, each checked here rather than skipped:

- ICMP/ICMPv6 errors: tshark shows the quoted header's ports as ``udp.srcport`` etc.;
  we keep proto icmp/icmpv6 with no ports and put them in ``quoted``.
- Non-first fragments: tshark shows "data"; we keep the protocol's name (no ports).
- Truncated transport headers, IPv4 options or IPv6 extension headers (and a bogus
  IPv4 total length): tshark shows no transport layer; we keep the protocol's name
  with no ports and a problem.
- A truncated fixed IP header: tshark shows whichever address fields were captured;
  we show none.
- Frames that are not packets (pcapng custom blocks, which tshark shows as "data"
  frames) are counted for numbering and otherwise ignored.

A tiny test-only reader gives the link type and bytes of every packet (pcap, pcapng,
zstd-compressed), so this test does not depend on the project's capture reader.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from portsniff.decode.packet import Decoded
from portsniff.decode.reference import decode_packet
from portsniff.decode.transport import proto_name
from tests.tshark import UNREADABLE

TSHARK = shutil.which("tshark")
PORT_FIELDS = ("tcp", "udp", "sctp", "dccp")
FIELDS = (
    "frame.number",
    "frame.protocols",
    *(f"{p}.{end}port" for p in PORT_FIELDS for end in ("src", "dst")),
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
)
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xa1\xb2\x3c\x4d": ">",
}
CUSTOM_BLOCKS = (0x00000BAD, 0x40000BAD)
TRUNCATED_TRANSPORT = {f"truncated {p.upper()} header" for p in PORT_FIELDS} | {
    "truncated IPv4 options",
    "truncated IPv6 extension header",
    "bad IPv4 total length",
}
NO_ADDRESS_COMPARE = {
    f"truncated {v}{s}"
    for v in ("IP header", "IPv4 header", "IPv6 header", "IPv4 options")
    for s in ("", " (snaplen)")
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame as tshark numbers them; ``linktype`` None for non-packet frames."""

    linktype: int | None
    data: bytes
    wirelen: int


def _pcap(raw: bytes) -> Iterator[Frame]:
    order = PCAP_MAGICS[raw[:4]]
    linktype = struct.unpack_from(order + "I", raw, 20)[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(raw):
        caplen, wirelen = struct.unpack_from(order + "II", raw, off + 8)
        off += 16
        yield Frame(linktype, raw[off : off + caplen], wirelen)
        off += caplen


def _pcapng(raw: bytes) -> Iterator[Frame]:
    order = "<"
    linktypes: list[int] = []
    off = 0
    while off + 12 <= len(raw):
        if raw[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if raw[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        btype, blen = struct.unpack_from(order + "II", raw, off)
        if blen < 12 or off + blen > len(raw):
            return
        body = raw[off + 8 : off + blen - 4]
        if btype == 1:
            linktypes.append(struct.unpack_from(order + "H", body, 0)[0])
        elif btype == 6:
            iface, _hi, _lo, caplen, wirelen = struct.unpack_from(order + "IIIII", body, 0)
            yield Frame(linktypes[iface], body[20 : 20 + caplen], wirelen)
        elif btype == 3:
            (wirelen,) = struct.unpack_from(order + "I", body, 0)
            yield Frame(linktypes[0], body[4 : 4 + wirelen], wirelen)
        elif btype == 2:
            iface, _drops, _hi, _lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", body, 0)
            yield Frame(linktypes[iface], body[20 : 20 + caplen], wirelen)
        elif btype in CUSTOM_BLOCKS:
            yield Frame(None, b"", 0)
        off += blen


def read_frames(path: Path) -> list[Frame]:
    """Every frame of a pcap/pcapng file (maybe zstd-compressed), in tshark's numbering."""
    raw = path.read_bytes()
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    if raw[:4] in PCAP_MAGICS:
        return list(_pcap(raw))
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        return list(_pcapng(raw))
    return []


def tshark_rows(path: Path) -> list[list[str]] | None:
    """tshark's per-frame fields (FIELDS), or None when tshark cannot read the file."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), "--enable-heuristic", "teredo_udp"]
    cmd += ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
    cmd += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in FIELDS:
        cmd += ["-e", name]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 and not done.stdout:
        assert "tshark: The file" in done.stderr, done.stderr  # only unreadable files
        return None
    return [line.split("\t") for line in done.stdout.splitlines()]


def _int(text: str) -> int | None:
    return int(text) if text else None


def _base_problem(problem: str | None) -> str | None:
    """A problem without tunnel prefixes and the snaplen suffix."""
    if problem is None:
        return None
    return problem.removesuffix(" (snaplen)").rsplit(": ", 1)[-1]


def expected_mismatch(ours: Decoded, row: dict[str, str]) -> str | None:
    """Compare one packet; the text of the difference, or None when we agree with tshark."""
    layers = row["frame.protocols"].split(":")
    first = next((i for i, name in enumerate(layers) if name in PORT_FIELDS), None)
    icmp = next((i for i, name in enumerate(layers) if name in ("icmp", "icmpv6")), None)
    problem = _base_problem(ours.problem)
    if first is not None and icmp is not None and icmp < first:
        # Deliberate: tshark's first udp.srcport is the one quoted by the ICMP error.
        want = (layers[icmp], None, None)
        quoted = ours.quoted
        tport = layers[first]
        wanted_quote = (tport, _int(row[f"{tport}.srcport"]), _int(row[f"{tport}.dstport"]))
        got_quote = None if quoted is None else (quoted.proto, quoted.src_port, quoted.dst_port)
        if got_quote != wanted_quote:
            return f"quoted {got_quote} != tshark {wanted_quote}"
    elif first is not None:
        tport = layers[first]
        want = (tport, _int(row[f"{tport}.srcport"]), _int(row[f"{tport}.dstport"]))
    elif ours.fragment is not None and ours.fragment.offset > 0:
        # Deliberate: a non-first fragment keeps its protocol name (ports None, filled
        # from the first fragment by the annotator); tshark shows it as "data".
        want = (proto_name(ours.ip_proto or 0), None, None)
    elif problem in TRUNCATED_TRANSPORT and ours.src_port is None:
        # Deliberate: when the IP options/extension headers or the transport header are
        # too short for ports, proto keeps the name of the IP protocol number (with the
        # problem); tshark shows no transport layer at all.
        want = (ours.proto, None, None)
    else:
        want = (ours.proto, None, None) if ours.proto not in PORT_FIELDS else ("none", None, None)
    got = (ours.proto, ours.src_port, ours.dst_port)
    if got != want:
        return f"ours {got} != tshark {want} ({row['frame.protocols']})"
    if ours.problem in NO_ADDRESS_COMPARE:
        # Deliberate: without the whole fixed IP header we report no addresses; tshark
        # shows whichever address fields were captured (and no ip.dst when the
        # IPv4 options are cut).
        return None
    at = next((i for i, name in enumerate(layers) if name in ("ip", "ipv6")), None)
    ip_layer = None if at is None else layers[at]
    if ip_layer == "ip" and not row["ip.src"] and layers[at + 1 : at + 2] == ["ipv6"]:
        ip_layer = "ipv6"  # tshark's IPv4 dissector hands version 6 to IPv6
    want_ips = (None, None)
    if ip_layer is not None:  # tshark shows the layer without addresses when truncated
        want_ips = (row[f"{ip_layer}.src"] or None, row[f"{ip_layer}.dst"] or None)
    if (ours.src_ip, ours.dst_ip) != want_ips:
        return f"addresses ({ours.src_ip}, {ours.dst_ip}) != tshark {want_ips}"
    return None


def inner_mismatch(ours: Decoded, last: dict[str, str]) -> str | None:
    """Compare our innermost tunnelled ports with tshark's last transport header's."""
    layers = last["frame.protocols"].split(":")
    if not ours.inner or ours.inner[-1].src_port is None or "icmp" in layers or "icmpv6" in layers:
        return None
    tport = next((name for name in reversed(layers) if name in PORT_FIELDS), None)
    if tport is None:
        return f"inner {ours.inner[-1]} but tshark has no transport"
    want = (tport, _int(last[f"{tport}.srcport"]), _int(last[f"{tport}.dstport"]))
    got = (ours.inner[-1].proto, ours.inner[-1].src_port, ours.inner[-1].dst_port)
    return None if got == want else f"inner {got} != tshark's last {want}"


def compare_file(path: Path, rows: list[list[str]] | None = None) -> tuple[int, list[str]]:
    """(packets compared, differences) for one capture; skips when tshark cannot read it."""
    if rows is None:
        rows = tshark_rows(path)
    if rows is None:
        pytest.skip(f"tshark cannot read {path.name}")
    frames = read_frames(path)
    assert len(frames) == len(rows), f"{path.name}: {len(frames)} frames, tshark {len(rows)}"
    problems: list[str] = []
    compared = 0
    for frame, values in zip(frames, rows, strict=True):
        if frame.linktype is None:
            continue
        values = values + [""] * (len(FIELDS) - len(values))
        row = {name: value.split(",")[0] for name, value in zip(FIELDS, values, strict=True)}
        last = {name: value.split(",")[-1] for name, value in zip(FIELDS, values, strict=True)}
        ours = decode_packet(frame.linktype, frame.data, frame.wirelen)
        compared += 1
        diff = expected_mismatch(ours, row) or inner_mismatch(ours, last)
        if diff is not None:
            problems.append(f"{path.name} frame {row['frame.number']}: {diff}")
    return compared, problems


def _capture_names() -> list[str]:
    from tests.conftest import SHARED

    folder = SHARED / "captures"
    if not folder.is_dir():
        return ["<absent>"]
    # The two files tshark refuses are tested as one-line errors in tests/annotate.
    skip = {"MANIFEST.tsv", "README.md", *UNREADABLE}
    return sorted(p.name for p in folder.iterdir() if p.name not in skip)


@pytest.fixture(scope="module")
def tshark_outputs() -> dict[str, list[list[str]] | None]:
    """tshark's rows for every shared capture, run a few at a time (startup dominates)."""
    from tests.conftest import SHARED

    folder = SHARED / "captures"
    names = [name for name in _capture_names() if (folder / name).is_file()]
    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = pool.map(lambda name: tshark_rows(folder / name), names)
        return dict(zip(names, rows, strict=True))


@pytest.mark.slow
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", _capture_names())
def test_matches_tshark(
    shared_captures: Path, tshark_outputs: dict[str, list[list[str]] | None], name: str
) -> None:
    path = shared_captures / name
    rows = tshark_outputs[name]
    assert rows is not None, f"tshark cannot read {name}"
    compared, problems = compare_file(path, rows)
    assert problems == []
    assert compared == len([f for f in read_frames(path) if f.linktype is not None])


def write_pcap(path: Path, linktype: int, frames: list[tuple[bytes, int]]) -> None:
    """A little-endian microsecond pcap of (captured bytes, wire length) records."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, (data, wirelen) in enumerate(frames):
        out.append(struct.pack("<IIII", i, 0, len(data), wirelen) + data)
    path.write_bytes(b"".join(out))


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_crafted_packets_and_all_their_truncations_match_tshark(tmp_path: Path) -> None:
    from tests.decode.packets import cases

    by_linktype: dict[int, list[tuple[bytes, int]]] = {}
    for _name, linktype, data in cases():
        frames = by_linktype.setdefault(linktype, [])
        frames.extend((data[:n], len(data)) for n in range(len(data) + 1))
    compared = 0
    problems: list[str] = []
    for linktype, frames in sorted(by_linktype.items()):
        path = tmp_path / f"crafted-{linktype}.pcap"
        write_pcap(path, linktype, frames)
        count, found = compare_file(path)
        compared += count
        problems += found
    assert problems == []
    assert compared == sum(len(frames) for frames in by_linktype.values())
