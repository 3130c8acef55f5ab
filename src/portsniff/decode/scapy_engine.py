"""The ``scapy`` engine: every header field read by scapy's own dissectors.

Each header is dissected by the scapy layer class for it (``Ether``, ``Dot1Q``, ``LLC``,
``SNAP``, ``MPLS``, ``CookedLinux``, ``RadioTap``, ``Dot11``, ``PPI``, ``IP``,
``IPv6`` and its extension headers, ``TCP``, ``UDP``, ``SCTP``, ``ICMP``, ``GRE``,
``VXLAN``, ``GENEVE``, ``DNS``...); the engine then applies the project's decoding rules
(documented in :mod:`portsniff.decode.reference` and the modules it uses) to those field
values, so that its batches equal the reference decoder's. It never calls the reference
decoder; it shares only the pure DNS-SD naming rule (:func:`dnssd.service_of`).

Headers scapy has no layer for are read from the raw bytes scapy leaves: the NFLOG TLVs,
the PKTAP header, DCCP ports, Teredo's optional headers, GRE source routes and ERSPAN.
A header is dissected alone (``cls(bytes)`` on exactly its fixed size), so scapy's guess
of the next layer never decides anything; a header captured only in part is padded with
zeros for scapy and only the fields inside the captured bytes are used.

Known differences from the reference (none occurs in the project's test captures):
DNS names are read by scapy's ``DNS`` layer, which stops at the whole message rather than
at the first malformed record, and joins labels with dots (a dot inside a label cannot be
told apart from a label boundary).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from portsniff.capture.block import RawBlock
from portsniff.decode.batch import DecodedBatch
from portsniff.decode.dnssd import dedupe_names, service_of
from portsniff.decode.packet import Decoded, Endpoints, Fragment, IpLayer
from portsniff.errors import EngineUnavailable

_SCAPY: SimpleNamespace | None = None

PORT_PROTOS = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp"}
PROTO_NAMES = {**PORT_PROTOS, 1: "icmp", 58: "icmpv6"}
MIN_HEADER = {6: 20, 17: 8, 132: 12, 33: 12}
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200, 0x9300})
SNAP_OUIS = frozenset({0x000000, 0x0000F8})
NULL_IPV6 = frozenset({24, 28, 30})
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERRORS = frozenset({1, 2, 3, 4})
IPIP_NAMES = {(4, 4): "ipip", (4, 41): "6in4", (6, 4): "4in6", (6, 41): "6in6"}
UDP_TUNNELS = {4789: "vxlan", 6081: "geneve", 3544: "teredo"}
_TEREDO_NET = ipaddress.IPv6Network("2001::/32")
MAX_SHIMS = 32
MAX_LINK_DEPTH = 4
MAX_TUNNEL_DEPTH = 8
MAX_SRE = 16
_PAD = 64  # zero bytes after a header, for scapy's optional fields


def _scapy() -> SimpleNamespace:
    """scapy's layer classes, imported on first use (importing scapy takes a while)."""
    global _SCAPY
    if _SCAPY is None:
        try:
            from scapy.config import conf

            # Quiet: no warnings about missing routes or libpcap on import.
            conf.logLevel = 40
            from scapy.contrib.geneve import GENEVE
            from scapy.contrib.mpls import MPLS
            from scapy.fields import BitField, ShortField
            from scapy.layers.dns import DNS
            from scapy.layers.dot11 import Dot11, Dot11QoS, RadioTap
            from scapy.layers.inet import ICMP, IP, TCP, UDP
            from scapy.layers.inet6 import (
                ICMPv6Unknown,
                IPv6,
                IPv6ExtHdrDestOpt,
                IPv6ExtHdrFragment,
                IPv6ExtHdrHopByHop,
                IPv6ExtHdrRouting,
            )
            from scapy.layers.ipsec import AH
            from scapy.layers.l2 import (
                GRE,
                GRE_PPTP,
                LLC,
                SNAP,
                CookedLinux,
                CookedLinuxV2,
                Dot1Q,
                Ether,
                LoopbackOpenBSD,
            )
            from scapy.layers.ppi import PPI
            from scapy.layers.sctp import SCTP
            from scapy.layers.vxlan import VXLAN
        except ImportError as exc:
            raise EngineUnavailable(
                f"the scapy engine needs scapy ({exc}): pip install 'scapy>=2.5'"
            ) from None
        _SCAPY = SimpleNamespace(
            short=ShortField("value", 0),
            version=BitField("version", 0, 4),
            GENEVE=GENEVE,
            MPLS=MPLS,
            DNS=DNS,
            Dot11=Dot11,
            Dot11QoS=Dot11QoS,
            RadioTap=RadioTap,
            ICMP=ICMP,
            IP=IP,
            TCP=TCP,
            UDP=UDP,
            ICMPv6Unknown=ICMPv6Unknown,
            IPv6=IPv6,
            IPv6ExtHdrDestOpt=IPv6ExtHdrDestOpt,
            IPv6ExtHdrFragment=IPv6ExtHdrFragment,
            IPv6ExtHdrHopByHop=IPv6ExtHdrHopByHop,
            IPv6ExtHdrRouting=IPv6ExtHdrRouting,
            AH=AH,
            GRE=GRE,
            GRE_PPTP=GRE_PPTP,
            LLC=LLC,
            SNAP=SNAP,
            CookedLinux=CookedLinux,
            CookedLinuxV2=CookedLinuxV2,
            Dot1Q=Dot1Q,
            Ether=Ether,
            LoopbackOpenBSD=LoopbackOpenBSD,
            PPI=PPI,
            SCTP=SCTP,
            VXLAN=VXLAN,
        )
    return _SCAPY


def _hdr(cls: Any, data: bytes, off: int, size: int) -> Any:
    """The fields of layer ``cls`` dissected from the ``size`` bytes at ``off``.

    Only the fields are dissected (scapy's ``do_dissect``): scapy's guess of the next
    layer (and its dispatch hooks, e.g. ``Ether`` -> ``Dot3``) never runs. The bytes are
    zero-padded so that conditional and variable fields after the fixed part always
    parse; callers use only fields inside the captured ``size`` bytes.
    """
    chunk = data[off : off + size]
    pkt = cls()
    pkt.do_dissect(chunk + bytes(size - len(chunk) + _PAD))
    return pkt


def _u16(s: SimpleNamespace, data: bytes, off: int) -> int:
    """A big-endian 16-bit field read by scapy's ``ShortField`` (PPP's own protocol
    field would take a single odd byte as a compressed protocol, which these are not)."""
    return int(s.short.getfield(None, data[off : off + 2])[1])


def _ip_version(s: SimpleNamespace, data: bytes, off: int) -> int:
    """The IP version nibble at ``off``, read by a scapy ``BitField`` as ``IP`` reads it.

    Not ``_hdr(IP, ...)``: IPv6 bytes dissected as IPv4 take a traffic-class nibble for
    the IHL, and scapy then dissects up to 40 bytes of made-up options (half the
    engine's time on a mixed capture).
    """
    return int(s.version.getfield(None, data[off : off + 1])[1])


def _text(addr: str) -> str:
    """Address text as Python's ``ipaddress`` writes it (scapy's IPv6 text may differ)."""
    return str(ipaddress.ip_address(addr))


@dataclass(frozen=True, slots=True)
class _Net:
    kind: str  # "ip", "ipv6", "arp", "other"
    offset: int
    vlan: tuple[int, ...] = ()
    problem: str | None = None


# ---------------------------------------------------------------- link layers


def _link(s: SimpleNamespace, linktype: int, data: bytes, depth: int = 0) -> _Net:
    if linktype == 1:
        return _ethernet(s, data, 0)
    if linktype in (101, 12, 14, 228):
        return _Net("ip", 0)
    if linktype == 229:
        return _Net("ipv6", 0)
    if linktype in (0, 108):
        return _null(s, data, linktype)
    if linktype == 113:
        if len(data) < 16:
            return _Net("other", 0, problem="truncated Linux cooked header")
        sll = _hdr(s.CookedLinux, data, 0, 16)
        if sll.lladdrtype == 824:
            return _Net("other", 16)
        return _after_ethertype(s, data, 16, 0 if sll.proto == 4 else int(sll.proto), [])
    if linktype == 276:
        if len(data) < 20:
            return _Net("other", 0, problem="truncated Linux cooked v2 header")
        sll2 = _hdr(s.CookedLinuxV2, data, 0, 20)
        if sll2.lladdrtype == 824:
            return _Net("other", 20)
        return _after_ethertype(s, data, 20, 0 if sll2.proto == 4 else int(sll2.proto), [])
    if linktype == 239:
        return _nflog(data)
    if linktype == 105:
        return _wifi(s, data, 0, pad=False)
    if linktype == 127:
        return _radiotap(s, data)
    if linktype == 192:
        if len(data) < 8:
            return _Net("other", 0, problem="truncated PPI header")
        ppi = _hdr(s.PPI, data, 0, 8)
        return _inner_link(s, data, int(ppi.len), int(ppi.dlt), depth, "PPI")
    if linktype == 258:
        # scapy has no PKTAP layer: its header starts with three little-endian words,
        # the header length, the next type (1: a packet follows) and the packet's DLT.
        if len(data) < 12:
            return _Net("other", 0, problem="truncated PKTAP header")
        length = int.from_bytes(data[0:4], "little")
        next_type = int.from_bytes(data[4:8], "little")
        dlt = int.from_bytes(data[8:12], "little")
        if length < 12 or length > len(data):
            return _Net("other", 0, problem="bad PKTAP header")
        if next_type != 1:
            return _Net("other", length)
        return _inner_link(s, data, length, dlt, depth, "PKTAP")
    if linktype in (9, 50):
        return _ppp(s, data, 0)
    if linktype == 51:
        return _pppoe(s, data, 0, [])
    if linktype == 104:
        if len(data) < 4:
            return _Net("other", 0, problem="truncated Cisco HDLC header")
        return _after_ethertype(s, data, 4, _u16(s, data, 2), [])
    return _Net("other", 0, problem=f"unsupported link type {linktype}")


def _null(s: SimpleNamespace, data: bytes, linktype: int) -> _Net:
    """BSD loopback: the address family, in the byte order tshark guesses.

    scapy's ``LoopbackOpenBSD`` reads the whole family big-endian (its ``Loopback``
    keeps only the first byte); the little-endian value is the same bytes swapped.
    """
    if len(data) < 4:
        return _Net("other", 0, problem="truncated loopback header")
    big = int(_hdr(s.LoopbackOpenBSD, data, 0, 4).type)
    little = int.from_bytes(big.to_bytes(4, "big"), "little")
    if linktype == 108:
        value = big if big == 2 or big in NULL_IPV6 else little
    else:
        if data[:2] == b"\xff\x03":
            return _ppp(s, data, 0)
        value = little
        if value & 0xFFFF0000:
            if not value & 0xFF000000 and value & 0x00FF0000 < 0x00060000:
                value >>= 16  # an IRIX 16-bit family
            else:
                value = big
        elif not value & 0xFF and value & 0xFF00 < 0x0600:
            value >>= 8
        if value > 1500:  # old Linux wrote an EtherType here
            return _after_ethertype(s, data, 4, value & 0xFFFF, [])
    if value == 2:
        return _Net("ip", 4)
    if value in NULL_IPV6:
        return _Net("ipv6", 4)
    return _Net("other", 4)


def _inner_link(
    s: SimpleNamespace, data: bytes, length: int, dlt: int, depth: int, what: str
) -> _Net:
    if length < 8 or length > len(data):
        return _Net("other", 0, problem=f"bad {what} header")
    if depth + 1 >= MAX_LINK_DEPTH:
        return _Net("other", length, problem="link headers nested too deep")
    net = _link(s, dlt, data[length:], depth + 1)
    return _Net(net.kind, net.offset + length, net.vlan, net.problem)


def _ethernet(s: SimpleNamespace, data: bytes, off: int) -> _Net:
    if len(data) - off < 14:
        return _Net("other", off, problem="truncated Ethernet header")
    return _after_ethertype(s, data, off + 14, int(_hdr(s.Ether, data, off, 14).type), [])


def _after_ethertype(
    s: SimpleNamespace, data: bytes, off: int, etype: int, vlan: list[int]
) -> _Net:
    for _ in range(MAX_SHIMS):
        if etype in VLAN_TPIDS:
            if len(data) - off < 4:
                return _Net("other", off, tuple(vlan), "truncated VLAN tag")
            tag = _hdr(s.Dot1Q, data, off, 4)
            vlan.append(int(tag.vlan))
            etype = int(tag.type)
            off += 4
            continue
        if etype <= 1500 or etype == 0x8870:  # an 802.3 length or jumbo LLC
            if len(data) - off < 3:
                return _Net("other", off, tuple(vlan), "truncated LLC header")
            llc = _hdr(s.LLC, data, off, 3)
            if (llc.dsap, llc.ssap, llc.ctrl) != (0xAA, 0xAA, 3):
                return _Net("other", off, tuple(vlan))
            if len(data) - off < 8:
                return _Net("other", off, tuple(vlan), "truncated SNAP header")
            snap = _hdr(s.SNAP, data, off + 3, 5)
            if snap.OUI not in SNAP_OUIS:
                return _Net("other", off, tuple(vlan))
            etype = int(snap.code)
            off += 8
            continue
        if etype == 0x0800:
            return _Net("ip", off, tuple(vlan))
        if etype == 0x86DD:
            return _Net("ipv6", off, tuple(vlan))
        if etype in (0x0806, 0x8035):
            return _Net("arp", off, tuple(vlan))
        if etype in (0x8847, 0x8848):
            return _mpls(s, data, off, vlan)
        if etype == 0x8864:
            return _pppoe(s, data, off, vlan)
        return _Net("other", off, tuple(vlan))
    return _Net("other", off, tuple(vlan), "too many VLAN/SNAP headers")


def _mpls(s: SimpleNamespace, data: bytes, off: int, vlan: list[int]) -> _Net:
    for _ in range(MAX_SHIMS):
        if len(data) - off < 4:
            return _Net("other", off, tuple(vlan), "truncated MPLS label stack")
        bottom = _hdr(s.MPLS, data, off, 4).s
        off += 4
        if bottom:
            if off >= len(data):
                return _Net("other", off, tuple(vlan), "truncated MPLS payload")
            # MPLS does not say what it carries: guess by the IP version nibble.
            version = _ip_version(s, data, off)
            if version == 4:
                return _Net("ip", off, tuple(vlan))
            if version == 6:
                return _Net("ipv6", off, tuple(vlan))
            return _Net("other", off, tuple(vlan))
    return _Net("other", off, tuple(vlan), "too many MPLS labels")


def _pppoe(s: SimpleNamespace, data: bytes, off: int, vlan: list[int]) -> _Net:
    if len(data) - off < 8:
        return _Net("other", off, tuple(vlan), "truncated PPPoE header")
    return _ppp_protocol(s, data, off + 8, _u16(s, data, off + 6), vlan)


def _ppp_protocol(s: SimpleNamespace, data: bytes, off: int, proto: int, vlan: list[int]) -> _Net:
    if proto == 0x0021:
        return _Net("ip", off, tuple(vlan))
    if proto == 0x0057:
        return _Net("ipv6", off, tuple(vlan))
    if proto in (0x0281, 0x0283):
        return _mpls(s, data, off, vlan)
    return _Net("other", off, tuple(vlan))


def _ppp(s: SimpleNamespace, data: bytes, off: int) -> _Net:
    if data[off : off + 2] == b"\xff\x03":  # HDLC-like framing: address and control
        off += 2
    if len(data) - off < 1:
        return _Net("other", off, problem="truncated PPP header")
    if data[off] & 0x01:
        # Protocol field compression: a single odd byte is the protocol.
        return _ppp_protocol(s, data, off + 1, data[off], [])
    if len(data) - off < 2:
        return _Net("other", off, problem="truncated PPP header")
    return _ppp_protocol(s, data, off + 2, _u16(s, data, off), [])


def _nflog(data: bytes) -> _Net:
    """NFLOG: scapy has no layer for it; its TLVs are read from the raw bytes."""
    if len(data) < 4:
        return _Net("other", 0, problem="truncated NFLOG header")
    order: Any = "little"
    if len(data) >= 8:
        le = int.from_bytes(data[4:6], "little")
        be = int.from_bytes(data[4:6], "big")
        if (le < 4 or le > len(data) - 4) and 4 <= be <= len(data) - 4:
            order = "big"
    off = 4
    while len(data) - off >= 4:
        length = int.from_bytes(data[off : off + 2], order)
        tlv_type = int.from_bytes(data[off + 2 : off + 4], order)
        if length < 4 or length > len(data) - off:
            return _Net("other", off, problem="bad NFLOG TLV length")
        if tlv_type & 0x3FFF == 9:  # NFULA_PAYLOAD
            return _Net("ip", off + 4)
        off += (length + 3) & ~3
    return _Net("other", off)


def _wifi(s: SimpleNamespace, data: bytes, off: int, *, pad: bool) -> _Net:
    if len(data) - off < 2:
        return _Net("other", off, problem="truncated 802.11 header")
    wlan = _hdr(s.Dot11, data, off, 24)  # only the frame control is read before the check
    flags = int(wlan.FCfield)
    subtype = int(wlan.subtype)
    if wlan.proto != 0 or wlan.type != 2 or subtype & 0x4 or flags & 0x40:
        # not a data frame with a body (control frames are short: not truncated), or protected
        return _Net("other", off)
    if len(data) - off < 24:
        return _Net("other", off, problem="truncated 802.11 header")
    hlen = 24
    if flags & 0x03 == 0x03:
        hlen += 6  # to-DS and from-DS: a fourth address
    amsdu = False
    if subtype & 0x8:
        if len(data) - off < hlen + 2:
            return _Net("other", off, problem="truncated 802.11 header")
        amsdu = bool(_hdr(s.Dot11QoS, data, off + hlen, 2).A_MSDU_Present)
        hlen += 2
        if flags & 0x80:  # Order bit on a QoS frame: an HT control field follows
            hlen += 4
    if pad:
        hlen = (hlen + 3) & ~3
    body = off + hlen + (14 if amsdu else 0)
    if body > len(data):
        return _Net("other", off, problem="truncated 802.11 header")
    return _after_ethertype(s, data, body, 0, [])


def _radiotap(s: SimpleNamespace, data: bytes) -> _Net:
    if len(data) < 8:
        return _Net("other", 0, problem="truncated radiotap header")
    # Version and length straight from the bytes: scapy's RadioTap raises on a header
    # whose present bits announce fields that are not there; only the Flags field, read
    # below, is left to scapy.
    length = int.from_bytes(data[2:4], "little")
    if data[0] != 0 or length < 8 or length > len(data):
        return _Net("other", 0, problem="bad radiotap header")
    pad = False
    try:
        rt = s.RadioTap(data[:length])
        present = rt.present
        if present is not None and "Flags" in present and rt.Flags is not None:
            pad = bool(int(rt.Flags) & 0x20)
    except Exception:
        # A radiotap header scapy cannot dissect: no "data pad" flag read.
        pad = False
    return _wifi(s, data, length, pad=pad)


# ---------------------------------------------------------------- IP and above


@dataclass(frozen=True, slots=True)
class _IPHeader:
    version: int
    src: str
    dst: str
    ip_proto: int
    payload: bytes
    fragment: Fragment | None
    first: bool
    problem: str | None = None


def _parse_ip(s: SimpleNamespace, pkt: bytes, kind: str) -> _IPHeader | str:
    if not pkt:
        return "truncated IPv6 header" if kind == "ipv6" else "truncated IP header"
    version = _ip_version(s, pkt, 0)
    if kind == "ipv6" and version != 6:
        return f"bad IPv6 version {version}"
    if version == 4:
        return _ipv4(s, pkt)
    if version == 6:
        return _ipv6(s, pkt)
    return f"bad IP version {version}"


def _ipv4(s: SimpleNamespace, pkt: bytes) -> _IPHeader | str:
    if len(pkt) < 20:
        return "truncated IPv4 header"
    ip = _hdr(s.IP, pkt, 0, 20)
    hlen = int(ip.ihl) * 4
    if hlen < 20:
        return "bad IPv4 header length"
    src, dst, proto = str(ip.src), str(ip.dst), int(ip.proto)
    offset = int(ip.frag) * 8
    more = bool(int(ip.flags) & 0x1)
    fragment = Fragment((src, dst, int(ip.id), proto), offset, more) if more or offset else None
    first = offset == 0
    if len(pkt) < hlen:
        return _IPHeader(4, src, dst, proto, b"", fragment, first, "truncated IPv4 options")
    total = int(ip.len)
    if total == 0:  # TCP segmentation offload: the length is what was captured
        end = len(pkt)
    elif total < hlen:
        return _IPHeader(4, src, dst, proto, b"", fragment, first, "bad IPv4 total length")
    else:
        end = min(total, len(pkt))
    return _IPHeader(4, src, dst, proto, pkt[hlen:end] if first else b"", fragment, first)


def _ipv6(s: SimpleNamespace, pkt: bytes) -> _IPHeader | str:
    if len(pkt) < 40:
        return "truncated IPv6 header"
    ip6 = _hdr(s.IPv6, pkt, 0, 40)
    plen = int(ip6.plen)
    end = len(pkt) if plen == 0 else min(40 + plen, len(pkt))
    src, dst = _text(ip6.src), _text(ip6.dst)
    nh = int(ip6.nh)
    off = 40
    fragment: Fragment | None = None
    skipped = {0: s.IPv6ExtHdrHopByHop, 43: s.IPv6ExtHdrRouting, 60: s.IPv6ExtHdrDestOpt}
    while True:  # every extension header takes at least 8 bytes, so this ends
        if nh in skipped or nh == 51:
            if end - off < 2:
                break
            if nh == 51:
                ah = _hdr(s.AH, pkt, off, 2)
                size, following = (int(ah.payloadlen) + 2) * 4, int(ah.nh)
            else:
                ext = _hdr(skipped[nh], pkt, off, 2)
                size, following = (int(ext.len) + 1) * 8, int(ext.nh)
            if end - off < size:
                break
            nh = following
            off += size
            continue
        if nh == 44:
            if end - off < 8:
                break
            frag = _hdr(s.IPv6ExtHdrFragment, pkt, off, 8)
            nh = int(frag.nh)
            off += 8
            frag_offset = int(frag.offset) * 8
            if frag.m or frag_offset:
                fragment = Fragment((src, dst, int(frag.id), nh), frag_offset, bool(frag.m))
                if frag_offset:
                    return _IPHeader(6, src, dst, nh, b"", fragment, False)
            continue
        return _IPHeader(6, src, dst, nh, pkt[off:end], fragment, True)
    return _IPHeader(6, src, dst, nh, b"", fragment, True, "truncated IPv6 extension header")


@dataclass(frozen=True, slots=True)
class _Ports:
    src_port: int | None
    dst_port: int | None
    tcp_flags: int | None
    payload: bytes
    problem: str | None = None


def _ports(s: SimpleNamespace, ip_proto: int, seg: bytes) -> _Ports:
    name = PORT_PROTOS[ip_proto].upper()
    # SCTP's ports count only with its whole 12-byte common header (as in tshark).
    if len(seg) < (12 if ip_proto == 132 else 4):
        return _Ports(None, None, None, b"", f"truncated {name} header")
    size = MIN_HEADER[ip_proto]
    flags: int | None = None
    if ip_proto == 6:
        tcp = _hdr(s.TCP, seg, 0, 20)
        sport, dport = int(tcp.sport), int(tcp.dport)
        if len(seg) >= 14:
            flags = int(tcp.flags) & 0xFF  # scapy's 9 flag bits include NS: not ours
    elif ip_proto == 17:
        udp = _hdr(s.UDP, seg, 0, 8)
        sport, dport = int(udp.sport), int(udp.dport)
    elif ip_proto == 132:
        sctp = _hdr(s.SCTP, seg, 0, 12)
        sport, dport = int(sctp.sport), int(sctp.dport)
    else:  # DCCP: scapy has no layer for it; its ports are the first 4 raw bytes
        sport = int.from_bytes(seg[0:2], "big")
        dport = int.from_bytes(seg[2:4], "big")
    if len(seg) < size:
        return _Ports(sport, dport, flags, b"", f"truncated {name} header")
    payload = b""
    if ip_proto == 6:
        doff = int(tcp.dataofs) * 4
        if 20 <= doff <= len(seg):
            payload = seg[doff:]
    elif ip_proto == 17:
        ulen = int(udp.len)
        payload = seg[8:ulen] if 8 <= ulen <= len(seg) else seg[8:]
    return _Ports(sport, dport, flags, payload)


def _quoted(s: SimpleNamespace, ip_proto: int, seg: bytes) -> Endpoints | None:
    if len(seg) < 8:
        return None
    cls = s.ICMP if ip_proto == 1 else s.ICMPv6Unknown
    icmp_type = int(_hdr(cls, seg, 0, 8).type)
    if icmp_type not in (ICMP_ERRORS if ip_proto == 1 else ICMPV6_ERRORS):
        return None
    hdr = _parse_ip(s, seg[8:], "ip" if ip_proto == 1 else "ipv6")
    if isinstance(hdr, str):
        return None
    sport = dport = None
    if hdr.problem is None and hdr.first and hdr.ip_proto in PORT_PROTOS and len(hdr.payload) >= 4:
        # Quoted headers are cut short: only the UDP-sized start of any of them is read.
        udp = _hdr(s.UDP, hdr.payload, 0, 8)
        sport, dport = int(udp.sport), int(udp.dport)
    return Endpoints(PROTO_NAMES.get(hdr.ip_proto, "other"), hdr.src, hdr.dst, sport, dport)


def _dnssd(
    s: SimpleNamespace, proto: str, sport: int, dport: int, payload: bytes
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if proto == "udp" and ({sport, dport} & {53, 5353}):
        message = payload
    elif proto == "tcp" and 53 in (sport, dport):
        if len(payload) < 2:
            return (), ()
        message = payload[2 : 2 + int.from_bytes(payload[:2], "big")]
    else:
        return (), ()
    if len(message) < 12:
        return (), ()
    try:
        dns = s.DNS(message)
    except Exception:
        # scapy could not dissect the message: not DNS after all, or malformed.
        return (), ()
    names: list[bytes] = []
    questions, cut = _records(dns.qd)
    names.extend(q.qname for q in questions)
    for section in (dns.an, dns.ns, dns.ar):
        if cut:  # parsing stops at the first malformed record, across sections too
            break
        records, cut = _records(section)
        for rr in records:
            rtype = int(rr.type)
            if rtype in (12, 16, 33):
                names.append(rr.rrname)
            if rtype == 12 and isinstance(rr.rdata, bytes):
                names.append(rr.rdata)
    types: list[str] = []
    instances: list[str] = []
    for name in names:
        labels = [label for label in bytes(name).split(b".") if label]
        stype, instance = service_of(labels)
        if stype is not None:
            types.append(stype)
        if instance is not None:
            instances.append(instance)
    return dedupe_names(types), dedupe_names(instances)


def _records(section: Any) -> tuple[list[Any], bool]:
    """The records of a DNS section up to the first one scapy could not dissect, and
    whether there was such a record.

    scapy (>= 2.6) gives a list and ends it with a ``Raw`` item where a record is
    malformed or cut short; earlier scapy chained the records as layers.
    """
    items = section if isinstance(section, list) else []
    if section is not None and not isinstance(section, list):
        layer = section
        while layer:
            items.append(layer)
            layer = layer.payload
    out: list[Any] = []
    for item in items:
        if not type(item).__name__.startswith("DNS"):
            return out, True
        out.append(item)
    return out, False


def _decode_ip(s: SimpleNamespace, pkt: bytes, kind: str, depth: int) -> IpLayer | str:
    hdr = _parse_ip(s, pkt, kind)
    if isinstance(hdr, str):
        return hdr
    layer = IpLayer(
        hdr.src,
        hdr.dst,
        PROTO_NAMES.get(hdr.ip_proto, "other"),
        hdr.ip_proto,
        fragment=hdr.fragment,
        problem=hdr.problem,
    )
    if hdr.problem is not None or not hdr.first:
        return layer
    number, seg = hdr.ip_proto, hdr.payload
    if number in PORT_PROTOS:
        ports = _ports(s, number, seg)
        layer.src_port, layer.dst_port = ports.src_port, ports.dst_port
        layer.tcp_flags = ports.tcp_flags
        layer.problem = ports.problem
        if ports.src_port is None or ports.dst_port is None or ports.problem is not None:
            return layer
        layer.dnssd, layer.instances = _dnssd(
            s, layer.proto, ports.src_port, ports.dst_port, ports.payload
        )
        if number == 17:
            found = _udp_tunnel(s, ports.src_port, ports.dst_port, ports.payload)
            if found is not None:
                _tunnel(s, layer, *found, depth, descend=False)
    elif number in (1, 58):
        layer.quoted = _quoted(s, number, seg)
    elif number in (4, 41):
        name = IPIP_NAMES[(hdr.version, number)]
        _tunnel(s, layer, name, seg, _Net("ip" if number == 4 else "ipv6", 0), depth, descend=True)
    elif number == 47:
        found = _gre(s, seg)
        if found is not None:
            _tunnel(s, layer, *found, depth, descend=True)
    return layer


def _tunnel(
    s: SimpleNamespace,
    layer: IpLayer,
    name: str,
    inner: bytes,
    net: _Net,
    depth: int,
    *,
    descend: bool,
) -> None:
    if depth >= MAX_TUNNEL_DEPTH:
        layer.problem = f"tunnels nested deeper than {MAX_TUNNEL_DEPTH}"
        return
    problem = net.problem
    sub: IpLayer | str | None = None
    if net.kind in ("ip", "ipv6"):
        sub = _decode_ip(s, inner[net.offset :], net.kind, depth + 1)
    if isinstance(sub, IpLayer):
        entry = Endpoints(sub.proto, sub.src_ip, sub.dst_ip, sub.src_port, sub.dst_port, name)
        problem = sub.problem
    else:
        entry = Endpoints("other", None, None, None, None, name)
        if isinstance(sub, str):
            problem = sub
    layer.inner = [entry, *(sub.inner if isinstance(sub, IpLayer) else ())]
    if problem is not None and layer.problem is None:
        layer.problem = f"{name}: {problem}"
    if descend and isinstance(sub, IpLayer):
        layer.proto, layer.ip_proto = sub.proto, sub.ip_proto
        layer.src_port, layer.dst_port = sub.src_port, sub.dst_port
        layer.tcp_flags, layer.quoted = sub.tcp_flags, sub.quoted
        layer.dnssd, layer.instances = sub.dnssd, sub.instances
        if layer.fragment is None:
            layer.fragment = sub.fragment


def _udp_tunnel(
    s: SimpleNamespace, sport: int, dport: int, payload: bytes
) -> tuple[str, bytes, _Net] | None:
    for port in sorted({sport, dport}):
        name = UDP_TUNNELS.get(port)
        if name == "vxlan":
            if len(payload) < 8 or not int(_hdr(s.VXLAN, payload, 0, 8).flags) & 0x08:
                return None
            inner = payload[8:]
            return name, inner, _ethernet(s, inner, 0)
        if name == "geneve":
            if len(payload) < 8:
                return None
            gen = _hdr(s.GENEVE, payload, 0, 8)
            size = 8 + int(gen.optionlen) * 4
            # Version 0, options captured, and Ethernet or a real EtherType (>= 0x0600).
            if gen.version != 0 or size > len(payload) or gen.proto < 0x0600:
                return None
            inner = payload[size:]
            if gen.proto == 0x6558:
                return name, inner, _ethernet(s, inner, 0)
            return name, inner, _after_ethertype(s, inner, 0, int(gen.proto), [])
        if name == "teredo":
            return _teredo(s, payload, exact=False)
    # Teredo also runs on other ports: recognised then by an exact IPv6 payload length.
    return _teredo(s, payload, exact=True)


def _teredo(s: SimpleNamespace, payload: bytes, *, exact: bool) -> tuple[str, bytes, _Net] | None:
    """scapy has no Teredo layer: skip its optional headers in the raw bytes."""
    off = 0
    if len(payload) >= 4 and payload[:2] == b"\x00\x01":  # authentication
        off += 4 + payload[2] + payload[3] + 9
    if len(payload) - off >= 8 and payload[off : off + 2] == b"\x00\x00":  # origin
        off += 8
    if len(payload) - off < 40:
        return None
    ip6 = _hdr(s.IPv6, payload, off, 40)
    if ip6.version != 6 or (exact and 40 + int(ip6.plen) != len(payload) - off):
        return None
    if exact and not any(
        ipaddress.IPv6Address(a) in _TEREDO_NET for a in (ip6.src, ip6.dst)
    ):  # off port 3544 one end must be 2001:0::/32 (RFC 4380)
        return None
    return "teredo", payload[off:], _Net("ipv6", 0)


def _gre(s: SimpleNamespace, payload: bytes) -> tuple[str, bytes, _Net] | None:
    if len(payload) < 4:
        return None
    head = _hdr(s.GRE, payload, 0, 4)
    version = int(head.version)
    proto = int(head.proto)
    off = 4
    if version == 0:
        if head.chksum_present or head.routing_present:
            off += 4
        off += 4 if head.key_present else 0
        off += 4 if head.seqnum_present else 0
        if head.routing_present:
            # Source route entries (scapy's GRErouting needs the address family dispatch
            # we do not use): family, offset, length, then ``length`` bytes each.
            for _ in range(MAX_SRE):
                if len(payload) - off < 4:
                    return None
                family = int.from_bytes(payload[off : off + 2], "big")
                sre_length = payload[off + 3]
                off += 4 + sre_length
                if family == 0 and sre_length == 0:
                    break
            else:
                return None
    elif version == 1:
        pptp = _hdr(s.GRE_PPTP, payload, 0, 4)
        off += 4 if pptp.seqnum_present else 0
        off += 4 if pptp.acknum_present else 0
        # The key word of enhanced GRE is always there in PPTP, but only the flags count.
        off += 4 if pptp.key_present else 0
    else:
        return None
    if off > len(payload):
        return None
    name = "gre"
    if proto == 0x88BE:  # ERSPAN type II (8-byte header when S is set), type I without
        name = "erspan"
        off += 8 if head.seqnum_present else 0
    elif proto == 0x22EB:  # ERSPAN type III: 12 bytes, +8 with the O flag
        name = "erspan"
        if len(payload) - off >= 12 and payload[off + 11] & 0x01:
            off += 8
        off += 12
    if off > len(payload):
        return None
    inner = payload[off:]
    if proto in (0x6558, 0x88BE, 0x22EB):
        return name, inner, _ethernet(s, inner, 0)
    if proto == 0x880B:
        return name, inner, _ppp(s, inner, 0)
    return name, inner, _after_ethertype(s, inner, 0, proto, [])


# ---------------------------------------------------------------- the engine


def decode_frame(linktype: int, data: bytes, wirelen: int | None = None) -> Decoded:
    """One frame decoded with scapy's dissectors by the project's rules."""
    s = _scapy()
    try:
        decoded = _decode(s, linktype, bytes(data))
    except Exception as exc:  # a bug or a scapy surprise must not stop a capture
        return Decoded(linktype=linktype, problem=f"internal decoder error: {type(exc).__name__}")
    problem = decoded.problem
    if (
        problem is not None
        and wirelen is not None
        and wirelen > len(data)
        and "truncated" in problem
    ):
        return Decoded(**{**_as_dict(decoded), "problem": f"{problem} (snaplen)"})
    return decoded


def _as_dict(d: Decoded) -> dict[str, Any]:
    return {name: getattr(d, name) for name in Decoded.__slots__}


def _decode(s: SimpleNamespace, linktype: int, data: bytes) -> Decoded:
    net = _link(s, linktype, data)
    if net.kind == "arp":
        return Decoded(linktype=linktype, proto="arp", vlan=net.vlan, problem=net.problem)
    if net.kind == "other":
        return Decoded(linktype=linktype, vlan=net.vlan, problem=net.problem)
    layer = _decode_ip(s, data[net.offset :], net.kind, 0)
    if isinstance(layer, str):
        return Decoded(linktype=linktype, vlan=net.vlan, problem=layer)
    return layer.decoded(linktype, net.vlan)


class ScapyEngine:
    """Decodes blocks with scapy's dissectors (see the module docstring)."""

    name = "scapy"

    def __init__(self, path: str) -> None:
        self.path = path
        _scapy()  # fail now, with a clear message, when scapy is missing
        self.packets = 0

    def decode(self, block: RawBlock) -> DecodedBatch:
        """Decode every packet of ``block`` (rows in the block's order)."""
        n = len(block)
        batch = DecodedBatch.empty(block.file, block.first_frame, n)
        batch.ts_ns[:] = block.ts_ns
        batch.wirelen[:] = block.wirelen
        batch.caplen[:] = block.caplen
        batch.linktype[:] = block.linktype
        batch.comments = dict(block.comments)
        linktype = block.linktype.tolist()
        wirelen = block.wirelen.tolist()
        for i in range(n):
            batch.set_decoded(i, decode_frame(linktype[i], block.packet(i), wirelen[i]))
        self.packets += n
        return batch

    def close(self) -> None:
        """Nothing to release: scapy holds no files or processes here."""
