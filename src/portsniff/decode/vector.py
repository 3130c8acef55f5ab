"""Vectorised kernels of the fast engine: header fields for a whole block at once.

Every kernel works on index arrays (rows of the block and byte positions in the block's
buffer) and narrows them step by step: a row survives only while everything read so far
is captured and unremarkable. Rows that drop out are decoded one by one by the reference
decoder, so the rules here only have to be *safe*: a row kept must decode exactly as
:mod:`portsniff.decode.reference` decodes it. The constants come from the reference's
own modules so that both stay in step; when in doubt a rule drops the row.

What is kept (everything else drops out):

- link types Ethernet (1), raw IP (12, 14, 101, 228, 229), BSD NULL/LOOP (0, 108) with an
  IP family, Linux cooked v1/v2 (113, 276);
- after an EtherType, up to two VLAN tags, MPLS label stacks, PPPoE sessions and LLC/SNAP
  headers (eight shims in all); non-IP EtherTypes ("arp" or "other"), LLC other than SNAP
  of an Ethernet OUI ("other");
- IPv4 that is not a fragment, does not carry AH, and whose header length and total
  length are sane;
  IPv6 that is not a fragment, through hop-by-hop, routing, destination options and AH
  headers (eight in all) and a fragment header of a whole packet;
- TCP/UDP/SCTP/DCCP with their whole fixed header captured, except UDP on a tunnel
  port whose payload fits the tunnel's header (VXLAN's I flag, Geneve's header; any
  payload on Teredo's port) or whose payload is exactly one IPv6 packet (Teredo on any
  other port), and DNS ports whose payload has a 4-byte label starting with an
  underscore (as "_tcp"/"_udp" of a DNS-SD name) and, over UDP, a first name that may
  parse. VXLAN datagrams off the DNS ports are handed to the caller apart
  (``Network.vxlan``), to decode their inner frame with these same kernels; so are GRE
  packets (version 0 without routing, not ERSPAN nor PPP: ``Network.gre``);
- ICMP/ICMPv6 that is not an error (errors quote a packet); other IP protocols except
  IP-in-IP (4, 41).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from portsniff.decode import dnssd, icmp, ip, link, transport, tunnels

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

LT_NULL = 0
LT_ETHERNET = 1
LT_LOOP = 108
LT_SLL = 113
LT_SLL2 = 276
LT_RAW = (12, 14, 101, 228)  # "ip": IPv4 or IPv6 by the first nibble
LT_IPV6 = 229

# What the network layer is (link.Net.kind), as small codes.
KIND_DROP = 0  # not for the kernels
KIND_IP = 1  # IPv4 or IPv6 by the first nibble
KIND_IPV6 = 2
KIND_ARP = 3
KIND_OTHER = 4

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_GRE = 47
#: IP-in-IP: the IP protocol and the EtherType of the packet it carries.
IP_IN_IP = ((4, 0x0800), (41, 0x86DD))
ICMP_PROTOS = (1, 58)
TUNNEL_PROTOS = (4, 41, 47)
IPV6_EXTENSIONS = np.array(sorted(ip.IPV6_SKIPPED | {ip.IPV6_FRAGMENT, ip.IPV6_AH}), np.int32)

#: IP protocol number -> Decoded.proto name (the reference's table).
PROTO_NAME = [transport.proto_name(n) for n in range(256)]

#: Fixed header size of each port-carrying protocol (shorter is a problem).
MIN_HEADER = np.zeros(256, np.int64)
for _number, _size in transport.MIN_HEADER.items():
    MIN_HEADER[_number] = _size

#: ICMP types that are errors (they quote a packet), by IP protocol number.
ICMP_ERROR_TYPES = {
    n: np.array([icmp.is_error(n, t) for t in range(256)], np.bool_) for n in ICMP_PROTOS
}

UDP_TUNNEL_PORTS = np.array(sorted(tunnels.UDP_TUNNEL_PORTS), np.int32)
DNS_PORTS = {
    IPPROTO_UDP: np.array(sorted(dnssd.DNS_PORTS_UDP), np.int32),
    IPPROTO_TCP: np.array(sorted(dnssd.DNS_PORTS_TCP), np.int32),
}


def _port_table(ports: npt.NDArray[np.int32]) -> Mask:
    """Membership of ``ports`` indexed by port + 1 (index 0 is "no port", -1)."""
    table = np.zeros(65537, np.bool_)
    table[ports + 1] = True
    return table


def _proto_table(protos: object) -> Mask:
    """Membership indexed by IP protocol number (a gather instead of ``np.isin``)."""
    table = np.zeros(256, np.bool_)
    table[np.asarray(protos, np.int64)] = True
    return table


IS_TUNNEL_PROTO = _proto_table(TUNNEL_PROTOS)
#: GRE protocols the reference reads apart (ERSPAN's headers, PPP).
IS_GRE_APART = np.zeros(65536, np.bool_)
IS_GRE_APART[[tunnels.ERSPAN_2, tunnels.ERSPAN_3, tunnels.GRE_PPP]] = True
IS_IPV6_EXTENSION = _proto_table(IPV6_EXTENSIONS)
IS_UDP_TUNNEL_PORT = _port_table(UDP_TUNNEL_PORTS)
IS_DNS_PORT = {number: _port_table(ports) for number, ports in DNS_PORTS.items()}


def _ethertype_table() -> U8:
    """EtherType -> kind, for EtherTypes needing no shim (VLAN tags are handled apart)."""
    table = np.full(65536, KIND_OTHER, np.uint8)
    table[:1501] = KIND_DROP  # 802.3 length: LLC
    for etype in (*link.VLAN_TPIDS, *link.MPLS_TYPES, link.ETH_PPPOE_SESSION):
        table[etype] = KIND_DROP
    table[link.ETH_IPV4] = KIND_IP
    table[link.ETH_IPV6] = KIND_IPV6
    table[link.ETH_ARP] = KIND_ARP
    table[link.ETH_RARP] = KIND_ARP
    return table


ETHERTYPE_KIND = _ethertype_table()
IS_VLAN_TPID = np.zeros(65536, np.bool_)
IS_VLAN_TPID[list(link.VLAN_TPIDS)] = True
IS_MPLS_TYPE = np.zeros(65536, np.bool_)
IS_MPLS_TYPE[list(link.MPLS_TYPES)] = True
#: 802.3 lengths (and jumbo LLC): an LLC header follows, maybe SNAP naming an EtherType.
IS_LLC = np.zeros(65536, np.bool_)
IS_LLC[:1501] = True
IS_LLC[link.ETH_JUMBO_LLC] = True
#: EtherTypes followed by a shim: VLAN tags, MPLS labels, a PPPoE session header, LLC.
IS_SHIM = IS_VLAN_TPID | IS_MPLS_TYPE | IS_LLC
IS_SHIM[link.ETH_PPPOE_SESSION] = True
#: PPP protocol -> kind (link._ppp_protocol); MPLS is followed apart.
PPP_KIND = np.full(65536, KIND_OTHER, np.uint8)
for _protocol, _kind in link.PPP_TO_KIND.items():
    PPP_KIND[_protocol] = {"ip": KIND_IP, "ipv6": KIND_IPV6}[_kind]
IS_PPP_MPLS = np.zeros(65536, np.bool_)
IS_PPP_MPLS[list(link.PPP_MPLS)] = True
PPP_KIND[IS_PPP_MPLS] = KIND_DROP
#: VLAN tags a row keeps in the columns (more: the reference decodes it).
MAX_TAGS = 2
#: Shims (tags, labels, PPPoE, LLC) the kernels follow before leaving a row to the reference.
MAX_STEPS = 8


@dataclass(slots=True)
class Layer3:
    """Rows whose link layer was understood: what their network layer is and where."""

    rows: I64  # row numbers in the block
    l3: I64  # buffer position of the network header
    end: I64  # buffer position just past the captured bytes
    kind: U8  # KIND_*
    vlan: I32  # the VLAN id of the first (outer) tag, or -1
    vlan2: I32  # the VLAN id of the second tag, or -1


@dataclass(slots=True)
class Network:
    """Rows fully decoded by the IP kernels."""

    rows: I64
    ip_version: U8
    src_pos: I64  # buffer position of the source address (4 or 16 bytes, then dst)
    ip_proto: I32
    src_port: I32  # -1 when none
    dst_port: I32
    tcp_flags: I32
    vxlan: Vxlan | None = None  # the UDP rows carrying VXLAN (left out of ``rows``)
    gre: Gre | None = None  # the GRE rows whose inner packet or frame is read here (ditto)
    geneve: Gre | None = None  # the UDP rows carrying Geneve, as GRE's (ditto)
    ipip: list[tuple[str, Gre]] | None = None  # IP-in-IP rows by tunnel name (ditto)

    def take(self, at: I64) -> Network:
        """The rows at positions ``at`` (without tunnels)."""
        return Network(
            rows=self.rows[at],
            ip_version=self.ip_version[at],
            src_pos=self.src_pos[at],
            ip_proto=self.ip_proto[at],
            src_port=self.src_port[at],
            dst_port=self.dst_port[at],
            tcp_flags=self.tcp_flags[at],
        )


@dataclass(slots=True)
class Gre:
    """GRE packets (version 0, no routing) carrying an EtherType the kernels follow:
    their outer columns (as a Network's, without these rows' own ``gre``), the inner
    EtherType (of the inner Ethernet frame for transparent bridging) and where its
    network layer starts, and where the packet ends."""

    outer: Network
    etype: I32
    l3: I64
    end: I64


@dataclass(slots=True)
class Fragments:
    """IPv4 fragments whose IP header is whole: their rows, identification, and flags and
    offset word; ``later``: the later ones (not first) decoded."""

    rows: I64
    ip_id: I32
    field: I32  # more-fragments bit 0x2000, offset in 8-byte units below
    later: Network | None = None


@dataclass(slots=True)
class Vxlan:
    """UDP datagrams carrying VXLAN: their outer columns (as a Network's, without these
    rows' own ``vxlan``), where the inner Ethernet frame starts and where the payload
    ends."""

    outer: Network
    inner: I64
    end: I64


def u16(buf: U8, pos: I64) -> I32:
    """Big-endian 16-bit fields at ``pos`` (every position must have 2 bytes)."""
    return (buf[pos].astype(np.int32) << 8) | buf[pos + 1]


def _concat(parts: list[Layer3]) -> Layer3:
    if not parts:
        e = np.zeros(0, np.int64)
        none = np.zeros(0, np.int32)
        return Layer3(e, e, e, np.zeros(0, np.uint8), none, none)
    return Layer3(
        rows=np.concatenate([p.rows for p in parts]),
        l3=np.concatenate([p.l3 for p in parts]),
        end=np.concatenate([p.end for p in parts]),
        kind=np.concatenate([p.kind for p in parts]),
        vlan=np.concatenate([p.vlan for p in parts]),
        vlan2=np.concatenate([p.vlan2 for p in parts]),
    )


def _plain(rows: I64, l3: I64, end_all: I64, kind: int) -> Layer3:
    """Rows of one kind without VLAN tags (``end_all`` is indexed by row)."""
    none = np.full(rows.size, -1, np.int32)
    return Layer3(rows, l3, end_all[rows], np.full(rows.size, kind, np.uint8), none, none)


def _after_ethertype(buf: U8, rows: I64, etype: I32, l3: I64, end: I64) -> Layer3:
    """Follow an EtherType at ``l3`` through its shims (link.after_ethertype): up to
    MAX_TAGS VLAN tags, MPLS label stacks, PPPoE sessions and LLC/SNAP headers, MAX_STEPS
    of them."""
    n = rows.size
    vlan = np.full(n, -1, np.int32)
    vlan2 = np.full(n, -1, np.int32)
    kind = ETHERTYPE_KIND[etype]
    shim = np.flatnonzero(IS_SHIM[etype])
    if shim.size:
        # The shimmed rows step by step; a row leaves the walk with its kind, or as
        # KIND_DROP (cut short, a third tag, too deep: the reference's, with its problem).
        l3 = l3.copy()
        et = etype[shim]
        pos = l3[shim]
        stop = end[shim]
        tags = np.zeros(shim.size, np.int8)
        in_mpls = np.zeros(shim.size, np.bool_)
        out = np.full(shim.size, KIND_DROP, np.uint8)
        todo = np.arange(shim.size)
        for _ in range(MAX_STEPS):
            if not todo.size:
                break
            e, p, room = et[todo], pos[todo], stop[todo] - pos[todo]
            m = in_mpls[todo]
            tag = IS_VLAN_TPID[e] & ~m & (room >= 4) & (tags[todo] < MAX_TAGS)
            t = todo[tag]
            tci = u16(buf, p[tag]) & 0x0FFF
            first = tags[t] == 0
            vlan[shim[t[first]]] = tci[first]
            vlan2[shim[t[~first]]] = tci[~first]
            tags[t] += 1
            et[t] = u16(buf, p[tag] + 2)
            pos[t] += 4
            # An MPLS label: the bottom one ends the stack, the payload's nibble decides.
            label = m & (room >= 4)
            lab = todo[label]
            bottom = (buf[p[label] + 2] & 1) > 0
            pos[lab] += 4
            b = lab[bottom]
            b = b[pos[b] < stop[b]]
            nibble = buf[pos[b]] >> 4
            out[b] = np.where(nibble == 4, KIND_IP, np.where(nibble == 6, KIND_IPV6, KIND_OTHER))
            in_mpls[lab[bottom]] = False  # done (or cut short: dropped)
            # MPLS EtherTypes start a stack; PPPoE reads the PPP protocol.
            starts = ~m & IS_MPLS_TYPE[e]
            in_mpls[todo[starts]] = True
            ppp = ~m & (e == link.ETH_PPPOE_SESSION) & (room >= 8)
            q = todo[ppp]
            protocol = u16(buf, p[ppp] + 6)
            pos[q] += 8
            in_mpls[q[IS_PPP_MPLS[protocol]]] = True
            out[q] = PPP_KIND[protocol]
            # LLC: "other", unless SNAP with an Ethernet OUI names the next EtherType.
            llc = ~m & IS_LLC[e] & (room >= 3)
            lq, lp = todo[llc], p[llc]
            snap = (buf[lp] == 0xAA) & (buf[lp + 1] == 0xAA) & (buf[lp + 2] == 0x03)
            out[lq[~snap]] = KIND_OTHER
            fits = snap & (room[llc] >= 8)  # (a SNAP header cut short: the reference's)
            sq, sp = lq[fits], lp[fits]
            oui = (
                (buf[sp + 3] == 0)
                & (buf[sp + 4] == 0)
                & ((buf[sp + 5] == 0) | (buf[sp + 5] == 0xF8))
            )
            out[sq[~oui]] = KIND_OTHER
            go = sq[oui]
            et[go] = u16(buf, sp[oui] + 6)
            pos[go] += 8
            # Everything else ends here: the EtherType's kind.
            end_here = ~m & ~tag & ~starts & ~ppp & ~IS_SHIM[e]
            out[todo[end_here]] = ETHERTYPE_KIND[e[end_here]]
            more = (t, lab[~bottom], todo[starts], q[IS_PPP_MPLS[protocol]], go)
            todo = np.concatenate(more)
        kind = kind.copy()
        kind[shim] = out  # rows still walking (too deep) keep KIND_DROP
        l3[shim] = pos
    keep = kind != KIND_DROP
    return Layer3(rows[keep], l3[keep], end[keep], kind[keep], vlan[keep], vlan2[keep])


def link_layer(buf: U8, offset: I64, caplen: I64, linktype: I32) -> Layer3:
    """Strip the link-layer header of every row whose link type is handled here."""
    parts: list[Layer3] = []
    end_all = offset + caplen

    rows = np.flatnonzero((linktype == LT_ETHERNET) & (caplen >= 14))
    if rows.size:
        pos = offset[rows]
        parts.append(_after_ethertype(buf, rows, u16(buf, pos + 12), pos + 14, end_all[rows]))

    for lt, raw_kind in ((LT_IPV6, KIND_IPV6), *((lt, KIND_IP) for lt in LT_RAW)):
        rows = np.flatnonzero(linktype == lt)
        parts.append(_plain(rows, offset[rows], end_all, raw_kind))

    # BSD loopback: a 4-byte address family. Only the two plain spellings of an IP family
    # are kept (the value in the first byte or in the last, other bytes zero): the
    # reference's byte-order guessing gives the same family for both.
    for lt in (LT_NULL, LT_LOOP):
        rows = np.flatnonzero((linktype == lt) & (caplen >= 4))
        if not rows.size:
            continue
        pos = offset[rows]
        b0, b1, b2, b3 = (buf[pos + j] for j in range(4))
        family = np.where((b1 == 0) & (b2 == 0) & (b3 == 0), b0, 0)
        family = np.where((b0 == 0) & (b1 == 0) & (b2 == 0), b3, family)
        kind = np.zeros(rows.size, np.uint8)
        kind[np.isin(family, list(link.NULL_IPV4))] = KIND_IP
        kind[np.isin(family, list(link.NULL_IPV6))] = KIND_IPV6
        for k in (KIND_IP, KIND_IPV6):
            parts.append(_plain(rows[kind == k], offset[rows[kind == k]] + 4, end_all, k))

    # Linux cooked capture v1 (16-byte header) and v2 (20 bytes); netlink is "other".
    for lt, hdr, proto_at, hatype_at in ((LT_SLL, 16, 14, 2), (LT_SLL2, 20, 0, 8)):
        rows = np.flatnonzero((linktype == lt) & (caplen >= hdr))
        if not rows.size:
            continue
        netlink = u16(buf, offset[rows] + hatype_at) == link.ARPHRD_NETLINK
        parts.append(_plain(rows[netlink], offset[rows[netlink]] + hdr, end_all, KIND_OTHER))
        rows = rows[~netlink]
        pos = offset[rows]
        parts.append(
            _after_ethertype(buf, rows, u16(buf, pos + proto_at), pos + hdr, end_all[rows])
        )

    return _concat(parts)


def has_proto_label(buf: U8, start: I64, stop: I64) -> Mask:
    """Rows whose bytes ``buf[start:stop]`` hold a DNS label "_tcp" or "_udp" (any case)
    after its length byte 4.

    The rows' segments are joined with a zero byte between them (no match spans one: the
    label has no zero byte) and searched at once: candidates are the bytes 4, then the
    four bytes after each are compared.
    """
    n = int(start.size)
    found = np.zeros(n, np.bool_)
    if not n:
        return found
    stop = np.maximum(stop, start)
    data = buf.data  # sliced without copies; join copies each segment once
    joined = b"\0".join(map(data.__getitem__, map(slice, start.tolist(), stop.tolist())))
    j = np.frombuffer(joined, np.uint8)
    at = np.flatnonzero(j[: max(j.size - 4, 0)] == 4)
    at = at[j[at + 1] == ord("_")]
    if at.size:
        # The three letters as one number, lower-cased (0x20 set on each).
        word = (
            (j[at + 2].astype(np.uint32) << 16) | (j[at + 3].astype(np.uint32) << 8) | j[at + 4]
        ) | 0x202020
        at = at[np.isin(word, _LABEL_WORDS)]
    if at.size:
        size = stop - start + 1
        begin = np.cumsum(size) - size  # where each row's segment starts in ``joined``
        found[np.searchsorted(begin, at, side="right") - 1] = True
    return found


#: "tcp" and "udp" as numbers (dnssd.PROTO_LABELS without their underscore). A word
#: lower-cased by OR-ing 0x20 into each byte matches only these two spellings in any case:
#: the letters' other bits are fixed.
_LABEL_WORDS = np.array([int.from_bytes(x[1:], "big") for x in dnssd.PROTO_LABELS], np.uint32)


def _udp_payload_size(buf: U8, l4: I64, seg: I64) -> I64:
    """The size of the UDP payload the reference hands to the tunnel rules
    (transport.parse_ports): up to the UDP length when it fits the segment."""
    ulen = u16(buf, l4 + 4).astype(np.int64)
    size: I64 = np.where((ulen >= 8) & (ulen <= seg), ulen, seg) - 8
    return size


def _udp_tunnel_kind(
    buf: U8, l4: I64, seg: I64, sport: I32, dport: I32
) -> tuple[Mask, Mask, Mask, I64]:
    """For UDP datagrams on a tunnel port (tunnels.udp_tunnel): which the reference reads
    as plain UDP (the lower tunnel port is VXLAN's or Geneve's and the payload does not
    fit its header), which carry VXLAN, which Geneve, and the payload sizes. Teredo's
    port is left to the reference."""
    both = IS_UDP_TUNNEL_PORT[sport + 1] & IS_UDP_TUNNEL_PORT[dport + 1]
    port = np.where(
        both, np.minimum(sport, dport), np.where(IS_UDP_TUNNEL_PORT[sport + 1], sport, dport)
    )
    size = _udp_payload_size(buf, l4, seg)
    room = size >= 8
    b0 = np.where(room, buf[np.where(room, l4 + 8, 0)], 0)
    is_vxlan = port == tunnels.VXLAN_PORT
    vxlan = is_vxlan & room & (b0 & 0x08 != 0)
    protocol = np.where(room, u16(buf, np.where(room, l4 + 10, 0)), 0)
    is_geneve = port == tunnels.GENEVE_PORT
    geneve = is_geneve & room & (b0 >> 6 == 0)
    geneve &= (8 + (b0 & 0x3F).astype(np.int64) * 4 <= size) & (protocol >= 0x0600)
    plain: Mask = (is_vxlan & ~vxlan) | (is_geneve & ~geneve)
    return plain, vxlan, geneve, size


def _teredo_exact(buf: U8, l4: I64, seg: I64) -> Mask:
    """UDP datagrams whose payload is Teredo on any port pair (tunnels._teredo, exact).

    That is: after the optional Teredo indicators, exactly one whole IPv6 header and
    payload. ``seg`` is the captured segment length (>= 8) from the UDP header at ``l4``.
    """
    # The payload starts with an indicator (byte 0) or the IPv6 header (nibble 6): only
    # those rows are looked at further.
    first = np.where(seg > 8, buf[np.where(seg > 8, l4 + 8, 0)], 1)
    maybe = np.flatnonzero((first == 0) | (first >> 4 == 6))
    found = np.zeros(l4.size, np.bool_)
    found[maybe] = _teredo_shaped(buf, l4[maybe], seg[maybe])
    return found


def _teredo_shaped(buf: U8, l4: I64, seg: I64) -> Mask:
    """_teredo_exact for rows whose payload may start like Teredo."""
    size = _udp_payload_size(buf, l4, seg)
    start = l4 + 8

    def at(rel: I64, valid: Mask) -> I32:
        # Byte ``rel`` of the payload where ``valid`` (which implies rel < size), else 0.
        return np.where(valid, buf[np.where(valid, start + rel, 0)], 0).astype(np.int32)

    zero = np.zeros(l4.size, np.int64)
    auth = (size >= 4) & (at(zero, size >= 4) == 0) & (at(zero + 1, size >= 4) == 1)
    off = np.where(auth, 13 + at(zero + 2, auth) + at(zero + 3, auth), 0).astype(np.int64)
    room = size - off >= 8
    origin = room & (at(off, room) == 0) & (at(off + 1, room) == 0)
    off = off + np.where(origin, 8, 0)
    room = size - off >= 40
    plen = (at(off + 4, room) << 8) | at(off + 5, room)
    found: Mask = room & (at(off, room) >> 4 == 6) & (40 + plen == size - off)
    return found


def _transport(
    buf: U8, rows: I64, l4: I64, seg: I64, ip_proto: I32, version: int, src_pos: I64
) -> Network:
    """What sits on IP: ``seg`` captured bytes of protocol ``ip_proto`` at ``l4``."""
    g = np.flatnonzero(ip_proto == IPPROTO_GRE)
    gre = _gre(buf, rows[g], l4[g], seg[g], version, src_pos[g]) if g.size else None
    # IP in IP (tunnels.IPIP_NAMES): the inner packet starts at once, as GRE's would.
    ipip: list[tuple[str, Gre]] = []
    for number, etype in IP_IN_IP:
        sel = np.flatnonzero((ip_proto == number) & (seg > 0))
        if sel.size:
            outer = _tunnel_outer(rows[sel], version, src_pos[sel], number)
            inner = Gre(outer, np.full(sel.size, etype, np.int32), l4[sel], l4[sel] + seg[sel])
            ipip.append((tunnels.IPIP_NAMES[(version, number)], inner))
    keep = ~IS_TUNNEL_PROTO[ip_proto] & (seg >= MIN_HEADER[ip_proto])
    for number in ICMP_PROTOS:
        sel = np.flatnonzero((ip_proto == number) & (seg >= 8))
        keep[sel[ICMP_ERROR_TYPES[number][buf[l4[sel]]]]] = False
    rows, l4, seg, ip_proto, src_pos = (
        rows[keep],
        l4[keep],
        seg[keep],
        ip_proto[keep],
        src_pos[keep],
    )

    ported = MIN_HEADER[ip_proto] > 0
    sport = np.full(rows.size, -1, np.int32)
    dport = np.full(rows.size, -1, np.int32)
    p = np.flatnonzero(ported)
    sport[p] = u16(buf, l4[p])
    dport[p] = u16(buf, l4[p] + 2)
    keep = np.ones(rows.size, np.bool_)
    udp = ip_proto == IPPROTO_UDP
    on_dns_port = {
        number: (ip_proto == number) & (table[sport + 1] | table[dport + 1])
        for number, table in IS_DNS_PORT.items()
    }
    on_tunnel_port = udp & (IS_UDP_TUNNEL_PORT[sport + 1] | IS_UDP_TUNNEL_PORT[dport + 1])
    t = np.flatnonzero(on_tunnel_port)
    plain, vx, gv, size = _udp_tunnel_kind(buf, l4[t], seg[t], sport[t], dport[t])
    keep[t[~plain]] = False
    # VXLAN and Geneve off the DNS ports (whose payload the reference also searches for
    # DNS-SD names) are followed by the caller: VXLAN's inner frame starts after its
    # 8-byte header.
    vx &= ~on_dns_port[IPPROTO_UDP][t]
    gv &= ~on_dns_port[IPPROTO_UDP][t]
    g = t[gv]
    geneve = _geneve(
        buf,
        l4[g],
        size[gv],
        _tunnel_outer(rows[g], version, src_pos[g], IPPROTO_UDP, (sport[g], dport[g])),
    )
    v = t[vx]
    vxlan = Vxlan(
        outer=_tunnel_outer(rows[v], version, src_pos[v], IPPROTO_UDP, (sport[v], dport[v])),
        inner=l4[v] + 16,
        end=l4[v] + 8 + size[vx],
    )
    # Off the tunnel ports, Teredo is tried on any UDP (the tunnel ports' rules decided).
    u = np.flatnonzero(udp & ~on_tunnel_port)
    keep[u[_teredo_exact(buf, l4[u], seg[u])]] = False
    # A DNS-SD service type needs a label "_tcp" or "_udp" (any case) in the DNS message
    # (which lies within the segment), so those bytes after a length byte 4: without
    # them the reference finds no names and leaves no details. Nor does it when the
    # message's first name (at byte 12, UDP's byte 20) starts with a malformed label
    # type (0x40 or 0x80): dnssd reads names in order and stops at the first bad one.
    for number, on_port in on_dns_port.items():
        d = np.flatnonzero(keep & on_port)
        if number == IPPROTO_UDP and d.size:
            first = np.where(seg[d] > 20, buf[np.where(seg[d] > 20, l4[d] + 20, 0)] & 0xC0, 0x40)
            d = d[(first == 0) | (first == 0xC0)]
        if d.size:
            keep[d[has_proto_label(buf, l4[d], l4[d] + seg[d])]] = False
    tcp = np.flatnonzero(keep & (ip_proto == IPPROTO_TCP))
    flags = np.full(rows.size, -1, np.int32)
    flags[tcp] = buf[l4[tcp] + 13]
    return Network(
        rows=rows[keep],
        ip_version=np.full(int(keep.sum()), version, np.uint8),
        src_pos=src_pos[keep],
        ip_proto=ip_proto[keep],
        src_port=sport[keep],
        dst_port=dport[keep],
        tcp_flags=flags[keep],
        vxlan=vxlan,
        gre=gre,
        geneve=geneve,
        ipip=ipip,
    )


def _tunnel_outer(
    rows: I64, version: int, src_pos: I64, ip_proto: int, ports: tuple[I32, I32] | None = None
) -> Network:
    """The outer columns of packets carrying a tunnel (UDP: with their ports)."""
    none = np.full(rows.size, -1, np.int32)
    return Network(
        rows=rows,
        ip_version=np.full(rows.size, version, np.uint8),
        src_pos=src_pos,
        ip_proto=np.full(rows.size, ip_proto, np.int32),
        src_port=none if ports is None else ports[0],
        dst_port=none if ports is None else ports[1],
        tcp_flags=none,
    )


def _geneve(buf: U8, l4: I64, size: I64, outer: Network) -> Gre:
    """The Geneve datagrams (headers checked: tunnels._geneve) whose inner network layer
    is captured: as GRE's, the inner EtherType (of the inner Ethernet frame for
    transparent bridging) and where its network layer starts."""
    inner = l4 + 16 + (buf[l4 + 8] & 0x3F).astype(np.int64) * 4
    end = l4 + 8 + size
    protocol = u16(buf, l4 + 10)
    bridge = protocol == tunnels.ETH_BRIDGE
    ok = np.where(bridge, end - inner >= 14, end > inner)
    inner, end, protocol, bridge = inner[ok], end[ok], protocol[ok], bridge[ok]
    outer = outer.take(np.flatnonzero(ok))
    b = np.flatnonzero(bridge)
    protocol[b] = u16(buf, inner[b] + 12)
    inner[b] += 14
    return Gre(outer=outer, etype=protocol, l3=inner, end=end)


def _gre(buf: U8, rows: I64, l4: I64, seg: I64, version: int, src_pos: I64) -> Gre:
    """The GRE packets among ``rows`` whose inner packet is for the kernels (tunnels.gre):
    version 0 without routing, not ERSPAN nor PPP, an inner network layer captured."""
    ok = seg >= 4
    rows, l4, seg, src_pos = rows[ok], l4[ok], seg[ok], src_pos[ok]
    flags = u16(buf, l4)
    protocol = u16(buf, l4 + 2)
    # Checksum, key and sequence number words follow the fixed header when flagged.
    words = ((flags & 0x8000) > 0).astype(np.int64)
    words += (flags & 0x2000) > 0
    words += (flags & 0x1000) > 0
    inner = l4 + 4 + 4 * words
    end = l4 + seg
    bridge = protocol == tunnels.ETH_BRIDGE
    ok = ((flags & 0x4007) == 0) & ~IS_GRE_APART[protocol]
    ok &= np.where(bridge, end - inner >= 14, end > inner)
    rows, src_pos, inner, end = rows[ok], src_pos[ok], inner[ok], end[ok]
    protocol, bridge = protocol[ok], bridge[ok]
    b = np.flatnonzero(bridge)
    protocol[b] = u16(buf, inner[b] + 12)  # the inner Ethernet frame's EtherType
    inner[b] += 14
    outer = _tunnel_outer(rows, version, src_pos, IPPROTO_GRE)
    return Gre(outer=outer, etype=protocol, l3=inner, end=end)


def ipv4(
    buf: U8, rows: I64, l3: I64, end: I64, fragments: list[Fragments] | None = None
) -> Network:
    """IPv4 packets that are not fragments (ip._ipv4); ``buf[l3] >> 4`` must be 4. With
    ``fragments``, first fragments are decoded too, and the fragments' facts (first and
    later ones, whose later Network the list gets too) are added to it."""
    keep = end - l3 >= 20
    rows, l3, end = rows[keep], l3[keep], end[keep]
    hlen = (buf[l3] & 0x0F).astype(np.int64) * 4
    total = u16(buf, l3 + 2).astype(np.int64)
    frag = u16(buf, l3 + 6)
    avail = end - l3
    keep = (hlen >= 20) & (hlen <= avail) & ((total == 0) | (total >= hlen))
    if fragments is not None:
        # Later fragments carry no transport header: the IP header says all (ip._ipv4).
        f = np.flatnonzero(keep & ((frag & 0x3FFF) != 0))
        fragments.append(Fragments(rows[f], u16(buf, l3[f] + 4), frag[f]))
        later = f[(frag[f] & 0x1FFF) != 0]
        fragments[-1].later = Network(
            rows=rows[later],
            ip_version=np.full(later.size, 4, np.uint8),
            src_pos=l3[later] + 12,
            ip_proto=buf[l3[later] + 9].astype(np.int32),
            src_port=np.full(later.size, -1, np.int32),
            dst_port=np.full(later.size, -1, np.int32),
            tcp_flags=np.full(later.size, -1, np.int32),
        )
        keep &= (frag & 0x1FFF) == 0
    else:
        keep &= (frag & 0x3FFF) == 0
    rows, l3, hlen, total, avail = rows[keep], l3[keep], hlen[keep], total[keep], avail[keep]
    # Total length 0 means "as captured" (TSO); else the payload ends at the total
    # length or at the end of the capture, whichever is first.
    stop = np.where(total == 0, avail, np.minimum(total, avail))
    ip_proto = buf[l3 + 9].astype(np.int32)
    # AH is skipped to the protocol it authenticates (ip._ipv4): left to the reference.
    keep = ip_proto != ip.IPV6_AH
    rows, l3, hlen, stop, ip_proto = rows[keep], l3[keep], hlen[keep], stop[keep], ip_proto[keep]
    return _transport(buf, rows, l3 + hlen, stop - hlen, ip_proto, 4, l3 + 12)


def ipv6(buf: U8, rows: I64, l3: I64, end: I64) -> Network:
    """IPv6 packets that are not fragments, through their extension headers (ip._ipv6)."""
    keep = end - l3 >= 40
    rows, l3, end = rows[keep], l3[keep], end[keep]
    ip_proto = buf[l3 + 6].astype(np.int32)
    plen = u16(buf, l3 + 4).astype(np.int64)
    avail = end - l3
    stop = np.where(plen == 0, avail, np.minimum(40 + plen, avail))
    off = np.full(rows.size, 40, np.int64)
    ext = np.flatnonzero(IS_IPV6_EXTENSION[ip_proto])
    if ext.size:
        keep = np.ones(rows.size, np.bool_)
        keep[ext] = False  # until the walk gets through
        ip_proto[ext], off[ext], through = _ipv6_extensions(buf, l3[ext], stop[ext], ip_proto[ext])
        keep[ext[through]] = True
        rows, l3, stop, ip_proto, off = rows[keep], l3[keep], stop[keep], ip_proto[keep], off[keep]
    return _transport(buf, rows, l3 + off, stop - off, ip_proto, 6, l3 + 8)


def _ipv6_extensions(buf: U8, l3: I64, stop: I64, nh: I32) -> tuple[I32, I64, Mask]:
    """Walk the extension headers of IPv6 packets at ``l3`` (``stop``: the end of each
    packet from its header): the upper-layer protocol, its offset, and which packets got
    through. Hop-by-hop, routing, destination options and AH headers are skipped, and a
    fragment header saying the packet is whole; a fragment, a header cut short or more
    than MAX_STEPS headers are the reference's (not through)."""
    nh = nh.copy()
    off = np.full(l3.size, 40, np.int64)
    through = ~IS_IPV6_EXTENSION[nh]
    todo = np.flatnonzero(~through)
    for _ in range(MAX_STEPS):
        if not todo.size:
            break
        p, h, room = l3[todo] + off[todo], nh[todo], stop[todo] - off[todo]
        is_ah = h == ip.IPV6_AH
        frag = h == ip.IPV6_FRAGMENT
        # The length byte is read only where it is captured (room >= 2).
        size = np.where(room >= 2, buf[l3[todo] + np.where(room >= 2, off[todo] + 1, 0)], 0)
        size = np.where(is_ah, (size.astype(np.int64) + 2) * 4, (size.astype(np.int64) + 1) * 8)
        size[frag] = 8
        fits = (room >= 2) & (room >= size)
        whole = np.ones(todo.size, np.bool_)
        f = np.flatnonzero(frag & fits)
        whole[f] = (u16(buf, p[f] + 2) & 0xFFF9) == 0  # no offset, no more fragments
        go = fits & whole
        moved = todo[go]
        nh[moved] = buf[p[go]]
        off[moved] += size[go]
        done = ~IS_IPV6_EXTENSION[nh[moved]]
        through[moved[done]] = True
        todo = moved[~done]
    return nh, off, through


def network(
    buf: U8, layer: Layer3, fragments: list[Fragments] | None = None
) -> tuple[Network, Network]:
    """The IPv4 and IPv6 rows of ``layer`` decoded (rows that drop out are absent); with
    ``fragments``, IPv4 fragments too (see :func:`ipv4`)."""
    ip = (layer.kind == KIND_IP) | (layer.kind == KIND_IPV6)
    sel = np.flatnonzero(ip & (layer.end > layer.l3))
    nibble = buf[layer.l3[sel]] >> 4
    v4 = sel[(nibble == 4) & (layer.kind[sel] == KIND_IP)]
    v6 = sel[nibble == 6]
    return (
        ipv4(buf, layer.rows[v4], layer.l3[v4], layer.end[v4], fragments),
        ipv6(buf, layer.rows[v6], layer.l3[v6], layer.end[v6]),
    )
