"""Link layers of the reference decoder: from a capture link type to the network layer.

Every function takes the whole frame (``bytes``) and an offset, never reads past the
end, and returns a :class:`Net` saying where the network layer starts and what it is.
Rules (the other engines follow them exactly):

- Ethernet (1): 14-byte header; a type/length field <= 1500 is an 802.3 length and
  the payload is LLC (only LLC/SNAP with OUI 00-00-00 or 00-00-F8 is followed);
  EtherType 0x8870 (jumbo LLC) is LLC too. The 802.3 length does not trim the
  frame (the IP lengths bound the packet).
- EtherType chain (Ethernet, SLL, SLL2, SNAP, GRE, Geneve, C-HDLC): 802.1Q 0x8100,
  802.1ad 0x88a8 and the old QinQ 0x9100/0x9200/0x9300 each add a VLAN id (TCI & 0xfff,
  outermost first); MPLS 0x8847/0x8848 pops labels to the bottom of stack and then
  guesses by the first nibble (4 IPv4, 6 IPv6, anything else is not followed);
  PPPoE session 0x8864 reads the PPP protocol (0x0021 IPv4, 0x0057 IPv6, 0x0281/0x0283
  MPLS); 0x0800 is "ip" (version from the first nibble, as tshark does), 0x86dd is
  "ipv6"; ARP 0x0806 and RARP 0x8035 are "arp"; everything else is "other".
- Linux SLL (113): 16-byte header, protocol at 14 (0x0004 means an LLC frame follows;
  ARPHRD_NETLINK 824 is "other"). SLL2 (276): 20-byte header, protocol at 0.
- Raw IP (101, 12, 14): "ip" (version from the first nibble). LINKTYPE_IPV4 (228) is
  "ip" too (tshark's IP dissector dispatches on the version), LINKTYPE_IPV6 (229) "ipv6".
- BSD NULL (0) and LOOP (108): a 4-byte address family, 2 IPv4, 24/28/30 IPv6, any
  other "other"; byte order as tshark guesses it (see :func:`_null`).
- NFLOG (239): 4-byte header, then TLVs (see :func:`_nflog`); the NFULA_PAYLOAD (9)
  TLV holds the IP packet ("ip").
- 802.11 (105), radiotap (127) and PPI (192) around 802.11: data frames only (type 2),
  null-data subtypes and protected frames are "other"; 4-address frames, QoS control
  (+2) and HT control (+4 when QoS and the Order bit) are skipped; A-MSDU takes the
  first subframe; radiotap's "data pad" flag aligns the body to 4 bytes. The body must be
  LLC/SNAP.
- PPI (192) other than 802.11 and PKTAP (258): skip the header (its length field) and
  decode the link type named inside (PPI's DLT at byte 4; PKTAP's at byte 8 when
  its next-type field at byte 4 is 1, "packet"); at most 4 nested link headers.
- PPP (9), PPP in HDLC framing (50), PPPoE-only (51) and Cisco HDLC (104).
- Anything else: "other" with problem "unsupported link type N".

A truncated link header gives "other" with a "truncated ..." problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Link types this module understands (the rest are "unsupported link type N").
SUPPORTED_LINKTYPES = frozenset(
    {0, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 127, 192, 228, 229, 239, 258, 276}
)

VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200, 0x9300})
MPLS_TYPES = frozenset({0x8847, 0x8848})
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_RARP = 0x8035
ETH_PPPOE_SESSION = 0x8864
ETH_JUMBO_LLC = 0x8870
SNAP_OUIS = (b"\x00\x00\x00", b"\x00\x00\xf8")
PPP_TO_KIND = {0x0021: "ip", 0x0057: "ipv6"}
PPP_MPLS = frozenset({0x0281, 0x0283})
NULL_IPV4 = frozenset({2})
NULL_IPV6 = frozenset({24, 28, 30})
NFULA_PAYLOAD = 9
ARPHRD_NETLINK = 824
MAX_SHIMS = 32  # VLAN tags + MPLS labels + SNAP headers in one chain
MAX_LINK_DEPTH = 4  # PPI / PKTAP wrapping other link headers


@dataclass(frozen=True, slots=True)
class Net:
    """Where the network layer starts in a frame.

    ``kind`` is "ip" (IPv4 or IPv6 by the first nibble), "ipv6", "arp" or "other".
    """

    kind: str
    offset: int
    vlan: tuple[int, ...] = ()
    problem: str | None = None


def decode_link(linktype: int, data: bytes, depth: int = 0) -> Net:
    """The network layer inside a frame of ``linktype`` (see the module rules)."""
    if linktype == 1:
        return ethernet(data, 0)
    if linktype in (101, 12, 14, 228):
        return Net("ip", 0)
    if linktype == 229:
        return Net("ipv6", 0)
    if linktype in (0, 108):
        return _null(data, linktype)
    if linktype == 113:
        return _sll(data)
    if linktype == 276:
        return _sll2(data)
    if linktype == 239:
        return _nflog(data)
    if linktype == 105:
        return wifi(data, 0, pad=False)
    if linktype == 127:
        return _radiotap(data)
    if linktype == 192:
        return _ppi(data, depth)
    if linktype == 258:
        return _pktap(data, depth)
    if linktype in (9, 50):
        return ppp(data, 0)
    if linktype == 51:
        return _pppoe(data, 0, [])
    if linktype == 104:
        if len(data) < 4:
            return Net("other", 0, problem="truncated Cisco HDLC header")
        return after_ethertype(data, 4, _u16(data, 2), [])
    return Net("other", 0, problem=f"unsupported link type {linktype}")


def _u16(data: bytes, off: int) -> int:
    return (data[off] << 8) | data[off + 1]


def ethernet(data: bytes, off: int) -> Net:
    """An Ethernet II / 802.3 frame starting at ``off``."""
    if len(data) - off < 14:
        return Net("other", off, problem="truncated Ethernet header")
    return after_ethertype(data, off + 14, _u16(data, off + 12), [])


def after_ethertype(data: bytes, off: int, etype: int, vlan: list[int]) -> Net:
    """Follow an EtherType (and the VLAN/MPLS/PPPoE/SNAP shims after it) from ``off``."""
    for _ in range(MAX_SHIMS):
        if etype in VLAN_TPIDS:
            if len(data) - off < 4:
                return Net("other", off, tuple(vlan), "truncated VLAN tag")
            tci, etype = struct.unpack_from("!HH", data, off)
            vlan.append(tci & 0x0FFF)
            off += 4
            continue
        if etype <= 1500 or etype == ETH_JUMBO_LLC:  # an 802.3 length: LLC follows
            if len(data) - off < 3:
                return Net("other", off, tuple(vlan), "truncated LLC header")
            if data[off : off + 3] != b"\xaa\xaa\x03":
                return Net("other", off, tuple(vlan))
            if len(data) - off < 8:
                return Net("other", off, tuple(vlan), "truncated SNAP header")
            if data[off + 3 : off + 6] not in SNAP_OUIS:
                return Net("other", off, tuple(vlan))
            etype = _u16(data, off + 6)
            off += 8
            continue
        if etype == ETH_IPV4:
            return Net("ip", off, tuple(vlan))
        if etype == ETH_IPV6:
            return Net("ipv6", off, tuple(vlan))
        if etype in (ETH_ARP, ETH_RARP):
            return Net("arp", off, tuple(vlan))
        if etype in MPLS_TYPES:
            return mpls(data, off, vlan)
        if etype == ETH_PPPOE_SESSION:
            return _pppoe(data, off, vlan)
        return Net("other", off, tuple(vlan))
    return Net("other", off, tuple(vlan), "too many VLAN/SNAP headers")


def mpls(data: bytes, off: int, vlan: list[int]) -> Net:
    """Pop MPLS labels to the bottom of the stack, then guess IPv4/IPv6 by the nibble."""
    for _ in range(MAX_SHIMS):
        if len(data) - off < 4:
            return Net("other", off, tuple(vlan), "truncated MPLS label stack")
        bottom = data[off + 2] & 0x01
        off += 4
        if bottom:
            if off >= len(data):
                return Net("other", off, tuple(vlan), "truncated MPLS payload")
            nibble = data[off] >> 4
            if nibble == 4:
                return Net("ip", off, tuple(vlan))
            if nibble == 6:
                return Net("ipv6", off, tuple(vlan))
            return Net("other", off, tuple(vlan))
    return Net("other", off, tuple(vlan), "too many MPLS labels")


def _pppoe(data: bytes, off: int, vlan: list[int]) -> Net:
    if len(data) - off < 8:
        return Net("other", off, tuple(vlan), "truncated PPPoE header")
    return _ppp_protocol(data, off + 8, _u16(data, off + 6), vlan)


def _ppp_protocol(data: bytes, off: int, protocol: int, vlan: list[int]) -> Net:
    kind = PPP_TO_KIND.get(protocol)
    if kind is not None:
        return Net(kind, off, tuple(vlan))
    if protocol in PPP_MPLS:
        return mpls(data, off, vlan)
    return Net("other", off, tuple(vlan))


def ppp(data: bytes, off: int) -> Net:
    """A PPP frame: optional FF 03 address/control, then a 1- or 2-byte protocol."""
    if len(data) - off >= 2 and data[off] == 0xFF and data[off + 1] == 0x03:
        off += 2
    if len(data) - off < 1:
        return Net("other", off, problem="truncated PPP header")
    if data[off] & 0x01:  # protocol field compression: one odd byte
        return _ppp_protocol(data, off + 1, data[off], [])
    if len(data) - off < 2:
        return Net("other", off, problem="truncated PPP header")
    return _ppp_protocol(data, off + 2, _u16(data, off), [])


def _null(data: bytes, linktype: int) -> Net:
    """BSD NULL (host byte order) and LOOP (network byte order) 4-byte family headers.

    LOOP: the family big-endian, else little-endian. NULL follows tshark on a
    little-endian host: FF 03 first is PPP in HDLC framing; else the little-endian
    value, byte-swapped when its upper 16 bits are set (unless it looks like an IRIX
    16-bit family, then shifted down), or a byte-swapped 16-bit family when only its
    second byte is set and small; a value above 1500 is an EtherType (old Linux).
    """
    if len(data) < 4:
        return Net("other", 0, problem="truncated loopback header")
    if linktype == 108:
        big = int.from_bytes(data[:4], "big")
        value = big if big in NULL_IPV4 | NULL_IPV6 else int.from_bytes(data[:4], "little")
    else:
        if data[0] == 0xFF and data[1] == 0x03:
            return ppp(data, 0)
        value = int.from_bytes(data[:4], "little")
        if value & 0xFFFF0000:
            if not value & 0xFF000000 and value & 0x00FF0000 < 0x00060000:
                value >>= 16
            else:
                value = int.from_bytes(data[:4], "big")
        elif not value & 0xFF and value & 0xFF00 < 0x0600:
            value = value >> 8
        if value > 1500:
            return after_ethertype(data, 4, value & 0xFFFF, [])
    if value in NULL_IPV4:
        return Net("ip", 4)
    if value in NULL_IPV6:
        return Net("ipv6", 4)
    return Net("other", 4)


def _sll(data: bytes) -> Net:
    if len(data) < 16:
        return Net("other", 0, problem="truncated Linux cooked header")
    if _u16(data, 2) == ARPHRD_NETLINK:
        return Net("other", 16)
    return _cooked_protocol(data, 16, _u16(data, 14))


def _sll2(data: bytes) -> Net:
    if len(data) < 20:
        return Net("other", 0, problem="truncated Linux cooked v2 header")
    if _u16(data, 8) == ARPHRD_NETLINK:
        return Net("other", 20)
    return _cooked_protocol(data, 20, _u16(data, 0))


def _cooked_protocol(data: bytes, off: int, protocol: int) -> Net:
    if protocol == 0x0004:  # ETH_P_802_2: an LLC frame without the 802.3 header
        return after_ethertype(data, off, 0, [])
    return after_ethertype(data, off, protocol, [])


def _nflog(data: bytes) -> Net:
    """NFLOG: TLVs after a 4-byte header; NFULA_PAYLOAD holds the IP packet.

    TLV length/type are host-endian: read little-endian unless the first TLV's
    little-endian length is impossible (< 4 or past the end) and big-endian is not.
    Each TLV is padded to 4 bytes; the type is masked with 0x3fff (netlink flag bits).
    """
    if len(data) < 4:
        return Net("other", 0, problem="truncated NFLOG header")
    order = "<"
    if len(data) >= 8:
        le = struct.unpack_from("<H", data, 4)[0]
        be = struct.unpack_from(">H", data, 4)[0]
        if (le < 4 or le > len(data) - 4) and 4 <= be <= len(data) - 4:
            order = ">"
    off = 4
    while len(data) - off >= 4:
        length, tlv_type = struct.unpack_from(order + "HH", data, off)
        if length < 4 or length > len(data) - off:
            return Net("other", off, problem="bad NFLOG TLV length")
        if tlv_type & 0x3FFF == NFULA_PAYLOAD:
            return Net("ip", off + 4)
        off += (length + 3) & ~3
    return Net("other", off)


def wifi(data: bytes, off: int, *, pad: bool) -> Net:
    """An 802.11 frame at ``off``; ``pad`` is radiotap's "data pad" flag."""
    if len(data) - off < 2:
        return Net("other", off, problem="truncated 802.11 header")
    fc0, fc1 = data[off], data[off + 1]
    ftype = (fc0 >> 2) & 0x3
    subtype = fc0 >> 4
    if fc0 & 0x3 or ftype != 2 or subtype & 0x4 or fc1 & 0x40:
        # not version 0, not a data frame (control frames are short: not truncated),
        # a null (no body) subtype, or protected
        return Net("other", off)
    if len(data) - off < 24:
        return Net("other", off, problem="truncated 802.11 header")
    hlen = 24
    if fc1 & 0x03 == 0x03:
        hlen += 6  # addr4 (WDS)
    amsdu = False
    if subtype & 0x8:  # QoS data
        if len(data) - off < hlen + 2:
            return Net("other", off, problem="truncated 802.11 header")
        amsdu = bool(data[off + hlen] & 0x80)
        hlen += 2
        if fc1 & 0x80:  # Order bit on a QoS frame: HT control follows
            hlen += 4
    if pad:
        hlen = (hlen + 3) & ~3
    body = off + hlen
    if amsdu:
        body += 14  # first A-MSDU subframe: DA, SA, length
    if body > len(data):
        return Net("other", off, problem="truncated 802.11 header")
    return after_ethertype(data, body, 0, [])  # LLC/SNAP


def _radiotap(data: bytes) -> Net:
    if len(data) < 8:
        return Net("other", 0, problem="truncated radiotap header")
    length = struct.unpack_from("<H", data, 2)[0]
    if data[0] != 0 or length < 8 or length > len(data):
        return Net("other", 0, problem="bad radiotap header")
    # Find the Flags field (present bit 1): after the present words and an 8-byte TSFT.
    pos = 4
    present = 0
    first = True
    while pos + 4 <= length:
        word = struct.unpack_from("<I", data, pos)[0]
        if first:
            present = word
            first = False
        pos += 4
        if not word & 0x80000000:
            break
    pad = False
    if present & 0x1:
        pos = (pos + 7) & ~7
        pos += 8
    if present & 0x2 and pos < length:
        pad = bool(data[pos] & 0x20)
    return wifi(data, length, pad=pad)


def _ppi(data: bytes, depth: int) -> Net:
    if len(data) < 8:
        return Net("other", 0, problem="truncated PPI header")
    length, dlt = struct.unpack_from("<HI", data, 2)
    if length < 8 or length > len(data):
        return Net("other", 0, problem="bad PPI header")
    return _inner_link(data, length, dlt, depth)


def _pktap(data: bytes, depth: int) -> Net:
    """Apple PKTAP: header length, next type (1 = packet), then the packet's DLT."""
    if len(data) < 12:
        return Net("other", 0, problem="truncated PKTAP header")
    length, next_type, dlt = struct.unpack_from("<III", data, 0)
    if length < 12 or length > len(data):
        return Net("other", 0, problem="bad PKTAP header")
    if next_type != 1:
        return Net("other", length)
    return _inner_link(data, length, dlt, depth)


def _inner_link(data: bytes, off: int, linktype: int, depth: int) -> Net:
    if depth + 1 >= MAX_LINK_DEPTH:
        return Net("other", off, problem="link headers nested too deep")
    net = decode_link(linktype, data[off:], depth + 1)
    return Net(net.kind, net.offset + off, net.vlan, net.problem)
