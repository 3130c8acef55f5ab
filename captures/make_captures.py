#!/usr/bin/env python3
"""Write portsniff's sample captures into a directory (default: the one holding this script).

    python captures/make_captures.py [OUTDIR]

Everything is fixed (timestamps, addresses, sequence numbers, seeded "random" bytes), so a re-run
gives byte-identical files. Packets are built with scapy (which computes the checksums) and the
pcap/pcapng containers are written here with struct, so scapy's writer defaults never leak in.
This script only writes files: it never opens a socket or sends a packet.
"""

from __future__ import annotations

import random
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# scapy is imported at module level on purpose: this is a build script, not library code.
from scapy.contrib.geneve import GENEVE
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRSRV
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrSegmentRouting,
    PadN,
    RouterAlert,
    fragment6,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.ntp import NTP
from scapy.layers.sctp import (
    SCTP,
    SCTPChunkCookieAck,
    SCTPChunkCookieEcho,
    SCTPChunkData,
    SCTPChunkInit,
    SCTPChunkInitAck,
    SCTPChunkParamStateCookie,
    SCTPChunkSACK,
)
from scapy.layers.snmp import SNMP, SNMPget, SNMPvarbind
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
SNAPLEN = 262144
#: 2023-11-14 22:13:20 UTC; every capture starts at a fixed offset from here.
EPOCH_NS = 1_700_000_000 * 1_000_000_000

Frame = tuple[int, bytes]  # (timestamp in ns since the epoch, frame bytes)


# --------------------------------------------------------------------------- containers


def pcap_bytes(frames: Iterable[Frame], linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """A classic little-endian microsecond pcap file."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)]
    for ts_ns, data in frames:
        sec, usec = divmod(ts_ns // 1000, 1_000_000)
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _options(opts: Iterable[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("<HH", code, len(value)) + _pad4(value) for code, value in opts)
    return body + struct.pack("<HH", 0, 0) if body else b""


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


@dataclass(frozen=True, slots=True)
class NgInterface:
    """One pcapng Interface Description Block."""

    linktype: int
    name: str
    description: str
    tsresol: int  # decimal exponent: 6 = microseconds, 9 = nanoseconds


@dataclass(frozen=True, slots=True)
class NgPacket:
    """One pcapng Enhanced Packet Block."""

    interface: int
    ts_ns: int
    data: bytes
    comment: str | None = None


def pcapng_bytes(
    section_comment: str, interfaces: list[NgInterface], packets: list[NgPacket]
) -> bytes:
    """A little-endian pcapng file: one section, its interfaces, then the packets."""
    shb_opts = _options(
        [
            (1, section_comment.encode()),  # opt_comment
            (2, b"x86_64 virtual machine"),  # shb_hardware
            (3, b"Linux 6.1"),  # shb_os
            (4, b"portsniff captures/make_captures.py"),  # shb_userappl
        ]
    )
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)]
    for iface in interfaces:
        opts = _options(
            [
                (2, iface.name.encode()),  # if_name
                (3, iface.description.encode()),  # if_description
                (9, bytes([iface.tsresol])),  # if_tsresol
            ]
        )
        out.append(_block(1, struct.pack("<HHI", iface.linktype, 0, SNAPLEN) + opts))
    for pkt in packets:
        units = pkt.ts_ns // 10 ** (9 - interfaces[pkt.interface].tsresol)
        opts = _options([(1, pkt.comment.encode())] if pkt.comment else [])
        body = struct.pack(
            "<IIIII", pkt.interface, units >> 32, units & 0xFFFFFFFF, len(pkt.data), len(pkt.data)
        )
        out.append(_block(6, body + _pad4(pkt.data) + opts))
    return b"".join(out)


# --------------------------------------------------------------------------- packet helpers


class Clock:
    """Deterministic timestamps: start plus explicit gaps."""

    def __init__(self, start_s: float) -> None:
        self.ns = EPOCH_NS + round(start_s * 1e9)

    def tick(self, gap_ms: float) -> int:
        self.ns += round(gap_ms * 1e6)
        return self.ns


@dataclass(slots=True)
class Host:
    """An endpoint: MAC, IP (v4 or v6), TTL/hop limit and a per-host IPv4 id counter."""

    mac: str
    ip: str
    ttl: int = 64
    ip_id: int = 0x1000

    @property
    def v6(self) -> bool:
        return ":" in self.ip

    def net(self, dst: Host, **kw: Any) -> Packet:
        """The IP header from this host to ``dst``."""
        if self.v6:
            return IPv6(src=self.ip, dst=dst.ip, hlim=self.ttl, **kw)
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        kw.setdefault("flags", "DF")
        return IP(src=self.ip, dst=dst.ip, ttl=self.ttl, id=self.ip_id, **kw)

    def frame(self, dst: Host, l4: Packet, **kw: Any) -> Packet:
        """Ethernet + IP + ``l4`` from this host to ``dst``."""
        etype = 0x86DD if self.v6 else 0x0800
        return Ether(src=self.mac, dst=dst.mac, type=etype) / self.net(dst, **kw) / l4


def udp(src: Host, sport: int, dst: Host, dport: int, payload: bytes | Packet) -> Packet:
    """One Ethernet/IP/UDP frame (UDP is not DF by habit)."""
    extra = {} if src.v6 else {"flags": 0}
    return src.frame(dst, UDP(sport=sport, dport=dport) / payload, **extra)


@dataclass(slots=True)
class TcpFlow:
    """A TCP conversation with correct sequence/ack bookkeeping."""

    client: Host
    cport: int
    server: Host
    sport: int
    c_isn: int
    s_isn: int
    c_win: int = 64240
    s_win: int = 65160
    c_next: int = field(init=False)
    s_next: int = field(init=False)

    def __post_init__(self) -> None:
        self.c_next = self.c_isn
        self.s_next = self.s_isn

    def _seg(self, from_client: bool, flags: str, payload: bytes = b"", **opts: Any) -> Packet:
        if from_client:
            src, dst, sp, dp, seq, ack, win = (
                self.client,
                self.server,
                self.cport,
                self.sport,
                self.c_next,
                self.s_next,
                self.c_win,
            )
        else:
            src, dst, sp, dp, seq, ack, win = (
                self.server,
                self.client,
                self.sport,
                self.cport,
                self.s_next,
                self.c_next,
                self.s_win,
            )
        # Both ends offer window scale 7 in their SYNs, so later segments carry win >> 7.
        tcp = TCP(
            sport=sp,
            dport=dp,
            seq=seq,
            ack=ack if "A" in flags else 0,
            flags=flags,
            window=win if "S" in flags else win >> 7,
            **opts,
        )
        used = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        if from_client:
            self.c_next = (self.c_next + used) & 0xFFFFFFFF
        else:
            self.s_next = (self.s_next + used) & 0xFFFFFFFF
        return src.frame(dst, tcp / payload if payload else tcp)

    def handshake(self) -> list[Packet]:
        mss = 1440 if self.client.v6 else 1460
        syn_opts = [("MSS", mss), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]
        return [
            self._seg(True, "S", options=syn_opts),
            self._seg(False, "SA", options=syn_opts),
            self._seg(True, "A"),
        ]

    def send(self, from_client: bool, payload: bytes) -> Packet:
        return self._seg(from_client, "PA", payload)

    def ack(self, from_client: bool) -> Packet:
        return self._seg(from_client, "A")

    def close(self, client_first: bool = True) -> list[Packet]:
        return [
            self._seg(client_first, "FA"),
            self._seg(not client_first, "FA"),
            self._seg(client_first, "A"),
        ]


def stamp(clock: Clock, packets: Iterable[Packet], gap_ms: float) -> list[Frame]:
    """Give each packet the next timestamp, ``gap_ms`` apart."""
    return [(clock.tick(gap_ms), bytes(p)) for p in packets]


# --------------------------------------------------------------------------- 1. ICS


def _bvlc(function: int, npdu_apdu: bytes) -> bytes:
    return struct.pack("!BBH", 0x81, function, 4 + len(npdu_apdu)) + npdu_apdu


def _bacnet_who_is() -> bytes:
    # Original-Broadcast-NPDU; NPDU to DNET 0xFFFF (global broadcast), hop count 255; Who-Is.
    return _bvlc(0x0B, bytes.fromhex("0120ffff00ff") + bytes.fromhex("1008"))


def _bacnet_i_am(instance: int, vendor: int) -> bytes:
    oid = (8 << 22) | instance  # object type 8 = device
    apdu = (
        bytes.fromhex("1000")  # unconfirmed request, service i-Am
        + b"\xc4"
        + struct.pack("!I", oid)  # BACnetObjectIdentifier
        + bytes.fromhex("2205c4")  # max APDU length accepted 1476
        + bytes.fromhex("9103")  # segmentation: no-segmentation
        + bytes([0x21, vendor])  # vendor identifier
    )
    return _bvlc(0x0B, bytes.fromhex("0100") + apdu)


def _bacnet_read_property(invoke: int) -> bytes:
    # Confirmed ReadProperty(analog-input,1 / present-value), expecting a reply.
    apdu = bytes([0x00, 0x05, invoke, 0x0C]) + bytes.fromhex("0c00000001") + bytes.fromhex("1955")
    return _bvlc(0x0A, bytes.fromhex("0104") + apdu)


def _bacnet_read_property_ack(invoke: int, value: float) -> bytes:
    apdu = (
        bytes([0x30, invoke, 0x0C])
        + bytes.fromhex("0c00000001")
        + bytes.fromhex("1955")
        + b"\x3e\x44"
        + struct.pack("!f", value)
        + b"\x3f"  # [3] REAL value
    )
    return _bvlc(0x0A, bytes.fromhex("0100") + apdu)


def _enip(command: int, session: int, data: bytes, context: bytes = b"\0" * 8) -> bytes:
    return (
        struct.pack("<HHII", command, len(data), session, 0) + context + struct.pack("<I", 0) + data
    )


def _enip_list_identity_reply(ip: str, serial: int, name: bytes) -> bytes:
    addr = bytes(int(x) for x in ip.split("."))
    item = (
        struct.pack("<H", 1)  # encapsulation protocol version
        + struct.pack("!hH", 2, 44818)
        + addr
        + b"\0" * 8  # sockaddr_in, big-endian
        + struct.pack(
            "<HHHBBHI", 1, 0x0E, 0x0036, 32, 11, 0x0060, serial
        )  # Rockwell PLC, rev 32.11
        + bytes([len(name)])
        + name
        + b"\x03"  # state
    )
    return _enip(0x0063, 0, struct.pack("<HHH", 1, 0x000C, len(item)) + item)


def _cip_get_attributes_all_identity() -> bytes:
    # SendRRData: interface handle 0, timeout 10, CPF [Null address, Unconnected data(CIP request)]
    cip = bytes.fromhex("01 02 20 01 24 01")  # service 0x01, path class 1 instance 1
    cpf = (
        struct.pack("<IHH", 0, 10, 2)
        + struct.pack("<HH", 0, 0)
        + struct.pack("<HH", 0xB2, len(cip))
        + cip
    )
    return cpf


def _cip_identity_reply(serial: int, name: bytes) -> bytes:
    cip = (
        bytes.fromhex("81 00 00 00")  # reply to 0x01, success
        + struct.pack("<HHHBBHI", 1, 0x0E, 0x0036, 32, 11, 0x0060, serial)
        + bytes([len(name)])
        + name
    )
    return (
        struct.pack("<IHH", 0, 0, 2)
        + struct.pack("<HH", 0, 0)
        + struct.pack("<HH", 0xB2, len(cip))
        + cip
    )


def _enip_io(conn_id: int, seq: int, data: bytes) -> bytes:
    # CPF: Sequenced Address item (connection id, encapsulation sequence) + Connected Data item.
    payload = struct.pack("<H", seq & 0xFFFF) + data
    return (
        struct.pack("<H", 2)
        + struct.pack("<HHII", 0x8002, 8, conn_id, seq)
        + struct.pack("<HH", 0x00B1, len(payload))
        + payload
    )


def ics_bacnet_enip() -> bytes:
    """Building-automation and plant-floor traffic, with one port that lies."""
    bms = Host("00:50:56:8a:10:05", "10.10.20.5", ttl=128)  # BMS workstation (Windows)
    ctl21 = Host("00:a0:6d:21:00:15", "10.10.20.21")
    ctl22 = Host("00:a0:6d:21:00:16", "10.10.20.22")
    ctl23 = Host("00:a0:6d:21:00:17", "10.10.20.23")  # configured for UDP 47809 (0xBAC1)
    bcast20 = Host("ff:ff:ff:ff:ff:ff", "10.10.20.255")
    hmi = Host("00:1d:9c:30:00:32", "10.10.30.50", ttl=128)  # HMI / EtherNet/IP scanner
    plc = Host("00:00:bc:30:00:0a", "10.10.30.10")  # Rockwell controller
    bcast30 = Host("ff:ff:ff:ff:ff:ff", "10.10.30.255")
    a = Host("02:42:0a:0a:28:07", "10.10.40.7")
    b = Host("02:42:0a:0a:28:08", "10.10.40.8")
    nimclient = Host("02:42:0a:0a:28:0c", "10.10.40.12")
    nimhub = Host("02:42:0a:0a:28:02", "10.10.40.2")
    scanner = Host("02:42:0a:0a:28:09", "10.10.40.9")
    target = Host("02:42:0a:0a:28:03", "10.10.40.3")
    app1 = Host("02:42:0a:0a:28:14", "10.10.40.20")
    app2 = Host("02:42:0a:0a:28:15", "10.10.40.21")

    clock = Clock(0)
    frames: list[Frame] = []
    # BACnet discovery: Who-Is broadcast, two I-Am answers, all on 47808 <-> 47808.
    frames += stamp(clock, [udp(bms, 47808, bcast20, 47808, _bacnet_who_is())], 100)
    frames += stamp(clock, [udp(ctl21, 47808, bcast20, 47808, _bacnet_i_am(21, 24))], 12.5)
    frames += stamp(clock, [udp(ctl22, 47808, bcast20, 47808, _bacnet_i_am(22, 24))], 3.2)
    # A controller still on the alternate BACnet port 47809: IANA says presonus-ucnet there.
    frames += stamp(clock, [udp(ctl23, 47809, bcast20, 47809, _bacnet_i_am(23, 5))], 4.1)
    # A tool reading a value from an ephemeral client port.
    frames += stamp(
        clock,
        [
            udp(bms, 52014, ctl21, 47808, _bacnet_read_property(1)),
            udp(ctl21, 47808, bms, 52014, _bacnet_read_property_ack(1, 21.5)),
        ],
        250,
    )
    # EtherNet/IP: UDP ListIdentity broadcast and the PLC's answer.
    ctx = b"\x00\x00\x00\x00\x00\x00\x00\x00"
    frames += stamp(
        clock,
        [
            udp(hmi, 50100, bcast30, 44818, _enip(0x0063, 0, b"", ctx)),
            udp(
                plc,
                44818,
                hmi,
                50100,
                _enip_list_identity_reply(plc.ip, 0x60A3B2C1, b"1769-L33ER/A LOGIX5333ER"),
            ),
        ],
        300,
    )
    # EtherNet/IP explicit messaging over TCP 44818: RegisterSession, Get_Attributes_All, close.
    flow = TcpFlow(hmi, 51312, plc, 44818, c_isn=0x3B9ACA01, s_isn=0x7A1C0B55)
    session = 0x1A2B3C4D
    tcp_packets = [
        *flow.handshake(),
        flow.send(True, _enip(0x0065, 0, struct.pack("<HH", 1, 0), b"HMI\0\0\0\0\x01")),
        flow.send(False, _enip(0x0065, session, struct.pack("<HH", 1, 0), b"HMI\0\0\0\0\x01")),
        flow.send(
            True, _enip(0x006F, session, _cip_get_attributes_all_identity(), b"HMI\0\0\0\0\x02")
        ),
        flow.send(
            False,
            _enip(
                0x006F,
                session,
                _cip_identity_reply(0x60A3B2C1, b"1769-L33ER/A LOGIX5333ER"),
                b"HMI\0\0\0\0\x02",
            ),
        ),
        flow.ack(True),
        flow.send(True, _enip(0x0066, session, b"", b"HMI\0\0\0\0\x03")),
        *flow.close(client_first=True),
    ]
    frames += stamp(clock, tcp_packets, 0.8)
    # Class 1 implicit I/O on UDP 2222 in both directions (O->T and T->O connections).
    io = []
    for n in range(3):
        io.append(
            udp(
                hmi,
                2222,
                plc,
                2222,
                _enip_io(0x00D1E701, 0x41 + n, struct.pack("<I", 1) + bytes([n, 0, 0, 0])),
            )
        )
        io.append(
            udp(
                plc,
                2222,
                hmi,
                2222,
                _enip_io(0x00FF4E02, 0x910 + n, bytes([0x10 + n, 0x00, 0x7F, 0x01])),
            )
        )
    frames += stamp(clock, io, 10)
    # Other ports from the excerpt's UDP 44600-49150 range, plus one in the dynamic range.
    frames += stamp(
        clock,
        [
            udp(a, 45678, b, 45678, b"EBA\x01\x00\x10PRISE-HEARTBEAT\x00"),
            udp(
                nimclient,
                50412,
                nimhub,
                48000,
                b"nimbus/1.0 0 48\n\x00\x00\x00\x00mtype\x00\x07probe_alive\x00",
            ),
            udp(scanner, 53211, target, 45001, b"\x00" * 8),  # a probe to a Reserved port
            udp(app1, 61000, app2, 50000, b"\x17\x2a\x00\x04ping"),  # dynamic range, unassigned
        ],
        150,
    )
    return pcap_bytes(frames)


# --------------------------------------------------------------------------- 2. DNS / mDNS


def _mdns_hosts() -> dict[str, Host]:
    return {
        "mcast": Host("01:00:5e:00:00:fb", "224.0.0.251", ttl=255),
        "mcast6": Host("33:33:00:00:00:fb", "ff02::fb", ttl=255),
        "phone": Host("a4:83:e7:00:00:28", "10.0.0.40", ttl=255),
        "phone6": Host("a4:83:e7:00:00:28", "fe80::a683:e7ff:fe00:28", ttl=255),
        "appletv": Host("3c:22:fb:00:00:29", "10.0.0.41", ttl=255),
        "printer": Host("00:1b:a9:00:00:2a", "10.0.0.42", ttl=255),
        "chromecast": Host("f4:f5:d8:00:00:2b", "10.0.0.43", ttl=255),
        "chromecast6": Host("f4:f5:d8:00:00:2b", "fe80::f6f5:d8ff:fe00:2b", ttl=255),
    }


def dns_mdns_dnssd() -> bytes:
    """Unicast DNS over UDP and TCP, then mDNS / DNS-SD discovery on a home LAN."""
    laptop = Host("02:00:0a:00:00:17", "10.0.0.23")
    resolver = Host("02:00:0a:00:00:01", "10.0.0.1")
    laptop6 = Host("02:00:0a:00:00:17", "2001:db8:1::23")
    resolver6 = Host("02:00:0a:00:00:01", "2001:db8:1::1")
    h = _mdns_hosts()
    clock = Clock(3600)
    frames: list[Frame] = []

    q = DNS(id=0x1A2B, rd=1, qd=[DNSQR(qname="www.example.com", qtype="A")])
    r = DNS(
        id=0x1A2B,
        qr=1,
        rd=1,
        ra=1,
        qd=[DNSQR(qname="www.example.com", qtype="A")],
        an=[DNSRR(rrname="www.example.com", type="A", ttl=3600, rdata="192.0.2.80")],
    ).compress()
    q6 = DNS(id=0x1A2C, rd=1, qd=[DNSQR(qname="www.example.com", qtype="AAAA")])
    r6 = DNS(
        id=0x1A2C,
        qr=1,
        rd=1,
        ra=1,
        qd=[DNSQR(qname="www.example.com", qtype="AAAA")],
        an=[DNSRR(rrname="www.example.com", type="AAAA", ttl=3600, rdata="2001:db8::80")],
    ).compress()
    frames += stamp(
        clock, [udp(laptop, 41234, resolver, 53, q), udp(resolver, 53, laptop, 41234, r)], 20
    )
    frames += stamp(
        clock, [udp(laptop6, 41236, resolver6, 53, q6), udp(resolver6, 53, laptop6, 41236, r6)], 20
    )

    # DNS over TCP (a TXT answer too big for the client's taste): 2-byte length prefix.
    tq = DNS(id=0x5EED, rd=1, qd=[DNSQR(qname="example.com", qtype="TXT")])
    txts = [
        b"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all",
        b"google-site-verification=portsniff-sample-record-0123456789abcdef",
        b"contact=hostmaster@example.com",
    ]
    tr = DNS(
        id=0x5EED,
        qr=1,
        rd=1,
        ra=1,
        qd=[DNSQR(qname="example.com", qtype="TXT")],
        an=[DNSRR(rrname="example.com", type="TXT", ttl=300, rdata=[t]) for t in txts],
    ).compress()
    flow = TcpFlow(laptop, 53124, resolver, 53, c_isn=0x0BADF00D, s_isn=0x5CA1AB1E)
    tq_b, tr_b = bytes(tq), bytes(tr)
    frames += stamp(
        clock,
        [
            *flow.handshake(),
            flow.send(True, struct.pack("!H", len(tq_b)) + tq_b),
            flow.send(False, struct.pack("!H", len(tr_b)) + tr_b),
            *flow.close(client_first=True),
        ],
        1.5,
    )

    # mDNS: a phone asks for AirPlay receivers (and Chromecasts over IPv6).
    airplay_q = DNS(id=0, qr=0, rd=0, qd=[DNSQR(qname="_airplay._tcp.local", qtype="PTR")])
    cast_q = DNS(id=0, qr=0, rd=0, qd=[DNSQR(qname="_googlecast._tcp.local", qtype="PTR")])
    kitchen = "Kitchen._airplay._tcp.local"
    raop = "3C22FB000029@Kitchen._raop._tcp.local"
    tv_resp = DNS(
        id=0,
        qr=1,
        aa=1,
        rd=0,
        qd=[],
        an=[DNSRR(rrname="_airplay._tcp.local", type="PTR", ttl=4500, rdata=kitchen)],
        ar=[
            DNSRRSRV(rrname=kitchen, ttl=120, cacheflush=1, port=7000, target="Kitchen.local"),
            DNSRR(
                rrname=kitchen,
                type="TXT",
                ttl=4500,
                cacheflush=1,
                rdata=[
                    b"deviceid=3C:22:FB:00:00:29",
                    b"features=0x5A7FFFF7,0x1E",
                    b"model=AppleTV6,2",
                    b"srcvers=770.8.1",
                ],
            ),
            DNSRR(rrname="_raop._tcp.local", type="PTR", ttl=4500, rdata=raop),
            DNSRRSRV(rrname=raop, ttl=120, cacheflush=1, port=7000, target="Kitchen.local"),
            DNSRR(
                rrname=raop,
                type="TXT",
                ttl=4500,
                cacheflush=1,
                rdata=[b"cn=0,1,2,3", b"et=0,3,5", b"tp=UDP", b"am=AppleTV6,2"],
            ),
            DNSRR(rrname="Kitchen.local", type="A", ttl=120, cacheflush=1, rdata="10.0.0.41"),
        ],
    ).compress()
    printer_ann = DNS(
        id=0,
        qr=1,
        aa=1,
        rd=0,
        qd=[],
        an=[
            DNSRR(
                rrname="_services._dns-sd._udp.local", type="PTR", ttl=4500, rdata="_ipp._tcp.local"
            ),
            DNSRR(
                rrname="_ipp._tcp.local",
                type="PTR",
                ttl=4500,
                rdata="Office Printer._ipp._tcp.local",
            ),
            DNSRRSRV(
                rrname="Office Printer._ipp._tcp.local",
                ttl=120,
                cacheflush=1,
                port=631,
                target="office-printer.local",
            ),
            DNSRR(
                rrname="Office Printer._ipp._tcp.local",
                type="TXT",
                ttl=4500,
                cacheflush=1,
                rdata=[
                    b"txtvers=1",
                    b"rp=ipp/print",
                    b"ty=Sample LaserJet 400",
                    b"pdl=application/pdf,image/urf",
                    b"Color=F",
                ],
            ),
            DNSRR(
                rrname="office-printer.local", type="A", ttl=120, cacheflush=1, rdata="10.0.0.42"
            ),
        ],
    ).compress()
    cast_name = "Chromecast-0f1e2d3c4b5a69788796a5b4c3d2e1f0._googlecast._tcp.local"
    cast_resp = DNS(
        id=0,
        qr=1,
        aa=1,
        rd=0,
        qd=[],
        an=[DNSRR(rrname="_googlecast._tcp.local", type="PTR", ttl=120, rdata=cast_name)],
        ar=[
            DNSRRSRV(
                rrname=cast_name,
                ttl=120,
                cacheflush=1,
                port=8009,
                target="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.local",
            ),
            DNSRR(
                rrname=cast_name,
                type="TXT",
                ttl=4500,
                cacheflush=1,
                rdata=[
                    b"id=0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                    b"md=Chromecast",
                    b"fn=Living Room",
                    b"ca=199172",
                    b"st=0",
                ],
            ),
            DNSRR(
                rrname="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.local",
                type="AAAA",
                ttl=120,
                cacheflush=1,
                rdata="fe80::f6f5:d8ff:fe00:2b",
            ),
        ],
    ).compress()
    frames += stamp(
        clock,
        [
            udp(h["phone"], 5353, h["mcast"], 5353, airplay_q),
            udp(h["appletv"], 5353, h["mcast"], 5353, tv_resp),
            udp(h["printer"], 5353, h["mcast"], 5353, printer_ann),
            udp(h["phone6"], 5353, h["mcast6"], 5353, cast_q),
            udp(h["chromecast6"], 5353, h["mcast6"], 5353, cast_resp),
        ],
        180,
    )
    return pcap_bytes(frames)


# --------------------------------------------------------------------------- 3. web / TLS pcapng


def _tls_client_hello(rng: random.Random, sni: bytes) -> bytes:
    def ext(code: int, body: bytes) -> bytes:
        return struct.pack("!HH", code, len(body)) + body

    def vec16(body: bytes) -> bytes:
        return struct.pack("!H", len(body)) + body

    sni_entry = b"\x00" + vec16(sni)
    alpn = b"".join(bytes([len(p)]) + p for p in (b"h2", b"http/1.1"))
    key_share = struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)
    exts = b"".join(
        [
            ext(0x0000, vec16(sni_entry)),
            ext(0x000A, vec16(struct.pack("!HHH", 0x001D, 0x0017, 0x0018))),
            ext(0x000B, b"\x01\x00"),
            ext(
                0x000D,
                vec16(struct.pack("!HHHHHH", 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501)),
            ),
            ext(0x0010, vec16(alpn)),
            ext(0x002B, b"\x04\x03\x04\x03\x03"),
            ext(0x002D, b"\x01\x01"),
            ext(0x0033, vec16(key_share)),
        ]
    )
    suites = struct.pack(
        "!9H", 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8
    )
    body = (
        b"\x03\x03"
        + rng.randbytes(32)
        + b"\x20"
        + rng.randbytes(32)
        + vec16(suites)
        + b"\x01\x00"
        + vec16(exts)
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + vec16(hs)


def _quic_initial(rng: random.Random, dcid: bytes, scid: bytes, size: int) -> bytes:
    # Long header, Initial, 4-byte packet number; the protected payload is opaque (seeded) bytes.
    head = (
        b"\xc3"
        + struct.pack("!I", 1)
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + b"\x00"
    )
    rest = size - len(head) - 2
    return head + struct.pack("!H", 0x4000 | rest) + rng.randbytes(rest)


def _sll(pkttype: int, mac: str, ethertype: int) -> bytes:
    addr = bytes.fromhex(mac.replace(":", "")) + b"\0\0"
    return struct.pack("!HHH", pkttype, 1, 6) + addr + struct.pack("!H", ethertype)


def web_tls() -> bytes:
    """A two-interface pcapng: eth0 (Ethernet, µs) and any (Linux SLL, ns), with comments."""
    rng = random.Random(20231114)
    client = Host("02:00:0a:01:00:0f", "10.1.0.15")
    gateway_web = Host("02:00:0a:01:00:01", "192.0.2.80")
    gateway_tls = Host("02:00:0a:01:00:01", "192.0.2.44")
    client6 = Host("02:00:0a:01:00:0f", "2001:db8:10::15")
    server6 = Host("02:00:0a:01:00:01", "2001:db8:20::8")
    clock = Clock(7200)
    packets: list[NgPacket] = []

    def add(
        iface: int,
        pkts: Iterable[Packet | bytes],
        gap_ms: float,
        comments: dict[int, str] | None = None,
    ) -> None:
        for i, p in enumerate(pkts):
            packets.append(NgPacket(iface, clock.tick(gap_ms), bytes(p), (comments or {}).get(i)))

    http = TcpFlow(client, 51724, gateway_web, 80, c_isn=0x1F2E3D4C, s_isn=0x6A5B4C3D)
    body = b"<!doctype html>\n<html><head><title>Example</title></head><body><p>Hello.</p></body></html>\n"
    get = (
        b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.4.0\r\n"
        b"Accept: */*\r\n\r\n"
    )
    resp = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nServer: ECS (sample)\r\n\r\n"
        + body
    )
    add(
        0,
        [
            *http.handshake(),
            http.send(True, get),
            http.ack(False),
            http.send(False, resp),
            http.ack(True),
            *http.close(client_first=True),
        ],
        2.0,
        {3: "HTTP GET on the registered port (80/tcp http)", 5: "200 OK with a small HTML body"},
    )

    tls = TcpFlow(client, 51726, gateway_tls, 443, c_isn=0x2A3B4C5D, s_isn=0x0C0FFEE0)
    add(
        0,
        [
            *tls.handshake(),
            tls.send(True, _tls_client_hello(rng, b"www.example.com")),
            tls.ack(False),
        ],
        3.0,
        {3: "TLS 1.3 ClientHello, SNI www.example.com, ALPN h2"},
    )

    # Linux "any" interface: SLL headers, nanosecond timestamps.
    dcid = rng.randbytes(8)
    scid = rng.randbytes(8)
    q1 = (
        IP(src=client.ip, dst=gateway_tls.ip, ttl=64, id=0x2201, flags="DF")
        / UDP(sport=58812, dport=443)
        / Raw(_quic_initial(rng, dcid, b"", 1200))
    )
    q2 = (
        IP(src=gateway_tls.ip, dst=client.ip, ttl=57, id=0, flags="DF")
        / UDP(sport=443, dport=58812)
        / Raw(_quic_initial(rng, b"", scid, 1200))
    )
    add(
        1,
        [_sll(4, client.mac, 0x0800) + bytes(q1), _sll(0, gateway_tls.mac, 0x0800) + bytes(q2)],
        4.250125,  # sub-microsecond gaps: this interface has nanosecond resolution
        {0: "QUIC Initial (v1) to 443/udp; payload is opaque"},
    )

    h6 = TcpFlow(client6, 50330, server6, 8080, c_isn=0x44556677, s_isn=0x10203040)
    status = b'{"status":"ok","uptime":86400}\n'
    seq6 = [
        *h6.handshake(),
        h6.send(
            True,
            b"GET /status HTTP/1.1\r\nHost: [2001:db8:20::8]:8080\r\nAccept: application/json\r\n\r\n",
        ),
        h6.send(
            False,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(status)).encode()
            + b"\r\n\r\n"
            + status,
        ),
        h6.ack(True),
        *h6.close(client_first=False),
    ]
    sll6 = []
    for p in seq6:
        inner = p[IPv6]
        outgoing = inner.src == client6.ip
        sll6.append(
            _sll(4 if outgoing else 0, client6.mac if outgoing else server6.mac, 0x86DD)
            + bytes(inner)
        )
    add(1, sll6, 1.000333, {3: "HTTP over IPv6 on 8080/tcp (http-alt)"})

    interfaces = [
        NgInterface(LINKTYPE_ETHERNET, "eth0", "Ethernet uplink", 6),
        NgInterface(LINKTYPE_LINUX_SLL, "any", "Linux cooked capture on all interfaces", 9),
    ]
    comment = (
        "portsniff sample: web traffic seen on two interfaces (Ethernet eth0 with microsecond "
        "timestamps, Linux SLL 'any' with nanosecond timestamps)"
    )
    return pcapng_bytes(comment, interfaces, packets)


# --------------------------------------------------------------------------- 4. tunnels, fragments


def tunnels_frags_icmp() -> bytes:
    """Encapsulations, IP fragments (one out of order), ICMP errors, IPv6 extension headers, VLANs."""
    vtep1 = Host("02:00:0a:14:00:01", "10.20.0.1")
    vtep2 = Host("02:00:0a:14:00:02", "10.20.0.2")
    vtep3 = Host("02:00:0a:14:00:03", "10.20.0.3")
    gre_peer = Host("02:00:0a:14:00:04", "10.20.0.4")
    ipip_peer = Host("02:00:0a:14:00:05", "10.20.0.5")
    relay6in4 = Host("02:00:0a:14:00:fe", "192.0.2.1")
    clock = Clock(10800)
    frames: list[Frame] = []

    # VXLAN VNI 5001 carrying an NTP exchange between two VMs.
    vm_a = Ether(src="02:16:3e:05:00:0a", dst="02:16:3e:05:00:01")
    vm_b = Ether(src="02:16:3e:05:00:01", dst="02:16:3e:05:00:0a")
    ntp_req = (
        vm_a
        / IP(src="172.16.5.10", dst="172.16.5.1", id=0x0101, ttl=64)
        / UDP(sport=123, dport=123)
        / NTP(
            version=4,
            mode=3,
            stratum=0,
            poll=6,
            precision=-20,
            id="0.0.0.0",
            ref=0,
            orig=0,
            recv=0,
            sent=3908988800.25,
        )
    )
    ntp_rsp = (
        vm_b
        / IP(src="172.16.5.1", dst="172.16.5.10", id=0x0201, ttl=64)
        / UDP(sport=123, dport=123)
        / NTP(
            version=4,
            mode=4,
            stratum=2,
            poll=6,
            precision=-23,
            delay=0.0123,
            dispersion=0.0251,
            id="192.0.2.123",
            ref=3908988790.0,
            orig=3908988800.25,
            recv=3908988800.2503,
            sent=3908988800.2504,
        )
    )
    frames += stamp(
        clock,
        [
            udp(vtep1, 54321, vtep2, 4789, VXLAN(flags=0x08, vni=5001) / ntp_req),
            udp(vtep2, 60123, vtep1, 4789, VXLAN(flags=0x08, vni=5001) / ntp_rsp),
        ],
        50,
    )
    # Geneve VNI 0x1234 carrying an SSH connection attempt.
    ssh_syn = (
        Ether(src="02:16:3e:06:00:0a", dst="02:16:3e:06:00:14")
        / IP(src="172.16.6.10", dst="172.16.6.20", id=0x0301, flags="DF")
        / TCP(
            sport=50022,
            dport=22,
            seq=0x01020304,
            flags="S",
            window=64240,
            options=[("MSS", 1400), ("SAckOK", b""), ("NOP", None), ("WScale", 7)],
        )
    )
    frames += stamp(
        clock, [udp(vtep1, 61234, vtep3, 6081, GENEVE(proto=0x6558, vni=0x1234) / ssh_syn)], 50
    )
    # GRE carrying a DNS query.
    gre_dns = (
        IP(src="172.16.7.10", dst="172.16.7.53", id=0x0401)
        / UDP(sport=40731, dport=53)
        / DNS(id=0x4E4E, rd=1, qd=[DNSQR(qname="intranet.example", qtype="A")])
    )
    frames += stamp(clock, [vtep1.frame(gre_peer, GRE(proto=0x0800) / gre_dns, flags=0)], 50)
    # IP-in-IP carrying a BGP session open attempt.
    ipip = IP(src="172.16.8.10", dst="172.16.8.20", id=0x0501, ttl=1) / TCP(
        sport=49500, dport=179, seq=0x0A0B0C0D, flags="S", window=16384, options=[("MSS", 1460)]
    )
    frames += stamp(clock, [vtep1.frame(ipip_peer, ipip, flags=0)], 50)
    # 6in4 (protocol 41) carrying HTTPS over IPv6.
    six = IPv6(src="2001:db8:6::10", dst="2001:db8:6::443", hlim=64) / TCP(
        sport=52000,
        dport=443,
        seq=0x600D5EED,
        flags="S",
        window=64800,
        options=[("MSS", 1420), ("SAckOK", b""), ("NOP", None), ("WScale", 7)],
    )
    frames += stamp(clock, [vtep1.frame(relay6in4, six, flags=0)], 50)

    # IPv4 fragments: a 3000-byte NFS-over-UDP datagram in order (first, middle, last)...
    rng = random.Random(4789)
    nfs = (
        IP(src="10.20.1.10", dst="10.20.1.20", id=0x7A01, ttl=64)
        / UDP(sport=40123, dport=2049)
        / Raw(rng.randbytes(2992))
    )
    eth_a = Ether(src="02:00:0a:14:01:0a", dst="02:00:0a:14:01:14")
    frames += stamp(clock, [eth_a / f for f in fragment(nfs, fragsize=1480)], 0.4)
    # ...and a large DNS answer whose last fragment arrives before its first.
    big = DNS(
        id=0xB16D,
        qr=1,
        rd=1,
        ra=1,
        qd=[DNSQR(qname="big.example", qtype="TXT")],
        an=[
            DNSRR(
                rrname="big.example", type="TXT", ttl=60, rdata=[rng.randbytes(40).hex().encode()]
            )
            for _ in range(22)
        ],
    ).compress()
    dns_big = (
        IP(src="10.20.1.53", dst="10.20.1.10", id=0x7A02, ttl=63) / UDP(sport=53, dport=56000) / big
    )
    eth_b = Ether(src="02:00:0a:14:01:35", dst="02:00:0a:14:01:0a")
    frags = [eth_b / f for f in fragment(dns_big, fragsize=1480)]
    frames += stamp(clock, list(reversed(frags)), 0.4)
    # IPv6 fragments of a SIP INVITE over UDP 5060.
    invite = (
        b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8:1::10]:5060;branch=z9hG4bK776asdhds\r\n"
        b"Max-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710@2001:db8:1::10\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@[2001:db8:1::10]>\r\n"
        b"Content-Type: application/sdp\r\n"
    )
    sdp = b"v=0\r\no=alice 2890844526 2890844526 IN IP6 2001:db8:1::10\r\ns=-\r\nc=IN IP6 2001:db8:1::10\r\nt=0 0\r\n"
    sdp += b"".join(b"a=rtpmap:%d codec%d/8000\r\n" % (96 + i, i) for i in range(40))
    sdp += b"m=audio 49170 RTP/AVP 0\r\n"
    sip = invite + b"Content-Length: " + str(len(sdp)).encode() + b"\r\n\r\n" + sdp
    sip6 = (
        IPv6(src="2001:db8:1::10", dst="2001:db8:1::20", hlim=64)
        / IPv6ExtHdrFragment(id=0x5E1F0001)
        / UDP(sport=5060, dport=5060)
        / Raw(sip)
    )
    eth6 = Ether(src="02:00:0a:14:01:0a", dst="02:00:0a:14:01:14", type=0x86DD)
    frames += stamp(clock, [eth6 / f for f in fragment6(sip6, 1280)], 0.4)

    # ICMP port unreachable quoting the DNS query that provoked it.
    resolver_client = Host("02:00:0a:14:02:0a", "10.20.2.10")
    dead_resolver = Host("02:00:0a:14:02:01", "10.20.2.1")
    query = resolver_client.frame(
        dead_resolver,
        UDP(sport=53012, dport=53)
        / DNS(id=0x0D0D, rd=1, qd=[DNSQR(qname="printer.example", qtype="A")]),
        flags=0,
    )
    frames += stamp(
        clock,
        [
            query,
            dead_resolver.frame(
                resolver_client, ICMP(type=3, code=3) / Raw(bytes(query[IP])), flags=0
            ),
        ],
        30,
    )
    # ICMPv6 destination unreachable (port) quoting an SNMP get to UDP 161.
    mgr6 = Host("02:00:0a:14:02:0b", "2001:db8:2::10")
    agent6 = Host("02:00:0a:14:02:02", "2001:db8:2::1")
    snmp = SNMP(
        community="public",
        PDU=SNMPget(id=0x2A2A, varbindlist=[SNMPvarbind(oid="1.3.6.1.2.1.1.1.0")]),
    )
    get6 = mgr6.frame(agent6, UDP(sport=50161, dport=161) / snmp)
    frames += stamp(
        clock,
        [
            get6,
            agent6.frame(mgr6, ICMPv6DestUnreach(code=4) / Raw(bytes(get6[IPv6]))),
        ],
        30,
    )
    # IPv6 hop-by-hop + destination options + segment routing header (segments left 0), then TCP.
    ext_src = Host("02:00:0a:14:03:0a", "2001:db8:3::10")
    ext_dst = Host("02:00:0a:14:03:14", "2001:db8:3::20")
    ext = (
        IPv6ExtHdrHopByHop(options=[RouterAlert(value=0), PadN(optdata=b"\0\0")])
        / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")])
        / IPv6ExtHdrSegmentRouting(addresses=["2001:db8:3::20", "2001:db8:3::1"], segleft=0)
        / TCP(
            sport=55000,
            dport=443,
            seq=0x5EC0A11,
            flags="S",
            window=64800,
            options=[("MSS", 1400), ("SAckOK", b""), ("NOP", None), ("WScale", 7)],
        )
    )
    frames += stamp(clock, [ext_src.frame(ext_dst, ext)], 30)

    # 802.1Q-tagged syslog and an 802.1ad QinQ-tagged SNMP get.
    frames += stamp(
        clock,
        [
            Ether(src="02:00:0a:1e:64:05", dst="02:00:0a:1e:64:01")
            / Dot1Q(prio=0, vlan=100)
            / IP(src="10.30.100.5", dst="10.30.100.1", id=0x0601)
            / UDP(sport=50514, dport=514)
            / Raw(b"<134>Nov 14 22:13:20 sw-access-3 sshd[812]: Accepted publickey for admin"),
            Ether(src="02:00:0a:1e:c8:05", dst="02:00:0a:1e:c8:01", type=0x88A8)
            / Dot1AD(vlan=200)
            / Dot1Q(vlan=100)
            / IP(src="10.30.100.5", dst="10.30.200.1", id=0x0602)
            / UDP(sport=51000, dport=161)
            / SNMP(
                community="public",
                PDU=SNMPget(id=0x2A2B, varbindlist=[SNMPvarbind(oid="1.3.6.1.2.1.1.5.0")]),
            ),
        ],
        25,
    )
    # ARP request and reply between the two VTEPs.
    frames += stamp(
        clock,
        [
            Ether(src=vtep1.mac, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=1, hwsrc=vtep1.mac, psrc=vtep1.ip, hwdst="00:00:00:00:00:00", pdst=vtep2.ip),
            Ether(src=vtep2.mac, dst=vtep1.mac)
            / ARP(op=2, hwsrc=vtep2.mac, psrc=vtep2.ip, hwdst=vtep1.mac, pdst=vtep1.ip),
        ],
        5,
    )
    return pcap_bytes(frames)


# --------------------------------------------------------------------------- 5. SCTP / DCCP


def _diameter_cer(hop: int) -> bytes:
    def avp(code: int, data: bytes) -> bytes:
        head = struct.pack("!IB", code, 0x40) + (8 + len(data)).to_bytes(3, "big")
        return head + _pad4(data)

    avps = b"".join(
        [
            avp(264, b"mme1.epc.example.org"),  # Origin-Host
            avp(296, b"epc.example.org"),  # Origin-Realm
            avp(257, b"\x00\x01" + bytes([10, 40, 0, 10])),  # Host-IP-Address
            avp(266, struct.pack("!I", 10415)),  # Vendor-Id (3GPP)
            avp(269, b"portsniff-sample"),  # Product-Name
            avp(258, struct.pack("!I", 16777251)),  # Auth-Application-Id (S6a)
        ]
    )
    length = 20 + len(avps)
    return (
        bytes([1])
        + length.to_bytes(3, "big")
        + bytes([0x80])
        + (257).to_bytes(3, "big")
        + struct.pack("!III", 0, hop, 0x5A5A0000 | hop)
        + avps
    )


def _sctp_association(
    clock: Clock,
    a: Host,
    aport: int,
    b: Host,
    bport: int,
    tags: tuple[int, int],
    ppid: int,
    messages: list[tuple[bool, bytes]],
    cookie: bytes,
) -> list[Frame]:
    """INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK, then DATA/SACK pairs."""
    tag_a, tag_b = tags
    tsn = {True: tag_a ^ 0x1111, False: tag_b ^ 0x2222}
    ssn = {True: 0, False: 0}
    pkts: list[Packet] = [
        a.frame(
            b,
            SCTP(sport=aport, dport=bport, tag=0)
            / SCTPChunkInit(
                init_tag=tag_a,
                a_rwnd=106496,
                n_out_streams=10,
                n_in_streams=65535,
                init_tsn=tsn[True],
            ),
        ),
        b.frame(
            a,
            SCTP(sport=bport, dport=aport, tag=tag_a)
            / SCTPChunkInitAck(
                init_tag=tag_b,
                a_rwnd=106496,
                n_out_streams=10,
                n_in_streams=10,
                init_tsn=tsn[False],
                params=[SCTPChunkParamStateCookie(cookie=cookie)],
            ),
        ),
        a.frame(b, SCTP(sport=aport, dport=bport, tag=tag_b) / SCTPChunkCookieEcho(cookie=cookie)),
        b.frame(a, SCTP(sport=bport, dport=aport, tag=tag_a) / SCTPChunkCookieAck()),
    ]
    for from_a, data in messages:
        src, dst, sp, dp, tag = (
            (a, b, aport, bport, tag_b) if from_a else (b, a, bport, aport, tag_a)
        )
        pkts.append(
            src.frame(
                dst,
                SCTP(sport=sp, dport=dp, tag=tag)
                / SCTPChunkData(
                    beginning=1,
                    ending=1,
                    tsn=tsn[from_a],
                    stream_id=0,
                    stream_seq=ssn[from_a],
                    proto_id=ppid,
                    data=data,
                ),
            )
        )
        ack_tag = tag_a if from_a else tag_b
        pkts.append(
            dst.frame(
                src,
                SCTP(sport=dp, dport=sp, tag=ack_tag)
                / SCTPChunkSACK(cumul_tsn_ack=tsn[from_a], a_rwnd=106496),
            )
        )
        tsn[from_a] += 1
        ssn[from_a] += 1
    return stamp(clock, pkts, 0.6)


def _dccp(
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    ptype: int,
    seq: int,
    ack: int | None = None,
    extra: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    """A DCCP packet with 48-bit sequence numbers (X=1) and a full-coverage checksum (RFC 4340)."""
    ack_sub = b"" if ack is None else b"\0\0" + ack.to_bytes(6, "big")
    header_len = 16 + len(ack_sub) + len(extra)
    head = struct.pack("!HHBBH", sport, dport, header_len // 4, 0, 0)
    head += bytes([(ptype << 1) | 1, 0]) + seq.to_bytes(6, "big") + ack_sub + extra
    segment = head + payload
    pseudo = bytes(int(x) for x in src_ip.split(".")) + bytes(int(x) for x in dst_ip.split("."))
    pseudo += struct.pack("!BBH", 0, 33, len(segment))
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    csum = ~total & 0xFFFF
    return segment[:6] + struct.pack("!H", csum) + segment[8:]


def _rtp(seq: int, ts: int, ssrc: int, rng: random.Random) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + rng.randbytes(160)


def sctp_dccp() -> bytes:
    """SCTP associations for Diameter, M3UA and S1AP; DCCP connections carrying RTP/RTCP."""
    mme = Host("02:00:0a:28:00:0a", "10.40.0.10")
    hss = Host("02:00:0a:28:00:14", "10.40.0.20")
    sgp = Host("02:00:0a:28:00:1e", "10.40.0.30")
    enb = Host("02:00:0a:28:00:28", "10.40.0.40")
    clock = Clock(14400)
    frames: list[Frame] = []
    frames += _sctp_association(
        clock,
        mme,
        3868,
        hss,
        3868,
        (0x2F3E4D5C, 0x6B7A8998),
        46,
        [(True, _diameter_cer(1))],
        b"DIAMETER-COOKIE-0123456789abcdef",
    )
    aspup = bytes.fromhex(
        "01000301 00000010 00110008 0000002a"
    )  # M3UA ASPUP with ASP Identifier 42
    aspup_ack = bytes.fromhex("01000304 00000008")
    frames += _sctp_association(
        clock,
        sgp,
        2905,
        mme,
        2905,
        (0x13572468, 0x24681357),
        3,
        [(True, aspup), (False, aspup_ack)],
        b"M3UA-COOKIE-fedcba9876543210",
    )
    # S1AP: only the association set-up (the S1 Setup payload is ASN.1 we do not forge).
    frames += _sctp_association(
        clock,
        enb,
        36412,
        mme,
        36412,
        (0x0A0B0C0D, 0x0D0C0B0A),
        18,
        [],
        b"S1AP-COOKIE-00112233445566778899",
    )

    rng = random.Random(5004)
    phone = Host("02:00:0a:28:01:0a", "10.40.1.10")
    media = Host("02:00:0a:28:01:14", "10.40.1.20")
    rtpa = struct.pack("!I", 0x52545041)  # service code "RTPA" (RFC 5762)

    def d(src: Host, dst: Host, sp: int, dp: int, *args: Any, **kw: Any) -> Packet:
        return src.frame(dst, Raw(_dccp(src.ip, dst.ip, sp, dp, *args, **kw)), proto=33)

    cs, ss = 0x00000A1B2C3D, 0x00007E8F9A0B  # initial sequence numbers
    pkts = [
        d(phone, media, 50010, 5004, 0, cs, extra=rtpa),  # Request
        d(media, phone, 5004, 50010, 1, ss, ack=cs, extra=rtpa),  # Response
        d(phone, media, 50010, 5004, 3, cs + 1, ack=ss),  # Ack
        d(phone, media, 50010, 5004, 2, cs + 2, payload=_rtp(1, 160, 0xC0FFEE01, rng)),  # Data
        d(
            phone, media, 50010, 5004, 4, cs + 3, ack=ss, payload=_rtp(2, 320, 0xC0FFEE01, rng)
        ),  # DataAck
        d(media, phone, 5004, 50010, 3, ss + 1, ack=cs + 3),  # Ack
        d(phone, media, 50010, 5004, 6, cs + 4, ack=ss + 1),  # Close
        d(media, phone, 5004, 50010, 7, ss + 2, ack=cs + 4, extra=b"\x01\0\0\0"),  # Reset: Closed
        # RTCP companion connection on 5005: request/response only.
        d(phone, media, 50012, 5005, 0, cs + 100, extra=rtpa),
        d(media, phone, 5005, 50012, 1, ss + 100, ack=cs + 100, extra=rtpa),
    ]
    frames += stamp(clock, pkts, 20)
    return pcap_bytes(frames)


# --------------------------------------------------------------------------- 6. damaged files


def damaged() -> bytes:
    """Ten ordinary packets, the file cut halfway through the eighth packet's data."""
    pc = Host("02:00:c0:00:02:0a", "192.0.2.10")
    dns = Host("02:00:c0:00:02:35", "192.0.2.53")
    web = Host("02:00:c0:00:02:50", "192.0.2.80")
    rng = random.Random(8)
    clock = Clock(18000)
    flow = TcpFlow(pc, 49800, web, 443, c_isn=0x11111111, s_isn=0x22222222)
    q = DNS(id=0x0808, rd=1, qd=[DNSQR(qname="www.example.net", qtype="A")])
    r = DNS(
        id=0x0808,
        qr=1,
        rd=1,
        ra=1,
        qd=[DNSQR(qname="www.example.net", qtype="A")],
        an=[DNSRR(rrname="www.example.net", type="A", ttl=600, rdata="192.0.2.80")],
    ).compress()
    pkts = [
        udp(pc, 60001, dns, 53, q),
        udp(dns, 53, pc, 60001, r),
        *flow.handshake(),
        flow.send(True, b"\x16\x03\x01\x00\xc8" + rng.randbytes(200)),
        flow.ack(False),
        flow.send(False, b"\x16\x03\x03\x04\x00" + rng.randbytes(1024)),  # the 8th: it gets cut
        flow.ack(True),
        flow.send(True, b"\x17\x03\x03\x00\x40" + rng.randbytes(64)),
    ]
    full = pcap_bytes(stamp(clock, pkts, 7))
    offset = 24
    for _ in range(7):
        (caplen,) = struct.unpack_from("<I", full, offset + 8)
        offset += 16 + caplen
    (caplen,) = struct.unpack_from("<I", full, offset + 8)
    return full[: offset + 16 + caplen // 2]


NOT_A_CAPTURE = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>404 Not Found</title></head>
<body>
<h1>Not Found</h1>
<p>The requested URL /captures/plant-floor-2023-11-14.pcap was not found on this server.</p>
<hr><address>Apache/2.4.57 (Debian) Server at files.example.com Port 443</address>
</body>
</html>
"""


#: File name -> function producing its bytes. The README describes each one.
CAPTURES: dict[str, Callable[[], bytes]] = {
    "ics-bacnet-enip.pcap": ics_bacnet_enip,
    "dns-mdns-dnssd.pcap": dns_mdns_dnssd,
    "web-tls.pcapng": web_tls,
    "tunnels-frags-icmp.pcap": tunnels_frags_icmp,
    "sctp-dccp.pcap": sctp_dccp,
    "damaged.pcap": damaged,
    "not-a-capture.pcap": lambda: NOT_A_CAPTURE,
}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, make in CAPTURES.items():
        data = make()
        (out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
