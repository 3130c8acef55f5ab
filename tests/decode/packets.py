"""Crafted packets for the decoder tests: (name, linktype, bytes), built with scapy.

They cover every link type, shim, tunnel and special case the reference decoder
knows; ``test_vs_tshark`` also feeds them (and all their truncations) to tshark.
"""

from __future__ import annotations

import struct

from scapy.all import (
    DNS,
    DNSQR,
    DNSRR,
    GRE,
    GRE_PPTP,
    ICMP,
    IP,
    LLC,
    PPP,
    SCTP,
    SNAP,
    TCP,
    UDP,
    Dot1AD,
    Dot1Q,
    Dot11,
    Dot11QoS,
    Ether,
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PPPoE,
    RadioTap,
    Raw,
)
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2
from scapy.layers.vxlan import VXLAN

A4, B4 = "192.0.2.1", "198.51.100.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
TEREDO6 = "2001:0:4136:e378:8000:63bf:3fff:fdd2"  # a Teredo client address (2001:0::/32)


def tcp4(sport: int = 40000, dport: int = 80) -> IP:
    return IP(src=A4, dst=B4) / TCP(sport=sport, dport=dport, flags="PA") / Raw(b"x" * 6)


def udp4(sport: int = 40001, dport: int = 53) -> IP:
    return IP(src=A4, dst=B4) / UDP(sport=sport, dport=dport) / Raw(b"y" * 6)


def tcp6(sport: int = 40002, dport: int = 443) -> IPv6:
    return IPv6(src=A6, dst=B6) / TCP(sport=sport, dport=dport, flags="S")


def udp6(sport: int = 40003, dport: int = 123) -> IPv6:
    return IPv6(src=A6, dst=B6) / UDP(sport=sport, dport=dport) / Raw(b"z" * 4)


def dccp4() -> bytes:
    """IPv4 + a 16-byte DCCP Request header (X=1) from 5001 to 5002."""
    dccp = struct.pack("!HHBBHBBHI", 5001, 5002, 4, 0, 0, 0x03, 0, 0, 7)
    return bytes(IP(src=A4, dst=B4, proto=33) / Raw(dccp))


def mdns() -> UDP:
    return UDP(sport=5353, dport=5353) / DNS(
        qr=1,
        qd=DNSQR(qname="_airplay._tcp.local", qtype="PTR"),
        an=DNSRR(rrname="_airplay._tcp.local", type="PTR", rdata="Kitchen._airplay._tcp.local"),
    )


def nflog(payload: bytes, family: int = 2) -> bytes:
    """An NFLOG record: header, a prefix TLV, then the NFULA_PAYLOAD TLV."""
    prefix = b"test\x00"
    tlvs = b""
    for tlv_type, value in ((10, prefix), (9, payload)):
        tlv = struct.pack("<HH", 4 + len(value), tlv_type) + value
        tlvs += tlv + b"\x00" * (-len(tlv) % 4)
    return struct.pack("!BBH", family, 0, 0) + tlvs


def ppi(dlt: int, inner: bytes) -> bytes:
    return struct.pack("<BBHI", 0, 0, 8, dlt) + inner


def pktap(dlt: int, inner: bytes) -> bytes:
    """A minimal 108-byte PKTAP header (length, DLT, then zeros)."""
    header = struct.pack("<III", 108, 1, dlt) + b"\x00" * 96
    return header + inner


def wifi_data(body: bytes, *, qos: bool = False, four: bool = False) -> bytes:
    fcfield = 0x03 if four else 0x01
    hdr = Dot11(type=2, subtype=8 if qos else 0, FCfield=fcfield, addr1="00:11:22:33:44:55")
    if four:
        hdr.addr4 = "66:77:88:99:aa:bb"
    frame = hdr / Dot11QoS() if qos else hdr
    return bytes(frame / LLC() / SNAP(code=0x0800)) + body


def cases() -> list[tuple[str, int, bytes]]:
    """Every crafted packet as (name, linktype, frame bytes)."""
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    eth4 = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x0800))
    out: list[tuple[str, int, bytes]] = [
        ("eth-tcp4", 1, bytes(eth / tcp4())),
        ("eth-udp6", 1, bytes(eth / udp6())),
        ("eth-arp", 1, bytes(eth / ARP())),
        (
            "eth-ip4-options",
            1,
            bytes(eth / IP(src=A4, dst=B4, options=b"\x94\x04\x00\x00") / UDP(sport=1, dport=2)),
        ),
        ("eth-sctp", 1, bytes(eth / IP(src=A4, dst=B4) / SCTP(sport=2905, dport=2906))),
        ("eth-dccp", 1, eth4 + dccp4()),
        ("eth-icmp-echo", 1, bytes(eth / IP(src=A4, dst=B4) / ICMP())),
        (
            "eth-icmp-unreach-tcp",
            1,
            bytes(eth / IP(src=B4, dst=A4) / ICMP(type=3, code=3) / Raw(bytes(tcp4())[:28])),
        ),
        ("eth-icmp-ttl-udp", 1, bytes(eth / IP(src=B4, dst=A4) / ICMP(type=11) / udp4())),
        (
            "eth-icmp6-unreach-ext-udp",
            1,
            bytes(
                eth
                / IPv6(src=B6, dst=A6)
                / ICMPv6DestUnreach()
                / IPv6(src=A6, dst=B6)
                / IPv6ExtHdrDestOpt()
                / UDP(sport=5000, dport=53)
            ),
        ),
        ("eth-icmp6-echo", 1, bytes(eth / IPv6(src=A6, dst=B6) / ICMPv6EchoRequest())),
        (
            "eth-ip6-ext-chain",
            1,
            bytes(
                eth
                / IPv6(src=A6, dst=B6)
                / IPv6ExtHdrHopByHop()
                / IPv6ExtHdrRouting()
                / IPv6ExtHdrDestOpt()
                / TCP(sport=1, dport=2)
            ),
        ),
        (
            "eth-ip6-ah",
            1,
            bytes(
                eth
                / IPv6(src=A6, dst=B6)
                / AH(nh=17, payloadlen=4, icv=b"\x00" * 12)
                / UDP(sport=7, dport=8)
            ),
        ),
        (
            "eth-ip6-frag-first",
            1,
            bytes(
                eth
                / IPv6(src=A6, dst=B6)
                / IPv6ExtHdrFragment(id=9, m=1, nh=17)
                / UDP(sport=9, dport=10, len=200)
                / Raw(b"a" * 16)
            ),
        ),
        (
            "eth-ip6-frag-later",
            1,
            bytes(
                eth
                / IPv6(src=A6, dst=B6)
                / IPv6ExtHdrFragment(id=9, offset=3, m=0, nh=17)
                / Raw(b"b" * 16)
            ),
        ),
        (
            "eth-ip6-frag-atomic",
            1,
            bytes(
                eth
                / IPv6(src=A6, dst=B6)
                / IPv6ExtHdrFragment(id=9, nh=6)
                / TCP(sport=11, dport=12)
            ),
        ),
        (
            "eth-ip4-frag-first",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4, id=77, flags="MF", proto=17)
                / UDP(sport=2049, dport=800, len=300)
                / Raw(b"c" * 16)
            ),
        ),
        (
            "eth-ip4-frag-later",
            1,
            bytes(eth / IP(src=A4, dst=B4, id=77, frag=3, proto=17) / Raw(b"d" * 16)),
        ),
        ("eth-ip4-tso-zero-length", 1, eth4 + bytes(tcp4())[:2] + b"\x00\x00" + bytes(tcp4())[4:]),
        ("eth-qinq", 1, bytes(eth / Dot1AD(vlan=100) / Dot1Q(vlan=200) / tcp4())),
        ("eth-9100", 1, bytes(Ether(type=0x9100) / Dot1Q(vlan=300) / udp4())),
        ("eth-vlan3", 1, bytes(eth / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / tcp6())),
        (
            "eth-mpls-ip4",
            1,
            bytes(Ether(type=0x8847) / MPLS(label=16, s=0) / MPLS(label=17, s=1) / udp4()),
        ),
        ("eth-mpls-ip6", 1, bytes(Ether(type=0x8847) / MPLS(label=16, s=1) / tcp6())),
        (
            "eth-mpls-pw-eth",
            1,
            bytes(Ether(type=0x8847) / MPLS(label=20, s=1)) + b"\x00" * 4 + bytes(eth / tcp4()),
        ),
        ("eth-type-ip4-carrying-ip6", 1, eth4 + bytes(tcp6())),
        ("ipv4-linktype-carrying-ip6", 228, bytes(udp6())),
        (
            "eth-ip4-ah-tcp",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / AH(nh=6, payloadlen=4, icv=b"\x00" * 12)
                / TCP(sport=36, dport=37)
            ),
        ),
        (
            "eth-ip4-esp",
            1,
            bytes(eth / IP(src=A4, dst=B4, proto=50) / Raw(b"\x00\x00\x01\x00" + b"\x00" * 20)),
        ),
        (
            "eth-vxlan-src-port-vlan",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=4789, dport=40000)
                / VXLAN()
                / eth
                / Dot1Q(vlan=7)
                / tcp4(38, 39)
            ),
        ),
        (
            "eth-geneve-ip6",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=52000, dport=6081)
                / GENEVE(proto=0x86DD)
                / udp6(40, 41)
            ),
        ),
        (
            "eth-icmp-quote-ip4-options",
            1,
            bytes(
                eth
                / IP(src=B4, dst=A4)
                / ICMP(type=3)
                / IP(src=A4, dst=B4, options=b"\x94\x04\x00\x00")
                / UDP(sport=42, dport=43)
            ),
        ),
        ("eth-vlan-mpls", 1, bytes(eth / Dot1Q(vlan=5, type=0x8847) / MPLS(label=3, s=1) / tcp4())),
        ("eth-pppoe-ip4", 1, bytes(eth / PPPoE(sessionid=1) / PPP(proto=0x0021) / udp4())),
        ("eth-pppoe-ip6", 1, bytes(eth / PPPoE(sessionid=1) / PPP(proto=0x0057) / tcp6())),
        (
            "eth-llc-snap-ip4",
            1,
            bytes(Ether(dst="02:00:00:00:00:02") / LLC() / SNAP(code=0x0800) / tcp4()),
        ),
        (
            "eth-8023-snap-ip6",
            1,
            b"\x02" * 12
            + struct.pack("!H", 68)
            + b"\xaa\xaa\x03\x00\x00\x00\x86\xdd"
            + bytes(tcp6()),
        ),
        (
            "eth-vxlan-tcp",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=51000, dport=4789)
                / VXLAN(vni=42)
                / eth
                / tcp4(1111, 22)
            ),
        ),
        (
            "eth-vxlan-arp",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=51000, dport=4789)
                / VXLAN(vni=42)
                / eth
                / ARP()
            ),
        ),
        (
            "eth-geneve-eth",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=52000, dport=6081)
                / GENEVE(proto=0x6558, optionlen=2, options=b"\x01\x02\x03\x04\x05\x06\x07\x08")
                / eth
                / udp6(1, 2)
            ),
        ),
        (
            "eth-geneve-ip4",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=52000, dport=6081)
                / GENEVE(proto=0x0800)
                / tcp4(3, 4)
            ),
        ),
        (
            "eth-teredo",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=3544, dport=40000)
                / Raw(b"\x00\x00" + b"\x9c\x40" + b"\x01\x02\x03\x04")
                / tcp6(5, 6)
            ),
        ),
        (
            "eth-teredo-other-ports",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=33000, dport=40000)
                / IPv6(src=A6, dst=TEREDO6, nh=59)
            ),
        ),
        ("eth-gre-ip4", 1, bytes(eth / IP(src=A4, dst=B4) / GRE(proto=0x0800) / udp4(7, 8))),
        (
            "eth-gre-key-seq-csum-ip6",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / GRE(
                    chksum_present=1,
                    key_present=1,
                    seqnum_present=1,
                    key=5,
                    sequence_number=9,
                    proto=0x86DD,
                )
                / tcp6(9, 10)
            ),
        ),
        (
            "eth-gre-eth",
            1,
            bytes(eth / IP(src=A4, dst=B4) / GRE(proto=0x6558) / eth / tcp4(11, 12)),
        ),
        (
            "eth-gre-ip6-outer",
            1,
            bytes(eth / IPv6(src=A6, dst=B6) / GRE(proto=0x0800) / tcp4(13, 14)),
        ),
        (
            "eth-pptp-gre-ppp-ip4",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / GRE_PPTP(seqnum_present=1, sequence_number=1, call_id=7)
                / PPP(proto=0x0021)
                / udp4(15, 16)
            ),
        ),
        (
            "eth-erspan2",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / GRE(seqnum_present=1, proto=0x88BE)
                / ERSPAN_II(session_id=1)
                / eth
                / tcp4(17, 18)
            ),
        ),
        (
            "eth-erspan3",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / GRE(seqnum_present=1, proto=0x22EB)
                / ERSPAN_III(session_id=1)
                / eth
                / udp4(19, 20)
            ),
        ),
        (
            "eth-ipip",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / IP(src="10.0.0.1", dst="10.0.0.2")
                / TCP(sport=21, dport=22)
            ),
        ),
        ("eth-6in4", 1, bytes(eth / IP(src=A4, dst=B4) / udp6(23, 24))),
        ("eth-4in6", 1, bytes(eth / IPv6(src=A6, dst=B6) / udp4(25, 26))),
        (
            "eth-6in6",
            1,
            bytes(
                eth
                / IPv6(src=A6, dst=B6)
                / IPv6(src="fd00::1", dst="fd00::2")
                / TCP(sport=27, dport=28)
            ),
        ),
        (
            "eth-gre-in-vxlan",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / UDP(sport=53000, dport=4789)
                / VXLAN()
                / eth
                / IP(src="10.0.0.1", dst="10.0.0.2")
                / GRE(proto=0x0800)
                / tcp4(29, 30)
            ),
        ),
        (
            "eth-vxlan-in-gre",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / GRE(proto=0x0800)
                / IP(src="10.0.0.1", dst="10.0.0.2")
                / UDP(sport=31, dport=4789)
                / VXLAN()
                / eth
                / udp4(32, 33)
            ),
        ),
        (
            "eth-icmp-in-ipip",
            1,
            bytes(
                eth
                / IP(src=A4, dst=B4)
                / IP(src="10.0.0.1", dst="10.0.0.2")
                / ICMP(type=3, code=3)
                / udp4(34, 35)
            ),
        ),
        ("eth-mdns", 1, bytes(eth / IP(src=A4, dst="224.0.0.251") / mdns())),
        ("eth-ip6-mdns", 1, bytes(eth / IPv6(src="fe80::1", dst="ff02::fb") / mdns())),
        ("sll-tcp4", 113, bytes(CookedLinux(proto=0x0800) / tcp4())),
        ("sll-vlan-udp6", 113, bytes(CookedLinux(proto=0x8100) / Dot1Q(vlan=9) / udp6())),
        ("sll2-tcp6", 276, bytes(CookedLinuxV2(proto=0x86DD) / tcp6())),
        ("sll2-arp", 276, bytes(CookedLinuxV2(proto=0x0806) / ARP())),
        ("null-le-ip4", 0, struct.pack("<I", 2) + bytes(udp4())),
        ("null-be-ip4", 0, struct.pack(">I", 2) + bytes(tcp4())),
        ("null-le-ip6-24", 0, struct.pack("<I", 24) + bytes(tcp6())),
        ("null-le-ip6-30", 0, struct.pack("<I", 30) + bytes(udp6())),
        ("null-be-ip6-28", 0, struct.pack(">I", 28) + bytes(udp6())),
        ("null-linux-ethertype", 0, b"\x00\x00\x08\x00" + bytes(udp4())),
        ("loop-ip4", 108, struct.pack(">I", 2) + bytes(udp4())),
        ("loop-ip6", 108, struct.pack(">I", 30) + bytes(tcp6())),
        ("raw-ip4", 101, bytes(tcp4())),
        ("raw-ip6", 101, bytes(udp6())),
        ("raw12-ip4", 12, bytes(udp4())),
        ("raw14-ip6", 14, bytes(tcp6())),
        ("ipv4-linktype", 228, bytes(udp4())),
        ("ipv6-linktype", 229, bytes(tcp6())),
        ("nflog-ip4", 239, nflog(bytes(udp4()))),
        ("nflog-ip6", 239, nflog(bytes(tcp6()), family=10)),
        ("wifi-data", 105, wifi_data(bytes(udp4()))),
        ("wifi-qos", 105, wifi_data(bytes(tcp4()), qos=True)),
        ("wifi-4addr-qos", 105, wifi_data(bytes(udp4()), qos=True, four=True)),
        ("wifi-beacon", 105, bytes(Dot11(type=0, subtype=8))),
        ("wifi-protected", 105, bytes(Dot11(type=2, subtype=0, FCfield=0x41)) + b"\x00" * 40),
        (
            "radiotap-wifi",
            127,
            bytes(RadioTap(present="Flags+Rate", Flags=0, Rate=2)) + wifi_data(bytes(tcp4())),
        ),
        (
            "radiotap-tsft-wifi",
            127,
            bytes(RadioTap(present="TSFT+Flags", mac_timestamp=1, Flags=0))
            + wifi_data(bytes(udp4()), qos=True),
        ),
        ("ppi-wifi", 192, ppi(105, wifi_data(bytes(udp4())))),
        ("ppi-eth", 192, ppi(1, bytes(eth / tcp4()))),
        ("pktap-eth", 258, pktap(1, bytes(eth / udp4()))),
        ("ppp-ip4", 9, b"\xff\x03\x00\x21" + bytes(udp4())),
        ("ppp-ip6-nocompress", 9, b"\x00\x57" + bytes(tcp6())),
        ("ppp-hdlc-ip4", 50, b"\xff\x03\x00\x21" + bytes(tcp4())),
        ("pppoe-linktype", 51, bytes(PPPoE(sessionid=3) / PPP(proto=0x0021) / udp4())),
        ("chdlc-ip4", 104, b"\x0f\x00\x08\x00" + bytes(tcp4())),
        ("chdlc-ip6", 104, b"\x0f\x00\x86\xdd" + bytes(udp6())),
    ]
    return out
