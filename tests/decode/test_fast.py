"""The fast engine: vectorised rows are right, and every batch equals the reference's."""

from __future__ import annotations

import functools
import ipaddress
import operator
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from portsniff.capture.block import RawBlock
from portsniff.capture.reader import open_capture
from portsniff.decode.batch import PROTO_CODE, DecodedBatch
from portsniff.decode.engines import open_engine
from portsniff.decode.fast import (
    FastEngine,
    batch_differences,
    blank_batch,
    block_from_packets,
    reference_batch,
    vector_rows,
)
from portsniff.decode.packet import PROTOS, Decoded, Endpoints
from portsniff.errors import CaptureError

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
ETH = Ether(**MACS)
V4 = IP(src="192.0.2.1", dst="198.51.100.7")
V6 = IPv6(src="2001:db8::1", dst="fe80::abcd:1")


def raw(p: Packet) -> bytes:
    return bytes(p)


def sll(proto: int, payload: bytes, hatype: int = 1) -> bytes:
    """A Linux cooked v1 header (outgoing, 6-byte address) and payload."""
    return struct.pack(">HHH8sH", 4, hatype, 6, b"\x02\0\0\0\0\x01\0\0", proto) + payload


def sll2(proto: int, payload: bytes, hatype: int = 1) -> bytes:
    """A Linux cooked v2 header and payload."""
    return struct.pack(">HHIHBB8s", proto, 0, 3, hatype, 0, 6, b"\x02\0\0\0\0\x01\0\0") + payload


# (linktype, frame, ip_version, proto, ip_proto, sport, dport, tcp_flags): rows the kernels
# decode; the addresses are read back from the frame with scapy.
COMMON = [
    (1, raw(ETH / V4 / TCP(sport=40000, dport=443, flags="S")), 4, "tcp", 6, 40000, 443, 0x02),
    (1, raw(ETH / V4 / TCP(sport=443, dport=40000, flags="SA", options=[("MSS", 1460)])),
     4, "tcp", 6, 443, 40000, 0x12),
    (1, raw(ETH / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR()]) / UDP(sport=123, dport=123) / (b"x" * 48)),
     4, "udp", 17, 123, 123, -1),
    (1, raw(ETH / V6 / UDP(sport=5000, dport=47808) / b"bacnet"), 6, "udp", 17, 5000, 47808, -1),
    (1, raw(ETH / V6 / TCP(sport=1, dport=22, flags="PA") / b"ssh"), 6, "tcp", 6, 1, 22, 0x18),
    # Ethernet padding after a short datagram is not part of it.
    (1, raw(ETH / V4 / UDP(sport=68, dport=67)) + b"\0" * 18, 4, "udp", 17, 68, 67, -1),
    # The NS bit is not a flag; a bad data offset or UDP length is no problem for ports.
    (1, raw(ETH / V4 / TCP(sport=5, dport=6, flags=0x1FF)), 4, "tcp", 6, 5, 6, 0xFF),
    (1, raw(ETH / V4 / TCP(sport=5, dport=6, dataofs=3)), 4, "tcp", 6, 5, 6, 0x02),
    (1, raw(ETH / V4 / UDP(sport=5, dport=6, len=100) / b"x"), 4, "udp", 17, 5, 6, -1),
    # Total length beyond the capture (snaplen) or 0 (TSO): the captured bytes count.
    (1, raw(ETH / IP(src="1.1.1.1", dst="2.2.2.2", len=1000) / TCP(sport=7, dport=8)), 4, "tcp", 6, 7, 8, 0x02),
    (1, raw(ETH / IP(src="1.1.1.1", dst="2.2.2.2", len=0) / UDP(sport=7, dport=8)), 4, "udp", 17, 7, 8, -1),
    (1, raw(ETH / IPv6(src="::1", dst="::2", plen=0) / UDP(sport=7, dport=8)), 6, "udp", 17, 7, 8, -1),
    # EtherType IPv4 carrying version 6: the nibble decides.
    (1, raw(Ether(**MACS, type=0x0800) / V6 / TCP(sport=9, dport=10)), 6, "tcp", 6, 9, 10, 0x02),
    # SCTP and DCCP ports; ICMP that is not an error; other protocols.
    (1, raw(ETH / V4 / SCTP(sport=2905, dport=2905)), 4, "sctp", 132, 2905, 2905, -1),
    (1, raw(ETH / IPv6(nh=33) / struct.pack(">HH12x", 11, 12)), 6, "dccp", 33, 11, 12, -1),
    (1, raw(ETH / V4 / ICMP(type=8)), 4, "icmp", 1, -1, -1, -1),
    (1, raw(ETH / V6 / ICMPv6EchoReply()), 6, "icmpv6", 58, -1, -1, -1),
    (1, raw(ETH / IP(src="1.1.1.1", dst="2.2.2.2", proto=50) / (b"e" * 30)), 4, "other", 50, -1, -1, -1),
    # DNS without an underscore anywhere: no DNS-SD names.
    (1, raw(ETH / V4 / UDP(sport=33333, dport=53) / DNS(qd=DNSQR(qname="example.com"))),
     4, "udp", 17, 33333, 53, -1),
    (1, raw(ETH / V6 / TCP(sport=53, dport=33333, flags="PA") / b"\0\x0c" / DNS(id=7)),
     6, "tcp", 6, 53, 33333, 0x18),
    # Ports near the tunnel ports are not tunnels.
    (1, raw(ETH / V4 / UDP(sport=4788, dport=6082) / (b"\x08" * 20)), 4, "udp", 17, 4788, 6082, -1),
    # Tunnel ports whose payload does not fit the tunnel's header are plain UDP: VXLAN
    # without its I flag (the lower port decides), Geneve with no EtherType, too short.
    (1, raw(ETH / V4 / UDP(sport=4789, dport=6081) / (b"\x00" * 20)), 4, "udp", 17, 4789, 6081, -1),
    (1, raw(ETH / V4 / UDP(sport=6081, dport=9) / (b"\x00" * 20)), 4, "udp", 17, 6081, 9, -1),
    (1, raw(ETH / V4 / UDP(sport=6081, dport=9) / b"\x01\0\x65\x58" / (b"\x00" * 6)), 4, "udp", 17, 6081, 9, -1),
    (1, raw(ETH / V6 / UDP(sport=9, dport=4789) / b"\x08\0\0"), 6, "udp", 17, 9, 4789, -1),
    # DNS whose first name starts with a malformed label type: nothing is read after it.
    (1, raw(ETH / V4 / UDP(sport=5353, dport=5353) / (b"\0" * 12) / b"\x45\x04_tcp\x05local\0"),
     4, "udp", 17, 5353, 5353, -1),
    (1, raw(ETH / V4 / UDP(sport=53, dport=9) / b"\x04_tcp"), 4, "udp", 17, 53, 9, -1),
    (12, raw(V4 / UDP(sport=9, dport=7)), 4, "udp", 17, 9, 7, -1),
    (14, raw(V6 / UDP(sport=9, dport=7)), 6, "udp", 17, 9, 7, -1),
    (101, raw(V4 / UDP(sport=9, dport=7)), 4, "udp", 17, 9, 7, -1),
    (101, raw(V6 / TCP(sport=9, dport=7, flags="R")), 6, "tcp", 6, 9, 7, 0x04),
    (228, raw(V4 / TCP(sport=80, dport=8080, flags="F")), 4, "tcp", 6, 80, 8080, 0x01),
    (229, raw(V6 / UDP(sport=80, dport=8080)), 6, "udp", 17, 80, 8080, -1),
    (0, struct.pack("<I", 2) + raw(V4 / UDP(sport=1, dport=2)), 4, "udp", 17, 1, 2, -1),
    (0, struct.pack(">I", 2) + raw(V4 / UDP(sport=1, dport=2)), 4, "udp", 17, 1, 2, -1),
    (0, struct.pack("<I", 30) + raw(V6 / TCP(sport=3, dport=4)), 6, "tcp", 6, 3, 4, 0x02),
    (0, struct.pack(">I", 28) + raw(V6 / TCP(sport=3, dport=4)), 6, "tcp", 6, 3, 4, 0x02),
    (108, struct.pack(">I", 24) + raw(V6 / TCP(sport=3, dport=4)), 6, "tcp", 6, 3, 4, 0x02),
    (108, struct.pack("<I", 2) + raw(V4 / TCP(sport=3, dport=4)), 4, "tcp", 6, 3, 4, 0x02),
    (113, sll(0x0800, raw(V4 / TCP(sport=5, dport=6, flags="E"))), 4, "tcp", 6, 5, 6, 0x40),
    (276, sll2(0x86DD, raw(V6 / UDP(sport=7, dport=8))), 6, "udp", 17, 7, 8, -1),
]  # fmt: skip

LINK_OFFSET = {0: 4, 1: 14, 12: 0, 14: 0, 101: 0, 108: 4, 113: 16, 228: 0, 229: 0, 276: 20}


def _ip_fields(linktype: int, frame: bytes) -> tuple[str, str]:
    """Source and destination address of a COMMON frame, read back with scapy."""
    start = LINK_OFFSET[linktype]
    packet = IP(frame[start:]) if frame[start] >> 4 == 4 else IPv6(frame[start:])
    return packet.src, packet.dst


def _vectorised(block: RawBlock) -> tuple[DecodedBatch, np.ndarray]:
    batch = blank_batch(block)
    return batch, vector_rows(block, batch)


def test_common_rows_are_vectorised_with_the_right_fields() -> None:
    block = block_from_packets([c[1] for c in COMMON], [c[0] for c in COMMON])
    batch, done = _vectorised(block)
    assert np.flatnonzero(~done).tolist() == []
    for i, (lt, frame, version, proto, ip_proto, sport, dport, flags) in enumerate(COMMON):
        src, dst = _ip_fields(lt, frame)
        assert batch.linktype[i] == lt
        assert batch.ip_version[i] == version
        assert batch.ip_str(i, "src") == str(ipaddress.ip_address(src))
        assert batch.ip_str(i, "dst") == str(ipaddress.ip_address(dst))
        assert batch.proto[i] == PROTO_CODE[proto], i
        assert (batch.ip_proto[i], batch.src_port[i], batch.dst_port[i]) == (ip_proto, sport, dport)
        assert batch.tcp_flags[i] == flags, i
        assert batch.caplen[i] == len(frame)
    assert not batch.details


def test_ipv4_address_tail_is_zero() -> None:
    block = block_from_packets([raw(ETH / V4 / UDP(sport=1, dport=2))])
    batch, _ = _vectorised(block)
    assert bytes(batch.src_addr[0]) == bytes([192, 0, 2, 1]) + bytes(12)
    assert bytes(batch.dst_addr[0]) == bytes([198, 51, 100, 7]) + bytes(12)


NON_IP = [
    (1, raw(ETH / ARP(psrc="192.0.2.1", pdst="192.0.2.2")), "arp"),
    (1, raw(Ether(**MACS, type=0x8035) / (b"\0" * 46)), "arp"),
    (1, raw(Ether(**MACS, type=0x88CC) / (b"\0" * 46)), "other"),
    (1, raw(Ether(**MACS, type=0x0600)), "other"),
    (113, sll(0x0806, raw(ARP())), "arp"),
    (113, sll(0x0800, raw(V4 / TCP()), hatype=824), "other"),
    (276, sll2(0x0004, b"\xaa\xaa\x03", hatype=824), "other"),
]


def test_non_ip_frames_are_vectorised_without_addresses() -> None:
    block = block_from_packets([f for _, f, _ in NON_IP], [lt for lt, _, _ in NON_IP])
    batch, done = _vectorised(block)
    assert done.all()
    assert [PROTOS[p] for p in batch.proto] == [p for _, _, p in NON_IP]
    assert not batch.ip_version.any() and not batch.details
    assert (batch.ip_proto == -1).all() and (batch.src_port == -1).all()


def test_one_vlan_tag_is_vectorised_as_a_column() -> None:
    frames = [
        raw(ETH / Dot1Q(vlan=7) / V4 / TCP(sport=1, dport=2)),
        raw(ETH / Dot1Q(vlan=4095, prio=7) / IPv6(src="2001:db8::1", dst="::ffff:1.2.3.4") / UDP()),
        raw(Ether(**MACS, type=0x88A8) / Dot1Q(vlan=9) / ARP()),
        sll(0x8100, raw(Dot1Q(vlan=1) / V4 / ICMP())),
    ]
    batch, done = _vectorised(block_from_packets(frames, [1, 1, 1, 113]))
    assert done.all()
    assert not batch.details  # a tag alone needs no Decoded
    assert batch.vlan_tag.tolist() == [7, 4095, 9, 1]
    assert [batch.vlan(i) for i in range(4)] == [(7,), (4095,), (9,), (1,)]

    def row(i: int) -> tuple[object, ...]:
        flags = int(batch.tcp_flags[i])
        return (
            batch.ip_str(i, "src"),
            batch.ip_str(i, "dst"),
            PROTOS[int(batch.proto[i])],
            int(batch.src_port[i]),
            None if flags < 0 else flags,
            int(batch.linktype[i]),
        )

    assert row(0) == ("192.0.2.1", "198.51.100.7", "tcp", 1, 0x02, 1)
    assert row(1)[1:5] == ("::ffff:102:304", "udp", 53, None)
    assert row(2)[:3] == (None, None, "arp")
    assert row(3)[2:] == ("icmp", -1, None, 113) and int(batch.ip_proto[3]) == 1
    # The reference decodes the same rows to the same batch (its tag in the column).
    assert (
        batch_differences(batch, reference_batch(block_from_packets(frames, [1, 1, 1, 113]))) == []
    )


def pppoe(protocol: int, payload: bytes) -> bytes:
    """A PPPoE session header (session 1) and PPP protocol before ``payload``."""
    return struct.pack(">BBHHH", 0x11, 0, 1, len(payload) + 2, protocol) + payload


def mpls(*labels: int, bottom: bool = True) -> bytes:
    """An MPLS label stack (TTL 64), the last entry the bottom of the stack."""
    return b"".join(
        struct.pack(">I", label << 12 | (bottom and i == len(labels) - 1) << 8 | 64)
        for i, label in enumerate(labels)
    )


def eth_type(etype: int, payload: bytes) -> bytes:
    return raw(Ether(**MACS, type=etype)) + payload


# (linktype, frame, VLAN tags, proto, sport): shims and extension headers the kernels
# walk through; each row's Decoded has no details.
SHIMMED = [
    (1, raw(ETH / Dot1Q(vlan=7) / Dot1Q(vlan=8) / V4 / TCP(sport=1)), (7, 8), "tcp", 1),
    (1, raw(Ether(**MACS, type=0x88A8) / Dot1Q(vlan=4095, type=0x8100) / Dot1Q(vlan=0) / V6 / UDP(sport=2)),
     (4095, 0), "udp", 2),
    (1, eth_type(0x8847, mpls(16) + raw(V4 / TCP(sport=3))), (), "tcp", 3),
    (1, eth_type(0x8848, mpls(16, 17, 18) + raw(V6 / UDP(sport=4))), (), "udp", 4),
    (1, eth_type(0x8847, mpls(16) + b"\x00" * 30), (), "other", -1),  # not IP: "other"
    (1, eth_type(0x8864, pppoe(0x0021, raw(V4 / UDP(sport=5)))), (), "udp", 5),
    (1, eth_type(0x8864, pppoe(0x0057, raw(V6 / TCP(sport=6)))), (), "tcp", 6),
    (1, eth_type(0x8864, pppoe(0xC021, b"\x01\x01\x00\x04")), (), "other", -1),  # LCP
    (1, eth_type(0x8864, pppoe(0x0281, mpls(5, 6) + raw(V4 / TCP(sport=7)))), (), "tcp", 7),
    (1, raw(ETH / Dot1Q(vlan=30, type=0x8864)) + pppoe(0x0021, raw(V4 / TCP(sport=8))),
     (30,), "tcp", 8),
    (1, raw(ETH / Dot1Q(vlan=31, type=0x8847)) + mpls(9) + raw(V4 / TCP(sport=9)), (31,), "tcp", 9),
    (113, sll(0x8100, raw(Dot1Q(vlan=1) / Dot1Q(vlan=2) / V4 / ICMP())), (1, 2), "icmp", -1),
    (276, sll2(0x8864, pppoe(0x0057, raw(V6 / UDP(sport=10)))), (), "udp", 10),
    (1, raw(ETH / V6 / IPv6ExtHdrHopByHop() / TCP(sport=11)), (), "tcp", 11),
    (1, raw(ETH / V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()
            / UDP(sport=12)), (), "udp", 12),
    (1, raw(ETH / V6 / IPv6ExtHdrFragment() / UDP(sport=13)), (), "udp", 13),  # a whole one
    (1, raw(ETH / V6 / AH(nh=6, payloadlen=4, icv=b"\0" * 12) / TCP(sport=14)), (), "tcp", 14),
    (1, raw(ETH / V6 / IPv6ExtHdrHopByHop() / ICMPv6EchoReply()), (), "icmpv6", -1),
    (1, raw(ETH / V6 / IPv6ExtHdrDestOpt(nh=59)), (), "other", -1),  # no next header
    # LLC: STP and the like are "other"; SNAP with an Ethernet OUI names an EtherType.
    (1, raw(Ether(**MACS, type=38)) + b"\x42\x42\x03" + bytes(35), (), "other", -1),
    (1, raw(Ether(**MACS, type=100) / Raw(b"\xaa\xaa\x03" + b"\0" * 97)), (), "other", -1),
    (1, raw(Ether(**MACS, type=60)) + b"\xaa\xaa\x03\0\0\x0c\x20\x00" + bytes(30), (), "other", -1),
    (1, raw(Ether(**MACS, type=1500)) + b"\xaa\xaa\x03\0\0\0\x08\x00" + raw(V4 / TCP(sport=15)),
     (), "tcp", 15),
    (1, raw(ETH / Dot1Q(vlan=7, type=0x8870)) + b"\xaa\xaa\x03\0\0\xf8\x86\xdd" + raw(V6 / UDP(sport=16)),
     (7,), "udp", 16),
]  # fmt: skip


def test_shims_and_extension_headers_are_vectorised() -> None:
    block = block_from_packets([f for _, f, *_ in SHIMMED], [lt for lt, *_ in SHIMMED])
    batch, done = _vectorised(block)
    assert np.flatnonzero(~done).tolist() == []
    assert not batch.details
    assert [batch.vlan(i) for i in range(len(SHIMMED))] == [row[2] for row in SHIMMED]
    assert [PROTOS[p] for p in batch.proto] == [row[3] for row in SHIMMED]
    assert batch.src_port.tolist() == [row[4] for row in SHIMMED]
    assert batch_differences(batch, reference_batch(block)) == []


UNCOMMON = {
    "truncated vlan tag": (1, raw(ETH / Dot1Q(vlan=7))[:16]),
    "llc cut": (1, raw(Ether(**MACS, type=100)) + b"\x42\x42"),
    "snap cut": (1, raw(Ether(**MACS, type=100)) + b"\xaa\xaa\x03\0\0\0\x08"),
    "ipv4 first fragment carrying vxlan": (
        1,
        raw(ETH / IP(flags="MF") / UDP(sport=1, dport=4789) / VXLAN() / ETH / V4 / UDP()),
    ),
    "ipv4 first fragment of ah": (
        1,
        raw(ETH / IP(proto=51, flags="MF") / AH(nh=6, payloadlen=4, icv=b"\0" * 12) / TCP()),
    ),
    "ipv4 first fragment of an icmp error": (
        1,
        raw(ETH / IP(flags="MF") / ICMP(type=3, code=3) / IP() / UDP()),
    ),
    "ipv6 fragment": (1, raw(ETH / V6 / IPv6ExtHdrFragment(m=1) / UDP())),
    "ipv6 later fragment": (1, raw(ETH / V6 / IPv6ExtHdrFragment(offset=5) / (b"x" * 8))),
    "ipv6 fragment after hop-by-hop": (
        1,
        raw(ETH / V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(m=1) / UDP()),
    ),
    "ipv6 extension header cut by the payload length": (
        1,
        raw(ETH / IPv6(plen=4) / IPv6ExtHdrHopByHop() / TCP()),
    ),
    "nine ipv6 extension headers": (
        1,
        raw(
            functools.reduce(operator.truediv, [IPv6ExtHdrDestOpt() for _ in range(9)], ETH / V6)
            / TCP()
        ),
    ),
    "three vlan tags": (1, raw(ETH / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / V4 / TCP())),
    "mpls payload cut": (1, raw(Ether(**MACS, type=0x8847) / b"\0\0\x01\x40")),
    "mpls label cut": (1, raw(Ether(**MACS, type=0x8847) / b"\0\0\x00\x40\0\0")),
    "pppoe header cut": (1, raw(Ether(**MACS, type=0x8864) / b"\x11\0\0\x01\0\x2a\0")),
    "nine mpls labels": (
        1,
        raw(Ether(**MACS, type=0x8847) / (b"\0\0\0\x40" * 8 + b"\0\0\x01\x40") / V4 / TCP()),
    ),
    "dns-sd": (
        1,
        raw(
            ETH
            / V4
            / UDP(sport=5353, dport=5353)
            / DNS(qd=DNSQR(qname="_ipp._tcp.local", qtype="PTR"))
        ),
    ),
    "dns over tcp with _ label": (1, raw(ETH / V4 / TCP(sport=53, dport=33333) / b"\x04_tcp")),
    "vxlan with a tagged inner frame": (
        1,
        raw(ETH / V4 / UDP(sport=1, dport=4789) / VXLAN() / ETH / Dot1Q(vlan=5) / V4 / TCP()),
    ),
    "vxlan carrying a fragment": (
        1,
        raw(ETH / V4 / UDP(sport=1, dport=4789) / VXLAN() / ETH / IP(flags="MF") / UDP()),
    ),
    "vxlan in vxlan": (
        1,
        raw(ETH / V4 / UDP(dport=4789) / VXLAN() / ETH / V4 / UDP(dport=4789) / VXLAN() / ETH),
    ),
    "vxlan on a dns port": (1, raw(ETH / V4 / UDP(sport=53, dport=4789) / VXLAN() / ETH / V4)),
    "vxlan with a short inner frame": (1, raw(ETH / V4 / UDP(dport=4789) / VXLAN() / (b"\0" * 13))),
    "geneve with a cut inner header": (
        1,
        raw(ETH / V4 / UDP(sport=1, dport=6081) / b"\0\0\x65\x58\0\0\0\0" / ETH / V4)[:60],
    ),
    "geneve with options": (
        1,
        raw(ETH / V4 / UDP(sport=6081, dport=6081) / b"\x01\0\x08\0" / (b"\0" * 8)),
    ),
    "vxlan on the lower port": (1, raw(ETH / V4 / UDP(sport=4789, dport=6081) / (b"\x08" * 8))),
    "dns-sd after a compressed first name": (
        1,
        raw(
            ETH
            / V4
            / UDP(sport=53, dport=9)
            / (b"\0" * 4)
            / b"\0\1"
            / (b"\0" * 6)
            / b"\xc0\x0e\x04_UDP"
        ),
    ),
    "teredo": (1, raw(ETH / V4 / UDP(sport=3544, dport=1) / raw(V6 / UDP()))),
    "icmp error": (1, raw(ETH / V4 / ICMP(type=3, code=3) / IP() / UDP())),
    "icmpv6 error": (1, raw(ETH / V6 / ICMPv6DestUnreach() / V6 / UDP())),
    "gre with routing": (1, raw(ETH / IP(proto=47) / b"\x40\0\x08\0" / (b"\0" * 8) / V4 / UDP())),
    "gre version 1 (pptp)": (1, raw(ETH / IP(proto=47) / b"\x30\x01\x88\x0b" / (b"\0" * 12))),
    "erspan": (1, raw(ETH / IP(proto=47) / b"\x10\0\x88\xbe" / (b"\0" * 12) / ETH / V4 / UDP())),
    "gre cut before its inner packet": (1, raw(ETH / IP(proto=47) / b"\x80\0\x08\0")),
    "gre carrying vxlan": (
        1,
        raw(ETH / IP(proto=47) / b"\0\0\x08\0" / V4 / UDP(dport=4789) / VXLAN() / ETH / V4),
    ),
    "ipip cut inside": (1, raw(ETH / IP(proto=4) / V4 / UDP())[:40]),
    "ipv4 ah": (1, raw(ETH / IP(proto=51) / AH(nh=6, payloadlen=4, icv=b"\0" * 12) / TCP())),
    "6in4 carrying v4": (1, raw(ETH / IP(proto=41) / V4 / UDP())),
    "ihl below 5": (1, raw(ETH / IP(ihl=4) / UDP())),
    "ip options beyond capture": (1, raw(ETH / IP(ihl=15) / UDP())[:40]),
    "ip total length below header": (1, raw(ETH / IP(len=19) / TCP())),
    "bad ip version": (1, raw(Ether(**MACS, type=0x0800) / (b"\x55" * 40))),
    "ipv6 ethertype carrying v4": (1, raw(Ether(**MACS, type=0x86DD) / V4 / TCP())),
    "tcp header cut by total length": (1, raw(ETH / IP(len=30) / TCP())),
    "udp header cut": (1, raw(ETH / V4 / UDP())[:40]),
    "sctp header cut": (1, raw(ETH / V4 / SCTP())[:44]),
    "short frame": (1, b"\x02" * 13),
    "unknown link type": (147, raw(V4 / TCP())),
    "null ppp": (0, b"\xff\x03\x00\x21" + raw(V4 / TCP())),
    "null ethertype": (0, struct.pack("<I", 0x0800) + raw(V4 / TCP())),
    "empty raw": (101, b""),
}


FRAGMENTS = [
    raw(ETH / IP(src="1.2.3.4", dst="5.6.7.8", id=7, flags="MF") / UDP(sport=9, dport=2049)),
    raw(ETH / IP(src="1.2.3.4", dst="5.6.7.8", id=7, frag=185) / (b"x" * 16)),
    raw(ETH / IP(src="1.2.3.4", dst="5.6.7.8", id=7, flags="MF", frag=370) / (b"y" * 8)),
    raw(ETH / IP(id=9, flags="MF+DF") / TCP(sport=80, dport=40000, flags="PA")),
    raw(ETH / Dot1Q(vlan=12) / IP(id=9, frag=3, proto=1) / (b"z" * 8)),
    raw(ETH / IP(id=10, frag=3, proto=51) / (b"a" * 8)),
    raw(ETH / IP(id=11, frag=3, proto=47) / (b"b" * 8)),
    raw(ETH / IP(id=12, flags="MF") / ICMP(type=8)),
    raw(ETH / IP(id=13, flags="DF") / UDP(sport=5, dport=6)),  # not a fragment
]


def test_ipv4_fragments_are_vectorised() -> None:
    """IPv4 fragments (first ones with their transport header, later ones with none) are
    decoded with the block; their Decoded, VLAN tag included, is the reference's."""
    block = block_from_packets(FRAGMENTS)
    batch, done = _vectorised(block)
    assert done.all()
    assert sorted(batch.details) == list(range(len(FRAGMENTS) - 1))
    assert batch.details[1].fragment is not None and batch.details[1].fragment.offset == 1480
    assert batch.details[4].vlan == (12,) and int(batch.vlan_tag[4]) == -1
    assert batch_differences(batch, reference_batch(block)) == []


@pytest.mark.parametrize("name", list(UNCOMMON))
def test_uncommon_rows_are_left_to_the_reference(name: str) -> None:
    lt, frame = UNCOMMON[name]
    _, done = _vectorised(block_from_packets([frame], lt))
    assert not done.any()


def test_truncated_headers_are_left_to_the_reference() -> None:
    for frame in (raw(ETH / V4 / TCP()), raw(ETH / V6 / UDP())):
        cuts = [frame[:n] for n in range(len(frame))]
        _, done = _vectorised(block_from_packets(cuts, wirelen=[len(frame)] * len(cuts)))
        assert not done.any()


VXLAN_FRAMES = [
    raw(ETH / V4 / UDP(sport=40000, dport=4789) / VXLAN() / ETH / V4 / TCP(sport=5, dport=443)),
    raw(ETH / V6 / UDP(sport=4789, dport=4789) / VXLAN() / ETH / V6 / UDP(sport=6, dport=53)),
    raw(ETH / Dot1Q(vlan=9) / V4 / UDP(dport=4789) / VXLAN() / ETH / V4 / ICMP()),
    raw(ETH / V4 / UDP(dport=4789) / VXLAN() / Ether(**MACS, type=0x0806) / ARP()),
    raw(ETH / V4 / UDP(dport=4789) / VXLAN() / Ether(**MACS, type=0x88CC) / b"lldp"),
    raw(ETH / V4 / UDP(dport=4789) / VXLAN() / Ether(**MACS, type=0x0800) / V6 / TCP()),
]


GRE_FRAMES = [
    raw(ETH / IP(proto=47) / b"\0\0\x08\0" / V4 / TCP(sport=40000, dport=443, flags="S")),
    raw(ETH / V6 / IPv6ExtHdrDestOpt(nh=47) / b"\xb0\0\x86\xdd" / (b"\0" * 12) / V6 / UDP(dport=53)),
    raw(ETH / Dot1Q(vlan=9) / IP(proto=47) / b"\x20\0\x65\x58\0\0\0\x07" / ETH / V4 / ICMP()),
    raw(ETH / IP(proto=47) / b"\0\0\x65\x58" / Ether(**MACS, type=0x0806) / ARP()),
    raw(ETH / IP(proto=47) / b"\0\0\x08\x06" / ARP()),
    raw(ETH / IP(proto=47) / b"\0\0\x88\x47" / b"\0\0\x01\x40" / V4 / UDP(sport=5, dport=6)),
]  # fmt: skip


def _detail(batch: DecodedBatch, i: int) -> Decoded:
    d = batch.detail(i)
    assert d is not None
    return d


def test_gre_inner_packets_are_vectorised_as_the_reference_reads_them() -> None:
    """GRE (checksum, key, sequence words; transparent Ethernet bridging; any EtherType
    the kernels follow): the row takes the inner packet's transport and ports."""
    block = block_from_packets(GRE_FRAMES)
    batch, done = _vectorised(block)
    assert done.all()
    inner = [_detail(batch, i).inner for i in range(len(GRE_FRAMES))]
    assert inner[0][0] == Endpoints("tcp", "192.0.2.1", "198.51.100.7", 40000, 443, "gre")
    assert [e[0].proto for e in inner[1:]] == ["udp", "icmp", "other", "other", "udp"]
    assert batch.src_port.tolist()[0] == 40000 and PROTOS[batch.proto[3]] == "other"
    assert _detail(batch, 2).vlan == (9,)
    assert assert_same_as_reference(block).fallbacks == 0


IPIP_FRAMES = [
    raw(ETH / IP(proto=4) / V4 / UDP(sport=40000, dport=53)),
    raw(ETH / IP(proto=41) / V6 / TCP(sport=5, dport=443, flags="S")),
    raw(ETH / Dot1Q(vlan=9) / V6 / V4 / ICMP()),
    raw(ETH / V6 / V6 / UDP(sport=6, dport=123)),
]


def test_ip_in_ip_is_vectorised_as_the_reference_reads_it() -> None:
    """IP in IP (ipip, 6in4, 4in6, 6in6): the row takes the inner packet's transport and
    ports (as GRE's), the inner header goes to the tunnels' columns."""
    block = block_from_packets(IPIP_FRAMES)
    batch, done = _vectorised(block)
    assert done.all()
    inner = [_detail(batch, i).inner[0] for i in range(len(IPIP_FRAMES))]
    assert [e.tunnel for e in inner] == ["ipip", "6in4", "4in6", "6in6"]
    assert inner[0] == Endpoints("udp", "192.0.2.1", "198.51.100.7", 40000, 53, "ipip")
    assert batch.src_port.tolist()[:2] == [40000, 5] and int(batch.tcp_flags[1]) == 2
    assert _detail(batch, 2).vlan == (9,) and not batch.details
    assert assert_same_as_reference(block).fallbacks == 0


def test_vxlan_inner_frames_are_vectorised_as_the_reference_reads_them() -> None:
    block = block_from_packets(VXLAN_FRAMES)
    batch, done = _vectorised(block)
    assert done.all()
    inner = [_detail(batch, i).inner for i in range(len(VXLAN_FRAMES))]
    assert inner[0][0] == Endpoints("tcp", "192.0.2.1", "198.51.100.7", 5, 443, "vxlan")
    assert [e[0].proto for e in inner[1:]] == ["udp", "icmp", "other", "other", "tcp"]
    assert _detail(batch, 2).vlan == (9,)
    assert assert_same_as_reference(block).fallbacks == 0


def test_dns_label_scan() -> None:
    header = b"\0" * 12
    payloads = [
        header + b"\x05_ipp_" + b"x" * 70,
        header + b"\x04_tcp" + b"x" * 70,
        header + b"\x01x" + b"x" * 68 + b"\x04_UDP",
        header + b"\xc0\x0c\x04_tCp",
        b"",
        header + b"\x00\x04",
        header + b"\x80\x04_udp",  # a first label type 0x80: no names are read
        header + b"\x02_x" * 30,
        header + b"\x04_" + b"x" * 70,  # not a protocol label: vectorised
        header + b"\x00" + b"x" * 68 + b"\x04_ud",  # cut short by the segment's end
    ]
    frames = [raw(ETH / V4 / UDP(sport=53, dport=9) / p) for p in payloads]
    _, done = _vectorised(block_from_packets(frames))
    assert done.tolist() == [True, False, False, False, True, True, True, True, True, True]
    assert_same_as_reference(block_from_packets(frames))


def test_block_from_packets_layout() -> None:
    block = block_from_packets([b"ab", b"", b"cde"], [1, 0, 1], comments={2: "hi"})
    assert [block.packet(i) for i in range(3)] == [b"ab", b"", b"cde"]
    assert block.linktype.tolist() == [1, 0, 1]
    assert block.wirelen.tolist() == [2, 0, 3]
    assert block.comments == {2: "hi"}


def test_batch_differences_names_the_row_and_column() -> None:
    block = block_from_packets([c[1] for c in COMMON[:3]], [c[0] for c in COMMON[:3]])
    a, _ = _vectorised(block)
    b, _ = _vectorised(block)
    assert batch_differences(a, b) == []
    b.dst_port[1] = 1
    b.comments[0] = "x"
    diff = batch_differences(a, b)
    assert diff[0].startswith("row 1 dst_port: ")
    assert diff[-1].startswith("comments:")


def test_engine_by_name_has_no_state_to_release(tmp_path: Path) -> None:
    engine = open_engine("fast", str(tmp_path / "x.pcap"))
    assert engine.name == "fast"
    engine.close()


# ---- against the reference decoder -------------------------------------------------


def _all_frames() -> tuple[list[bytes], list[int]]:
    frames = [c[1] for c in COMMON] + [f for _, f, _ in NON_IP] + [f for _, f, *_ in SHIMMED]
    frames += [f for _, f in UNCOMMON.values()]
    types = [c[0] for c in COMMON] + [lt for lt, _, _ in NON_IP] + [lt for lt, *_ in SHIMMED]
    types += [lt for lt, _ in UNCOMMON.values()]
    return frames, types


def assert_same_as_reference(block: RawBlock) -> FastEngine:
    engine = FastEngine(block.file)
    fast = engine.decode(block)
    assert batch_differences(fast, reference_batch(block)) == []
    return engine


def test_hand_made_blocks_equal_reference() -> None:
    frames, types = _all_frames()
    engine = assert_same_as_reference(block_from_packets(frames, types, comments={0: "first"}))
    assert (engine.packets, engine.fallbacks) == (len(frames), len(UNCOMMON))


def test_offsets_into_a_shared_buffer() -> None:
    """Packets need not be contiguous nor start the buffer (a reader's reused buffer)."""
    frames, types = _all_frames()
    data = bytearray(b"\x04_junk")
    offsets = []
    for frame in frames:
        offsets.append(len(data))
        data += frame + b"\x45\x04_" * 3
    packed = block_from_packets(frames, types)
    block = RawBlock(
        file="shared",
        first_frame=101,
        data=memoryview(data),
        offset=np.array(offsets, np.int64),
        caplen=packed.caplen,
        wirelen=packed.wirelen,
        ts_ns=packed.ts_ns,
        linktype=packed.linktype,
        interface=packed.interface,
    )
    # The bytes between packets (which hold a DNS-SD-like 04 "_") are never read.
    assert assert_same_as_reference(block).fallbacks == len(UNCOMMON)
    fast = FastEngine("shared").decode(block)
    assert batch_differences(fast, FastEngine("packed").decode(packed))[0].startswith("batch:")
    fast.file, fast.first_frame = packed.file, packed.first_frame
    assert batch_differences(fast, FastEngine("packed").decode(packed)) == []


def test_every_truncation_equals_reference() -> None:
    frames, types = _all_frames()
    cuts = [
        (lt, f[:n], len(f)) for lt, f in zip(types, frames, strict=True) for n in range(len(f) + 1)
    ]
    block = block_from_packets(
        [c[1] for c in cuts], [c[0] for c in cuts], wirelen=[c[2] for c in cuts]
    )
    assert_same_as_reference(block)


LINKTYPES = [0, 1, 101, 108, 113, 228, 229, 276]


DNS_NAMES = [
    "example.com",
    "_ipp._tcp.local",
    "Kitchen._airplay._TCP.local",
    "_services._dns-sd._udp.local",
    "a._sub._http._tcp.local",
]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Application bytes: random, DNS (maybe with DNS-SD names), an IPv6 packet, VXLAN,
    Geneve."""
    kind = draw(
        st.sampled_from(
            ["random", "dns", "tcp-dns", "dns-raw", "ipv6", "vxlan", "tunnel-header", "geneve"]
        )
    )
    if kind == "geneve":
        return draw(geneve_payloads())
    if kind == "random":
        return draw(st.binary(max_size=40))
    if kind in ("dns", "tcp-dns"):
        qtype = draw(st.sampled_from(["A", "PTR", "SRV"]))
        message = raw(
            DNS(
                id=draw(st.integers(0, 65535)),
                qd=DNSQR(qname=draw(st.sampled_from(DNS_NAMES)), qtype=qtype),
            )
        )
        return struct.pack(">H", len(message)) + message if kind == "tcp-dns" else message
    if kind == "ipv6":  # Teredo on any port when it is exactly one packet
        return raw(
            IPv6(src="2001::1", dst="2001::2") / UDP(sport=1, dport=2) / draw(st.binary(max_size=8))
        )
    if kind == "dns-raw":  # a DNS header, then a first label of any type
        first = draw(st.sampled_from([b"\0", b"\x04_tcp", b"\x45", b"\x80", b"\xc0\x0c"]))
        return draw(st.binary(min_size=12, max_size=12)) + first + b"\x04_udp\x05local\0"
    if kind == "tunnel-header":  # VXLAN/Geneve-like headers, fitting or not
        head = bytes([draw(st.sampled_from([0, 1, 2, 8, 0x48, 0x81]))]) + b"\0"
        head += draw(st.sampled_from([b"\x65\x58", b"\x08\x00", b"\x05\xff", b"\0\0"]))
        return (head + b"\0" * draw(st.integers(0, 12)))[: draw(st.integers(0, 20))] + raw(ETH / V4)
    inner = draw(
        st.sampled_from(
            [ETH / V4 / UDP(sport=3, dport=4), ETH / V6 / TCP(), ETH / V4 / ICMP(type=3) / V4]
            + [Ether(**MACS, type=t) / b"x" for t in (0x0806, 0x88CC, 0x8100, 100)]
        )
    )
    return raw(VXLAN(flags=draw(st.sampled_from([0x08, 0x0C, 0]))) / inner)


@st.composite
def geneve_payloads(draw: st.DrawFn) -> bytes:
    """A Geneve header (any version, options, protocol) and an inner frame or packet
    for its protocol, maybe cut."""
    protocol, inner = draw(
        st.sampled_from(
            [
                (0x6558, raw(ETH / V4 / UDP(sport=3, dport=4))),
                (0x6558, raw(ETH / Dot1Q(vlan=3) / V6 / TCP())),
                (0x6558, raw(Ether(**MACS, type=0x0806) / ARP())),
                (0x0800, raw(V4 / TCP(sport=5, dport=443))),
                (0x86DD, raw(V6 / UDP(sport=53, dport=9))),
                (0x0806, raw(ARP())),
                (0x8100, b"\0\x03\x08\x00" + raw(V4 / UDP())),
                (0x0800, raw(V4 / ICMP(type=3) / V4)),
                (0x05FF, raw(V4 / UDP())),
                (0x1234, b"x"),
            ]
        )
    )
    options = draw(st.integers(0, 3))
    version = draw(st.sampled_from([0, 0, 0, 1]))
    head = bytes([version << 6 | options, draw(st.sampled_from([0, 0x80]))])
    head += struct.pack(">H", protocol) + b"\0\0\x64\0" + b"\0" * (4 * options)
    body = head + inner
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


GENEVE_FRAMES = [
    raw(ETH / V4 / UDP(sport=40000, dport=6081) / b"\0\0\x65\x58\0\0\x64\0" / ETH / V4 / TCP(dport=443)),
    raw(ETH / V6 / UDP(sport=6081, dport=6081) / b"\x01\0\x86\xdd\0\0\x64\0" / (b"\0" * 4) / V6 / UDP(dport=53)),
    raw(ETH / Dot1Q(vlan=9) / V4 / UDP(sport=9, dport=6081) / b"\0\0\x08\x00\0\0\x64\0" / V4 / ICMP()),
    raw(ETH / V4 / UDP(sport=9, dport=6081) / b"\0\0\x08\x06\0\0\x64\0" / ARP()),
    # (UDP's port 53 is a DNS port: DNS-SD names are looked for, by the reference)
    raw(ETH / V4 / UDP(dport=6081) / b"\0\0\x08\x00\0\0\x64\0" / V4 / ICMP()),
]  # fmt: skip


def test_geneve_inner_packets_are_vectorised_as_the_reference_reads_them() -> None:
    """Geneve (options; an Ethernet frame or a packet of its EtherType inside): the row
    keeps its UDP ports, the inner header goes to the tunnels' columns."""
    block = block_from_packets(GENEVE_FRAMES)
    batch, done = _vectorised(block)
    assert done.tolist() == [True] * 4 + [False]
    inner = [_detail(batch, i).inner for i in range(4)]
    assert inner[0][0] == Endpoints("tcp", "192.0.2.1", "198.51.100.7", 20, 443, "geneve")
    assert [e[0].proto for e in inner[1:]] == ["udp", "icmp", "other"]
    assert int(batch.dst_port[0]) == 6081 and _detail(batch, 2).vlan == (9,)
    assert batch.tunnels is not None and batch.tunnels.rows().tolist() == [0, 1, 2]
    assert assert_same_as_reference(block).fallbacks == 1


@st.composite
def gre_payloads(draw: st.DrawFn) -> bytes:
    """A GRE header (optional words, routing, another version; any protocol) and an inner
    packet or frame, maybe cut."""
    flags = draw(st.sampled_from([0, 0x8000, 0x2000, 0x3000, 0xB000, 0x4000, 0x0001]))
    protocol = draw(st.sampled_from([0x0800, 0x86DD, 0x6558, 0x0806, 0x88BE, 0x8847, 0x1234]))
    words = bin(flags & 0xB000).count("1") + (1 if flags & 0x4000 else 0)
    head = struct.pack(">HH", flags, protocol) + b"\0" * (4 * words)
    inner = draw(
        st.sampled_from(
            [
                raw(V4 / UDP(sport=3, dport=4)),
                raw(V6 / TCP()),
                raw(ETH / V4 / TCP(sport=5)),
                raw(ETH / Dot1Q(vlan=3) / V6 / UDP()),
                b"\0\0\x01\x40" + raw(V4 / UDP()),
                raw(V4 / UDP(sport=53, dport=9) / DNS(qd=DNSQR(qname="_ipp._tcp.local"))),
            ]
        )
    )
    return head + inner[: draw(st.integers(0, len(inner)))]


@st.composite
def extension_headers(draw: st.DrawFn) -> Packet:
    """An IPv6 extension header: options, routing, a fragment header (whole or not), AH."""
    kind = draw(st.sampled_from(["hop", "dest", "routing", "fragment", "ah"]))
    if kind == "hop":
        return IPv6ExtHdrHopByHop()
    if kind == "dest":
        return IPv6ExtHdrDestOpt()
    if kind == "routing":
        return IPv6ExtHdrRouting()
    if kind == "fragment":
        return IPv6ExtHdrFragment(
            offset=draw(st.sampled_from([0, 0, 1])), m=draw(st.integers(0, 1))
        )
    return AH(payloadlen=draw(st.sampled_from([1, 4])), icv=b"\0" * 12)


def _label_stack(draw: st.DrawFn) -> bytes:
    """1-4 MPLS labels; the bottom-of-stack bit on the last, or anywhere at random."""
    count = draw(st.integers(1, 4))
    rand = draw(st.booleans())
    out = b""
    for i in range(count):
        entry = bytearray(draw(st.binary(min_size=4, max_size=4)))
        if not rand:
            entry[2] = (entry[2] & 0xFE) | (i == count - 1)
        out += bytes(entry)
    return out


@st.composite
def shim_chain(draw: st.DrawFn, version: int, body: bytes) -> bytes:
    """``body`` (an IP packet) after an EtherType and the shims link.after_ethertype
    follows: an MPLS stack or a PPPoE session (maybe), then 0-3 VLAN tags outside."""
    etype = 0x0800 if version == 4 else 0x86DD
    inner = draw(st.sampled_from(["none", "none", "mpls", "pppoe", "pppoe-mpls", "snap", "llc"]))
    if inner == "mpls":
        body, etype = _label_stack(draw) + body, draw(st.sampled_from([0x8847, 0x8848]))
    elif inner == "pppoe":
        proto = draw(st.sampled_from([0x0021 if version == 4 else 0x0057, 0x0021, 0xC021]))
        body, etype = pppoe(proto, body), 0x8864
    elif inner == "pppoe-mpls":
        body, etype = pppoe(0x0281, _label_stack(draw) + body), 0x8864
    elif inner in ("snap", "llc"):  # an 802.3 length (or jumbo LLC), then LLC
        oui = draw(st.sampled_from([b"\0\0\0", b"\0\0\xf8", b"\0\0\x0c"]))
        head = b"\xaa\xaa\x03" + oui + struct.pack(">H", etype) if inner == "snap" else b"BB\x03"
        body = head + body
        etype = draw(st.sampled_from([min(len(body), 1500), 0x8870, 0]))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        tci = draw(st.integers(0, 65535))
        body = struct.pack(">HH", tci, etype) + body
        etype = draw(st.sampled_from([0x8100, 0x88A8, 0x9100]))
    return struct.pack(">H", etype) + body


@st.composite
def structured_frames(draw: st.DrawFn) -> tuple[int, bytes, int]:
    """A frame with valid-looking headers and random fields, maybe cut and maybe damaged."""
    version = draw(st.sampled_from([4, 6]))
    ports = st.one_of(st.sampled_from([53, 80, 443, 3544, 4789, 5353, 6081]), st.integers(0, 65535))
    l4: Packet
    proto = draw(st.sampled_from(["tcp", "udp", "sctp", "icmp", "other", "gre", "ipip"]))
    payload = draw(payloads())
    if proto == "tcp":
        l4 = TCP(sport=draw(ports), dport=draw(ports), flags=draw(st.integers(0, 0x1FF)))
    elif proto == "udp":
        l4 = UDP(sport=draw(ports), dport=draw(ports))
    elif proto == "sctp":
        l4 = SCTP(sport=draw(ports), dport=draw(ports))
    elif proto == "icmp":
        icmp_type = draw(st.integers(0, 255))
        l4 = ICMP(type=icmp_type) if version == 4 else ICMPv6DestUnreach(type=icmp_type)
        payload = (
            raw(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6))
            if draw(st.booleans())
            else payload
        )
    elif proto == "gre":
        l4 = Raw(draw(gre_payloads()))
    elif proto == "ipip":
        inner = draw(
            st.sampled_from(
                [
                    raw(V4 / UDP(sport=3, dport=4)),
                    raw(V6 / TCP(flags="SA")),
                    raw(V4 / ICMP()),
                    raw(V6 / UDP(sport=9, dport=4789) / VXLAN() / ETH / V4 / TCP()),
                    raw(IP(frag=1) / UDP()),
                ]
            )
        )
        l4 = Raw(inner[: draw(st.integers(0, len(inner)))] if draw(st.booleans()) else inner)
    else:
        l4 = Raw(draw(st.binary(max_size=8)))
    if version == 4:
        ip: Packet = IP(
            src=draw(st.ip_addresses(v=4)).exploded,
            dst=draw(st.ip_addresses(v=4)).exploded,
            ihl=draw(st.sampled_from([None, None, 6, 15])),
            flags=draw(st.sampled_from([0, 0, 1, 2, 4])),
            frag=draw(st.sampled_from([0, 0, 0, 1, 185])),
            proto=draw(st.sampled_from([0, 1, 4, 6, 17, 33, 41, 47, 50, 51, 58, 132]))
            if proto == "other"
            else 47
            if proto == "gre"
            else draw(st.sampled_from([4, 41]))
            if proto == "ipip"
            else None,
        )
        if ip.ihl:
            ip.options = [IPOption_RR(length=(ip.ihl - 5) * 4 - 1)] if ip.ihl > 5 else []
    else:
        ip = IPv6(
            src=draw(st.ip_addresses(v=6)).exploded,
            dst=draw(st.ip_addresses(v=6)).exploded,
            nh=draw(st.sampled_from([0, 4, 6, 17, 43, 44, 47, 50, 58, 59]))
            if proto == "other"
            else 47
            if proto == "gre"
            else draw(st.sampled_from([4, 41]))
            if proto == "ipip"
            else None,
        )
        for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
            ip = ip / draw(extension_headers())
    body = raw(ip / l4 / payload)
    lt = draw(st.sampled_from(LINKTYPES))
    if lt == 1:  # MAC addresses, then an EtherType and its shims
        frame = b"\2" * 12 + draw(shim_chain(version, body))
    elif lt in (0, 108):
        family = 2 if version == 4 else 24
        frame = struct.pack("<I" if lt == 0 else ">I", family) + body
    elif lt == 113:
        chain = draw(shim_chain(version, body))
        frame = sll(struct.unpack_from(">H", chain)[0], chain[2:])
    elif lt == 276:
        chain = draw(shim_chain(version, body))
        frame = sll2(struct.unpack_from(">H", chain)[0], chain[2:])
    else:
        frame = body
    wirelen = len(frame)
    frame = frame[: draw(st.integers(0, len(frame)))] if draw(st.booleans()) else frame
    if frame and draw(st.booleans()):
        at = draw(st.integers(0, min(len(frame), 80) - 1))
        frame = frame[:at] + bytes([draw(st.integers(0, 255))]) + frame[at + 1 :]
    return lt, frame, wirelen


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(structured_frames(), min_size=1, max_size=25))
def test_structured_frames_equal_reference(frames: list[tuple[int, bytes, int]]) -> None:
    assert_same_as_reference(
        block_from_packets(
            [f[1] for f in frames], [f[0] for f in frames], wirelen=[f[2] for f in frames]
        )
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*LINKTYPES, 147]), st.binary(max_size=90)), max_size=20))
def test_random_bytes_equal_reference(frames: list[tuple[int, bytes]]) -> None:
    assert_same_as_reference(block_from_packets([f[1] for f in frames], [f[0] for f in frames]))


# ---- real captures -----------------------------------------------------------------


def capture_blocks(path: Path, block_bytes: int = 1 << 16) -> Iterator[RawBlock]:
    """The blocks of a capture read by the project's reader (none when it is unreadable).

    Small blocks, so that several per file exercise the offsets into a shared buffer.
    Each block is valid only until the next one is asked for.
    """
    try:
        capture = open_capture(str(path), block_bytes=block_bytes)
    except CaptureError:
        return
    with capture:
        yield from capture.blocks()


def test_real_captures_equal_reference(shared_captures: Path) -> None:
    files = sorted(p for p in shared_captures.iterdir() if p.suffix not in (".tsv", ".md"))
    read = 0
    engine = FastEngine("captures")
    for path in files:
        blocks = 0
        for block in capture_blocks(path):
            fast = engine.decode(block)
            assert batch_differences(fast, reference_batch(block)) == [], path.name
            blocks += 1
        read += blocks > 0
    # Nearly every file is readable; most packets are common ones.
    assert read >= len(files) - 5
    assert engine.packets > 5000
    assert engine.fallbacks < engine.packets / 2
