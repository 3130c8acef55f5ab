"""The project's own sample captures in captures/: reproducible, small, and what the README says."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SCRIPT = CAPTURES / "make_captures.py"

#: file -> (packets tshark reads, protocols that must appear in some frame.protocols).
READABLE = {
    "ics-bacnet-enip.pcap": (30, {"bvlc", "bacnet", "bacapp", "enip", "cip", "cipio", "tcp"}),
    "dns-mdns-dnssd.pcap": (17, {"dns", "mdns", "tcp", "ipv6"}),
    "web-tls.pcapng": (26, {"eth", "sll", "http", "tls", "quic", "ipv6", "json"}),
    "tunnels-frags-icmp.pcap": (
        22,
        {
            "vxlan",
            "ntp",
            "geneve",
            "gre",
            "icmp",
            "icmpv6",
            "ipv6.fraghdr",
            "ipv6.hopopts",
            "ipv6.dstopts",
            "ipv6.routing",
            "vlan",
            "ieee8021ad",
            "arp",
            "sip",
            "syslog",
            "snmp",
        },
    ),
    "sctp-dccp.pcap": (28, {"sctp", "diameter", "m3ua", "dccp"}),
}
BROKEN = {"damaged.pcap", "not-a-capture.pcap"}
ALL = set(READABLE) | BROKEN


def _tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed")
    return path


@functools.cache
def _run_tshark(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Cached: several tests look at the same capture, and tshark start-up is the slow part.
    return subprocess.run(
        [_tshark(), "-n", "-r", str(CAPTURES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _fields(name: str, *fields: str, display_filter: str | None = None) -> list[list[str]]:
    """One row per packet, one string per field (multiple occurrences joined by ',')."""
    args = ["-T", "fields"]
    for f in fields:
        args += ["-e", f]
    if display_filter:
        args += ["-Y", display_filter]
    done = _run_tshark(name, *args)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def _values(name: str, field: str, display_filter: str | None = None) -> set[str]:
    return {
        v
        for row in _fields(name, field, display_filter=display_filter)
        for v in row[0].split(",")
        if v
    }


def test_script_regenerates_byte_identical_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in tmp_path.iterdir()} == ALL
    for name in sorted(ALL):
        fresh = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        committed = hashlib.sha256((CAPTURES / name).read_bytes()).hexdigest()
        assert fresh == committed, f"{name} differs from a fresh run of make_captures.py"


def test_directory_holds_only_described_files() -> None:
    present = {p.name for p in CAPTURES.iterdir() if p.is_file()}
    assert present == ALL | {"README.md", "make_captures.py"}
    readme = (CAPTURES / "README.md").read_text()
    for name in ALL:
        assert f"`{name}`" in readme, f"{name} is not described in captures/README.md"


def test_captures_are_small() -> None:
    sizes = {name: (CAPTURES / name).stat().st_size for name in ALL}
    assert all(0 < size < 64 * 1024 for size in sizes.values()), sizes
    assert sum(sizes.values()) < 300 * 1024


@pytest.mark.parametrize("name", sorted(READABLE))
def test_tshark_reads_expected_packets_and_protocols(name: str) -> None:
    count, wanted = READABLE[name]
    rows = _fields(name, "frame.protocols")
    assert len(rows) == count
    seen = {proto for row in rows for proto in row[0].split(":")}
    assert wanted <= seen, f"missing {wanted - seen}"


@pytest.mark.parametrize("name", sorted(READABLE))
def test_all_checksums_are_valid(name: str) -> None:
    prefs = [
        "ip.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "sctp.checksum:CRC-32C",
        "dccp.check_checksum:TRUE",
    ]
    args = [a for p in prefs for a in ("-o", p)]
    done = _run_tshark(
        name, *args, "-T", "fields", "-e", "frame.number", "-Y", "_ws.expert.group == 0x01000000"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], "packets with bad checksums"


@pytest.mark.parametrize("name", sorted(READABLE))
def test_addresses_are_private_or_documentation(name: str) -> None:
    rows = _fields(name, "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "arp.src.proto_ipv4")
    addrs = {ipaddress.ip_address(v) for row in rows for cell in row for v in cell.split(",") if v}
    assert addrs
    public = {a for a in addrs if not (a.is_private or a.is_multicast or a.is_link_local)}
    assert public == set()


def test_ics_capture_ports_and_flows() -> None:
    name = "ics-bacnet-enip.pcap"
    assert _values(name, "udp.dstport") >= {
        "47808",
        "47809",
        "44818",
        "2222",
        "45678",
        "48000",
        "45001",
        "50000",
    }
    # A BACnet client on an ephemeral port, and BACnet both ways on 47808.
    pairs = {tuple(r) for r in _fields(name, "udp.srcport", "udp.dstport", display_filter="bvlc")}
    assert ("47808", "47808") in pairs and ("52014", "47808") in pairs
    # The port lies: 47809 is presonus-ucnet in IANA's registry, but the payload is BACnet.
    assert _values(name, "udp.port", display_filter="udp.port == 47809 && !bvlc") == {"47809"}
    forced = _run_tshark(
        name,
        "-d",
        "udp.port==47809,bvlc",
        "-T",
        "fields",
        "-e",
        "bacapp.type",
        "-Y",
        "udp.port == 47809",
    )
    assert forced.stdout.split() == ["1"]  # decoded as an unconfirmed request (I-Am)
    # EtherNet/IP over TCP: a full handshake from an ephemeral port, then a FIN close.
    flags = [r[0] for r in _fields(name, "tcp.flags.str", display_filter="tcp.port == 44818")]
    assert flags[0].endswith("S·") and "A" in flags[1] and "S" in flags[1]
    assert sum("F" in f for f in flags) == 2
    assert _values(name, "enip.command", display_filter="udp.port == 44818") == {"0x0063"}


def test_dns_capture_dnssd_and_compression() -> None:
    name = "dns-mdns-dnssd.pcap"
    ptr = _values(name, "dns.ptr.domain_name")
    assert {
        "Kitchen._airplay._tcp.local",
        "Office Printer._ipp._tcp.local",
        "_ipp._tcp.local",
        "3C22FB000029@Kitchen._raop._tcp.local",
    } <= ptr
    assert any(p.endswith("._googlecast._tcp.local") for p in ptr)
    assert _values(name, "dns.qry.name", display_filter="mdns && dns.flags.response == 0") == {
        "_airplay._tcp.local",
        "_googlecast._tcp.local",
    }
    assert {"7000", "631", "8009"} <= _values(name, "dns.srv.port")
    assert _values(name, "tcp.dstport", display_filter="dns && dns.flags.response == 0") == {"53"}
    # Names are compressed: a label followed by a pointer into the earlier name.
    assert b"\x07Kitchen\xc0" in (CAPTURES / name).read_bytes()


def _section_comment(data: bytes) -> str:
    block_type, total, magic = struct.unpack_from("<III", data)
    assert (block_type, magic) == (0x0A0D0D0A, 0x1A2B3C4D)
    offset = 24
    while offset < total - 4:
        code, length = struct.unpack_from("<HH", data, offset)
        if code == 1:
            return data[offset + 4 : offset + 4 + length].decode()
        offset += 4 + length + (-length % 4)
    raise AssertionError("no section comment")


def test_pcapng_interfaces_and_comments() -> None:
    name = "web-tls.pcapng"
    rows = _fields(name, "frame.interface_id", "frame.comment", "sll.pkttype", "eth.type")
    assert {r[0] for r in rows} == {"0", "1"}
    assert all(r[3] for r in rows if r[0] == "0") and all(r[2] for r in rows if r[0] == "1")
    assert sum(bool(r[1]) for r in rows) == 5
    assert "two interfaces" in _section_comment((CAPTURES / name).read_bytes())
    assert _values(name, "tls.handshake.extensions_server_name") == {"www.example.com"}
    assert _values(name, "tcp.dstport", display_filter="ipv6 && http.request") == {"8080"}
    # The SLL interface has nanosecond resolution, and it shows.
    times = [
        r[0] for r in _fields(name, "frame.time_epoch", display_filter="frame.interface_id == 1")
    ]
    assert any(not t.endswith("000") for t in times)


def test_tunnels_fragments_and_quotes() -> None:
    name = "tunnels-frags-icmp.pcap"
    frags = _fields(
        name,
        "ip.id",
        "ip.frag_offset",
        "ip.flags.mf",
        display_filter="ip.flags.mf == 1 || ip.frag_offset > 0",
    )
    in_order = [(r[1], r[2]) for r in frags if r[0] == "0x7a01"]
    assert in_order == [("0", "1"), ("185", "1"), ("370", "0")]
    reversed_ = [(r[1], r[2]) for r in frags if r[0] == "0x7a02"]
    assert reversed_ == [("185", "0"), ("0", "1")]  # the non-first fragment comes first
    assert len(_fields(name, "ipv6.fraghdr.offset", display_filter="ipv6.fraghdr")) == 2
    assert "53" in _values(name, "udp.dstport", display_filter="icmp.type == 3")
    assert "161" in _values(name, "udp.dstport", display_filter="icmpv6.type == 1")
    assert _values(name, "ip.proto") >= {"4", "41", "47"}  # IP-in-IP, 6in4, GRE
    assert _values(name, "vlan.id") == {"100"}
    assert _values(name, "ieee8021ad.id") == {"200"}  # QinQ: S-tag 200 around C-tag 100


def test_sctp_and_dccp_ports() -> None:
    name = "sctp-dccp.pcap"
    assert _values(name, "sctp.dstport") == {"3868", "2905", "36412"}
    assert {"0", "1", "2", "3", "10", "11"} <= _values(name, "sctp.chunk_type")
    assert _values(name, "dccp.dstport", display_filter="dccp.type == 0") == {"5004", "5005"}
    assert {"0", "1", "2", "3", "4", "6", "7"} <= _values(name, "dccp.type")


def test_damaged_capture_is_cut_mid_packet() -> None:
    done = _run_tshark("damaged.pcap")
    assert done.returncode != 0
    assert "cut short in the middle of a packet" in done.stderr
    assert len(done.stdout.splitlines()) == 7  # the eighth packet is the cut one


def test_not_a_capture_is_rejected() -> None:
    done = _run_tshark("not-a-capture.pcap")
    assert done.returncode != 0
    assert "isn't a capture file" in done.stderr
    assert (CAPTURES / "not-a-capture.pcap").read_bytes().startswith(b"<!DOCTYPE html>")
