"""The reference per-packet decoder (portsniff.decode.reference), rule by rule."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import GRE, ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt, Raw
from scapy.layers.vxlan import VXLAN

from portsniff.decode.link import SUPPORTED_LINKTYPES
from portsniff.decode.packet import PROTOS, Decoded, Endpoints, Fragment
from portsniff.decode.reference import INTERNAL_ERROR, MAX_TUNNEL_DEPTH, decode_packet
from tests.decode.packets import A4, A6, B4, B6, cases

CASES = {name: (linktype, data) for name, linktype, data in cases()}
V4, V6 = (A4, B4), (A6, B6)

#: name -> (addresses, proto, ip_proto, src_port, dst_port) of every crafted packet.
EXPECTED: dict[str, tuple[tuple[str, str] | None, str, int | None, int | None, int | None]] = {
    "eth-tcp4": (V4, "tcp", 6, 40000, 80),
    "eth-udp6": (V6, "udp", 17, 40003, 123),
    "eth-arp": (None, "arp", None, None, None),
    "eth-ip4-options": (V4, "udp", 17, 1, 2),
    "eth-sctp": (V4, "sctp", 132, 2905, 2906),
    "eth-dccp": (V4, "dccp", 33, 5001, 5002),
    "eth-icmp-echo": (V4, "icmp", 1, None, None),
    "eth-icmp-unreach-tcp": ((B4, A4), "icmp", 1, None, None),
    "eth-icmp-ttl-udp": ((B4, A4), "icmp", 1, None, None),
    "eth-icmp6-unreach-ext-udp": ((B6, A6), "icmpv6", 58, None, None),
    "eth-icmp6-echo": (V6, "icmpv6", 58, None, None),
    "eth-ip6-ext-chain": (V6, "tcp", 6, 1, 2),
    "eth-ip6-ah": (V6, "udp", 17, 7, 8),
    "eth-ip6-frag-first": (V6, "udp", 17, 9, 10),
    "eth-ip6-frag-later": (V6, "udp", 17, None, None),
    "eth-ip6-frag-atomic": (V6, "tcp", 6, 11, 12),
    "eth-ip4-frag-first": (V4, "udp", 17, 2049, 800),
    "eth-ip4-frag-later": (V4, "udp", 17, None, None),
    "eth-ip4-tso-zero-length": (V4, "tcp", 6, 40000, 80),
    "eth-qinq": (V4, "tcp", 6, 40000, 80),
    "eth-9100": (V4, "udp", 17, 40001, 53),
    "eth-vlan3": (V6, "tcp", 6, 40002, 443),
    "eth-mpls-ip4": (V4, "udp", 17, 40001, 53),
    "eth-mpls-ip6": (V6, "tcp", 6, 40002, 443),
    "eth-vlan-mpls": (V4, "tcp", 6, 40000, 80),
    "eth-ip4-ah-tcp": (V4, "tcp", 6, 36, 37),
    "eth-ip4-esp": (V4, "other", 50, None, None),
    "eth-vxlan-src-port-vlan": (V4, "udp", 17, 4789, 40000),
    "eth-geneve-ip6": (V4, "udp", 17, 52000, 6081),
    "eth-icmp-quote-ip4-options": ((B4, A4), "icmp", 1, None, None),
    "eth-mpls-pw-eth": (None, "other", None, None, None),
    "eth-type-ip4-carrying-ip6": (V6, "tcp", 6, 40002, 443),
    "ipv4-linktype-carrying-ip6": (V6, "udp", 17, 40003, 123),
    "eth-pppoe-ip4": (V4, "udp", 17, 40001, 53),
    "eth-pppoe-ip6": (V6, "tcp", 6, 40002, 443),
    "eth-llc-snap-ip4": (V4, "tcp", 6, 40000, 80),
    "eth-8023-snap-ip6": (V6, "tcp", 6, 40002, 443),
    "eth-vxlan-tcp": (V4, "udp", 17, 51000, 4789),
    "eth-vxlan-arp": (V4, "udp", 17, 51000, 4789),
    "eth-geneve-eth": (V4, "udp", 17, 52000, 6081),
    "eth-geneve-ip4": (V4, "udp", 17, 52000, 6081),
    "eth-teredo": (V4, "udp", 17, 3544, 40000),
    "eth-teredo-other-ports": (V4, "udp", 17, 33000, 40000),
    "eth-gre-ip4": (V4, "udp", 17, 7, 8),
    "eth-gre-key-seq-csum-ip6": (V4, "tcp", 6, 9, 10),
    "eth-gre-eth": (V4, "tcp", 6, 11, 12),
    "eth-gre-ip6-outer": (V6, "tcp", 6, 13, 14),
    "eth-pptp-gre-ppp-ip4": (V4, "udp", 17, 15, 16),
    "eth-erspan2": (V4, "tcp", 6, 17, 18),
    "eth-erspan3": (V4, "udp", 17, 19, 20),
    "eth-ipip": (V4, "tcp", 6, 21, 22),
    "eth-6in4": (V4, "udp", 17, 23, 24),
    "eth-4in6": (V6, "udp", 17, 25, 26),
    "eth-6in6": (V6, "tcp", 6, 27, 28),
    "eth-gre-in-vxlan": (V4, "udp", 17, 53000, 4789),
    "eth-vxlan-in-gre": (V4, "udp", 17, 31, 4789),
    "eth-icmp-in-ipip": (V4, "icmp", 1, None, None),
    "eth-mdns": ((A4, "224.0.0.251"), "udp", 17, 5353, 5353),
    "eth-ip6-mdns": (("fe80::1", "ff02::fb"), "udp", 17, 5353, 5353),
    "sll-tcp4": (V4, "tcp", 6, 40000, 80),
    "sll-vlan-udp6": (V6, "udp", 17, 40003, 123),
    "sll2-tcp6": (V6, "tcp", 6, 40002, 443),
    "sll2-arp": (None, "arp", None, None, None),
    "null-le-ip4": (V4, "udp", 17, 40001, 53),
    "null-be-ip4": (V4, "tcp", 6, 40000, 80),
    "null-le-ip6-24": (V6, "tcp", 6, 40002, 443),
    "null-le-ip6-30": (V6, "udp", 17, 40003, 123),
    "null-be-ip6-28": (V6, "udp", 17, 40003, 123),
    "null-linux-ethertype": (V4, "udp", 17, 40001, 53),
    "loop-ip4": (V4, "udp", 17, 40001, 53),
    "loop-ip6": (V6, "tcp", 6, 40002, 443),
    "raw-ip4": (V4, "tcp", 6, 40000, 80),
    "raw-ip6": (V6, "udp", 17, 40003, 123),
    "raw12-ip4": (V4, "udp", 17, 40001, 53),
    "raw14-ip6": (V6, "tcp", 6, 40002, 443),
    "ipv4-linktype": (V4, "udp", 17, 40001, 53),
    "ipv6-linktype": (V6, "tcp", 6, 40002, 443),
    "nflog-ip4": (V4, "udp", 17, 40001, 53),
    "nflog-ip6": (V6, "tcp", 6, 40002, 443),
    "wifi-data": (V4, "udp", 17, 40001, 53),
    "wifi-qos": (V4, "tcp", 6, 40000, 80),
    "wifi-4addr-qos": (V4, "udp", 17, 40001, 53),
    "wifi-beacon": (None, "other", None, None, None),
    "wifi-protected": (None, "other", None, None, None),
    "radiotap-wifi": (V4, "tcp", 6, 40000, 80),
    "radiotap-tsft-wifi": (V4, "udp", 17, 40001, 53),
    "ppi-wifi": (V4, "udp", 17, 40001, 53),
    "ppi-eth": (V4, "tcp", 6, 40000, 80),
    "pktap-eth": (V4, "udp", 17, 40001, 53),
    "ppp-ip4": (V4, "udp", 17, 40001, 53),
    "ppp-ip6-nocompress": (V6, "tcp", 6, 40002, 443),
    "ppp-hdlc-ip4": (V4, "tcp", 6, 40000, 80),
    "pppoe-linktype": (V4, "udp", 17, 40001, 53),
    "chdlc-ip4": (V4, "tcp", 6, 40000, 80),
    "chdlc-ip6": (V6, "udp", 17, 40003, 123),
}


def test_every_crafted_case_has_an_expectation() -> None:
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crafted_packet(name: str) -> None:
    linktype, data = CASES[name]
    addresses, proto, ip_proto, src_port, dst_port = EXPECTED[name]
    d = decode_packet(linktype, data, len(data))
    assert d.linktype == linktype
    assert (d.src_ip, d.dst_ip) == (addresses or (None, None))
    assert (d.proto, d.ip_proto, d.src_port, d.dst_port) == (proto, ip_proto, src_port, dst_port)
    assert d.problem is None


def decode(name: str) -> Decoded:
    linktype, data = CASES[name]
    return decode_packet(linktype, data)


def test_tcp_flags_only_for_tcp() -> None:
    assert decode("eth-tcp4").tcp_flags == 0x18  # PSH+ACK
    assert decode("eth-udp6").tcp_flags is None
    assert decode("eth-gre-eth").tcp_flags == 0x18  # from the header the ports come from


def test_vlan_ids_outermost_first() -> None:
    assert decode("eth-qinq").vlan == (100, 200)
    assert decode("eth-9100").vlan == (300,)
    assert decode("eth-vlan3").vlan == (1, 2, 3)
    assert decode("eth-vlan-mpls").vlan == (5,)
    assert decode("sll-vlan-udp6").vlan == (9,)
    assert decode("eth-tcp4").vlan == ()


def test_fragments() -> None:
    first4 = decode("eth-ip4-frag-first").fragment
    later4 = decode("eth-ip4-frag-later").fragment
    assert first4 == Fragment((A4, B4, 77, 17), 0, True)
    assert later4 == Fragment((A4, B4, 77, 17), 24, False)
    assert decode("eth-ip6-frag-first").fragment == Fragment((A6, B6, 9, 17), 0, True)
    assert decode("eth-ip6-frag-later").fragment == Fragment((A6, B6, 9, 17), 24, False)
    assert decode("eth-ip6-frag-atomic").fragment is None
    assert decode("eth-tcp4").fragment is None


def test_ipv6_fragment_key_uses_the_fragment_headers_next_header() -> None:
    pkt = (
        IPv6(src=A6, dst=B6, nh=44)
        / fragment_header(nh=60, m=1)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=1, dport=2)
    )
    d = decode_packet(101, bytes(pkt))
    assert d.ip_proto == 17 and (d.src_port, d.dst_port) == (1, 2)
    assert d.fragment is not None and d.fragment.key[3] == 60


def fragment_header(nh: int, m: int) -> Raw:
    """An IPv6 fragment header (offset 0) as raw bytes."""
    return Raw(struct.pack("!BBHI", nh, 0, m, 1234))


def test_icmp_errors_quote_endpoints() -> None:
    assert decode("eth-icmp-unreach-tcp").quoted == Endpoints("tcp", A4, B4, 40000, 80)
    assert decode("eth-icmp-ttl-udp").quoted == Endpoints("udp", A4, B4, 40001, 53)
    assert decode("eth-icmp6-unreach-ext-udp").quoted == Endpoints("udp", A6, B6, 5000, 53)
    assert decode("eth-icmp-quote-ip4-options").quoted == Endpoints("udp", A4, B4, 42, 43)
    assert decode("eth-icmp-echo").quoted is None
    assert decode("eth-icmp6-echo").quoted is None


def test_icmp_quote_of_a_non_first_fragment_or_short_quote_has_no_ports() -> None:
    frag = IP(src=A4, dst=B4, frag=10, proto=17) / Raw(b"\x00" * 8)
    d = decode_packet(101, bytes(IP(src=B4, dst=A4) / ICMP(type=3) / frag))
    assert d.quoted == Endpoints("udp", A4, B4, None, None)
    short = bytes(IP(src=B4, dst=A4) / ICMP(type=3) / IP(src=A4, dst=B4, proto=6)) + b"\x01"
    assert decode_packet(101, short).quoted == Endpoints("tcp", A4, B4, None, None)
    cut = bytes(IP(src=B4, dst=A4) / ICMP(type=11) / Raw(b"\x45" + b"\x00" * 10))
    d = decode_packet(101, cut)
    assert (d.proto, d.quoted, d.problem) == ("icmp", None, None)


def tunnels(d: Decoded) -> list[tuple[str | None, str, str | None, int | None, int | None]]:
    return [(e.tunnel, e.proto, e.src_ip, e.src_port, e.dst_port) for e in d.inner]


def test_udp_tunnels_keep_outer_ports_and_list_the_inner() -> None:
    assert tunnels(decode("eth-vxlan-tcp")) == [("vxlan", "tcp", A4, 1111, 22)]
    assert tunnels(decode("eth-vxlan-arp")) == [("vxlan", "other", None, None, None)]
    assert tunnels(decode("eth-geneve-eth")) == [("geneve", "udp", A6, 1, 2)]
    assert tunnels(decode("eth-geneve-ip4")) == [("geneve", "tcp", A4, 3, 4)]
    assert tunnels(decode("eth-geneve-ip6")) == [("geneve", "udp", A6, 40, 41)]
    assert tunnels(decode("eth-vxlan-src-port-vlan")) == [("vxlan", "tcp", A4, 38, 39)]
    assert tunnels(decode("eth-teredo")) == [("teredo", "tcp", A6, 5, 6)]
    assert tunnels(decode("eth-teredo-other-ports")) == [("teredo", "other", A6, None, None)]
    # Off port 3544, an IPv6-shaped payload without a Teredo address is plain UDP (a DNS
    # query whose ID starts with 0x6 can look like one).
    lookalike = (
        Ether() / IP(src=A4, dst=B4) / UDP(sport=33000, dport=53) / IPv6(src=A6, dst=B6, nh=59)
    )
    assert decode_packet(1, bytes(lookalike)).inner == ()


def test_portless_tunnels_take_the_inner_transport() -> None:
    assert tunnels(decode("eth-gre-ip4")) == [("gre", "udp", A4, 7, 8)]
    assert tunnels(decode("eth-gre-key-seq-csum-ip6")) == [("gre", "tcp", A6, 9, 10)]
    assert tunnels(decode("eth-gre-eth")) == [("gre", "tcp", A4, 11, 12)]
    assert tunnels(decode("eth-pptp-gre-ppp-ip4")) == [("gre", "udp", A4, 15, 16)]
    assert tunnels(decode("eth-erspan2")) == [("erspan", "tcp", A4, 17, 18)]
    assert tunnels(decode("eth-erspan3")) == [("erspan", "udp", A4, 19, 20)]
    assert tunnels(decode("eth-ipip")) == [("ipip", "tcp", "10.0.0.1", 21, 22)]
    assert tunnels(decode("eth-6in4")) == [("6in4", "udp", A6, 23, 24)]
    assert tunnels(decode("eth-4in6")) == [("4in6", "udp", A4, 25, 26)]
    assert tunnels(decode("eth-6in6")) == [("6in6", "tcp", "fd00::1", 27, 28)]


def test_nested_tunnels_outermost_first() -> None:
    assert tunnels(decode("eth-gre-in-vxlan")) == [
        ("vxlan", "tcp", "10.0.0.1", 29, 30),
        ("gre", "tcp", A4, 29, 30),
    ]
    assert tunnels(decode("eth-vxlan-in-gre")) == [
        ("gre", "udp", "10.0.0.1", 31, 4789),
        ("vxlan", "udp", A4, 32, 33),
    ]


def test_icmp_error_inside_a_portless_tunnel() -> None:
    d = decode("eth-icmp-in-ipip")
    assert d.quoted == Endpoints("udp", A4, B4, 34, 35)


def test_gre_with_an_undecodable_payload_stays_other() -> None:
    pkt = IP(src=A4, dst=B4) / GRE(proto=0x1234) / Raw(b"\x00" * 20)
    d = decode_packet(101, bytes(pkt))
    assert (d.proto, d.ip_proto, d.src_port) == ("other", 47, None)
    assert tunnels(d) == [("gre", "other", None, None, None)]
    bad_version = bytes(IP(src=A4, dst=B4, proto=47)) + b"\x00\x05\x08\x00" + bytes(IP() / UDP())
    d = decode_packet(101, bad_version)
    assert (d.proto, d.ip_proto, d.inner) == ("other", 47, ())


def test_udp_tunnel_ports_without_a_tunnel_payload_are_plain_udp() -> None:
    for port in (4789, 6081, 3544):
        d = decode_packet(
            101, bytes(IP(src=A4, dst=B4) / UDP(sport=port, dport=9) / Raw(b"\x00" * 30))
        )
        assert (d.proto, d.src_port, d.inner, d.problem) == ("udp", port, (), None)


def test_tunnel_nesting_is_capped() -> None:
    pkt = IP(src="10.0.0.99", dst="10.0.0.98") / UDP(sport=1, dport=2)
    for i in range(MAX_TUNNEL_DEPTH + 2):
        pkt = IP(src=f"10.0.0.{i}", dst=B4) / pkt
    d = decode_packet(101, bytes(pkt))
    assert len(d.inner) == MAX_TUNNEL_DEPTH
    assert all(e.tunnel == "ipip" for e in d.inner)
    assert (
        d.problem == "ipip: " * MAX_TUNNEL_DEPTH + f"tunnels nested deeper than {MAX_TUNNEL_DEPTH}"
    )


def test_inner_problems_are_prefixed_with_the_tunnel() -> None:
    inner = bytes(Ether(type=0x0800)) + b"\x45\x00"
    pkt = Ether() / IP(src=A4, dst=B4) / UDP(sport=1, dport=4789) / VXLAN() / Raw(inner)
    d = decode_packet(1, bytes(pkt))
    assert d.proto == "udp" and d.problem == "vxlan: truncated IPv4 header"
    assert tunnels(d) == [("vxlan", "other", None, None, None)]


def test_dnssd_from_the_reported_transport() -> None:
    d = decode("eth-mdns")
    assert d.dnssd == ("_airplay._tcp",)
    assert d.dnssd_instances == ("Kitchen._airplay._tcp.local",)
    assert decode("eth-ip6-mdns").dnssd == ("_airplay._tcp",)


def test_dns_over_tcp() -> None:
    from scapy.all import DNS, DNSQR

    msg = bytes(DNS(qd=DNSQR(qname="_ssh._tcp.local", qtype="PTR")))
    seg = TCP(sport=40000, dport=53, flags="PA") / Raw(struct.pack("!H", len(msg)) + msg)
    d = decode_packet(101, bytes(IP(src=A4, dst=B4) / seg))
    assert d.dnssd == ("_ssh._tcp",)


def test_long_ipv6_extension_chains_are_followed() -> None:
    pkt = IPv6(src=A6, dst=B6)
    chain = pkt
    for _ in range(40):
        chain = chain / IPv6ExtHdrDestOpt()
    d = decode_packet(229, bytes(chain / UDP(sport=12345, dport=54321)))
    assert (d.proto, d.src_port, d.dst_port, d.problem) == ("udp", 12345, 54321, None)


def test_problems() -> None:
    assert decode_packet(1, b"\x00" * 13).problem == "truncated Ethernet header"
    ip = bytes(IP(src=A4, dst=B4) / TCP())
    assert decode_packet(101, ip[:19]).problem == "truncated IPv4 header"
    assert decode_packet(101, b"\x44" + ip[1:]).problem == "bad IPv4 header length"
    assert decode_packet(101, b"\x55" + ip[1:]).problem == "bad IP version 5"
    assert decode_packet(229, ip).problem == "bad IPv6 version 4"
    bad_total = ip[:2] + b"\x00\x10" + ip[4:]
    d = decode_packet(101, bad_total)
    assert (d.src_ip, d.proto, d.src_port, d.problem) == (A4, "tcp", None, "bad IPv4 total length")
    d = decode_packet(101, ip[:30])
    assert (d.proto, d.src_port, d.tcp_flags, d.problem) == (
        "tcp",
        20,
        None,
        "truncated TCP header",
    )
    d = decode_packet(101, ip[:34])
    assert (d.src_port, d.tcp_flags, d.problem) == (20, 2, "truncated TCP header")
    sctp = bytes(IP(src=A4, dst=B4, proto=132)) + b"\x00\x07\x00\x07\x00\x00"
    assert decode_packet(101, sctp).src_port is None  # SCTP ports need the 12-byte header


def test_snaplen_suffix_only_when_the_frame_was_cut() -> None:
    data = bytes(Ether() / IP(src=A4, dst=B4) / TCP())[:40]
    assert decode_packet(1, data, 54).problem == "truncated TCP header (snaplen)"
    assert decode_packet(1, data, 40).problem == "truncated TCP header"
    assert decode_packet(1, data).problem == "truncated TCP header"


def test_unsupported_and_non_ip_link_layers() -> None:
    d = decode_packet(271, b"\x00" * 40)
    assert (d.proto, d.src_ip, d.problem) == ("other", None, "unsupported link type 271")
    goose = bytes(Ether(type=0x88B8) / Raw(b"\x00" * 30))
    assert decode_packet(1, goose) == Decoded(linktype=1)
    assert decode_packet(0, struct.pack("<I", 7) + b"\x00" * 30) == Decoded(linktype=0)


def test_short_802_11_control_frames_are_not_truncated() -> None:
    ack = b"\xd4\x00\x00\x00" + b"\x02" * 6  # 10-byte ACK
    assert decode_packet(105, ack) == Decoded(linktype=105)
    assert decode_packet(105, b"\x08\x01" + b"\x00" * 10).problem == "truncated 802.11 header"


def test_nflog_big_endian_tlvs() -> None:
    ip = bytes(IP(src=A4, dst=B4) / UDP(sport=5, dport=6))
    data = struct.pack("!BBH", 2, 0, 0) + struct.pack(">HH", 4 + len(ip), 9) + ip
    assert decode_packet(239, data).src_port == 5


def test_radiotap_data_pad_aligns_the_802_11_body() -> None:
    from tests.decode.packets import wifi_data

    body = wifi_data(bytes(IP(src=A4, dst=B4) / UDP(sport=5, dport=6)), qos=True)
    padded = body[:26] + b"\x00\x00" + body[26:]  # QoS header is 26 bytes: pad to 28
    radiotap = struct.pack("<BBHIB", 0, 0, 9, 0x2, 0x20)
    assert decode_packet(127, radiotap + padded).src_port == 5


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_truncation_is_safe(name: str) -> None:
    linktype, data = CASES[name]
    for n in range(len(data)):
        d = decode_packet(linktype, data[:n], len(data))
        assert isinstance(d, Decoded) and d.proto in PROTOS
        assert d.problem is None or not d.problem.startswith(INTERNAL_ERROR)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SUPPORTED_LINKTYPES | {147, 271})), st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(linktype: int, data: bytes) -> None:
    d = decode_packet(linktype, data, len(data) + 10)
    assert d.proto in PROTOS and d.linktype == linktype
    assert d.problem is None or not d.problem.startswith(INTERNAL_ERROR)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.data())
def test_mutated_crafted_packets_never_raise(name: str, data: st.DataObject) -> None:
    linktype, raw = CASES[name]
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    d = decode_packet(linktype, bytes(mutated))
    assert d.proto in PROTOS
    assert d.problem is None or not d.problem.startswith(INTERNAL_ERROR)
    assert len(d.inner) <= MAX_TUNNEL_DEPTH
