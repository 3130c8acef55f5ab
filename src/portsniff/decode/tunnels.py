"""Tunnels of the reference decoder: where an inner packet starts inside an outer one.

Rules (the other engines follow them exactly):

- UDP tunnels are recognised by port, either side, lower matching port first: VXLAN
  4789, Geneve 6081, Teredo 3544. The payload must look right or it is not a tunnel
  (no inner entry, no problem: ephemeral ports may collide with these):
  VXLAN needs the I flag (0x08) and 8 header bytes, then Ethernet; Geneve needs version
  0, its options captured and a protocol type of 0x6558 (Ethernet) or another
  EtherType (>= 0x0600); Teredo skips an authentication (0x0001) and an origin
  indication (0x0000) header, then needs 40 bytes starting with nibble 6 (IPv6).
  A matching port whose payload does not fit is plain UDP (the other port is not tried).
- Teredo between a client and a relay uses other ports: on any other UDP port pair,
  a payload that is (after the Teredo indicators) exactly one whole IPv6 packet
  (nibble 6, 40 + payload length == the bytes left) with a Teredo address
  (2001:0::/32) at one end is Teredo too.
- GRE (IP protocol 47): version 0 skips checksum+offset (C or R bit), key (K) and
  sequence (S) words and source-route entries (R); version 1 (PPTP) skips key, sequence
  (S) and acknowledgement (A) words; other versions are not followed. The protocol
  type is then 0x6558 (Ethernet), 0x880b (PPP), 0x88be ERSPAN (type II with 8 header
  bytes when S is set, type I without), 0x22eb ERSPAN type III (12 bytes, +8 with the
  O flag), or any EtherType (IPv4, IPv6, MPLS, ...). ERSPAN tunnels are named
  "erspan", the rest "gre".
- IP-in-IP is named by the outer IP version and the protocol number (4 = IPv4 inside,
  41 = IPv6 inside): "ipip" (4 in 4), "6in4", "4in6", "6in6".
"""

from __future__ import annotations

import struct

from portsniff.decode import link
from portsniff.decode.link import Net

VXLAN_PORT = 4789
GENEVE_PORT = 6081
TEREDO_PORT = 3544
TEREDO_PREFIX = b"\x20\x01\x00\x00"
UDP_TUNNEL_PORTS = {VXLAN_PORT: "vxlan", GENEVE_PORT: "geneve", TEREDO_PORT: "teredo"}
ETH_BRIDGE = 0x6558
GRE_PPP = 0x880B
ERSPAN_2 = 0x88BE
ERSPAN_3 = 0x22EB
MAX_SRE = 16

#: (outer IP version, IP protocol) -> tunnel name for IP-in-IP.
IPIP_NAMES = {(4, 4): "ipip", (4, 41): "6in4", (6, 4): "4in6", (6, 41): "6in6"}


def udp_tunnel(src_port: int, dst_port: int, payload: bytes) -> tuple[str, bytes, Net] | None:
    """(tunnel name, inner bytes, inner network layer) of a UDP tunnel, or None."""
    for port in sorted({src_port, dst_port}):
        name = UDP_TUNNEL_PORTS.get(port)
        if name == "vxlan":
            if len(payload) < 8 or not payload[0] & 0x08:
                return None
            inner = payload[8:]
            return name, inner, link.ethernet(inner, 0)
        if name == "geneve":
            return _geneve(payload)
        if name == "teredo":
            return _teredo(payload, exact=False)
    return _teredo(payload, exact=True)


def _geneve(payload: bytes) -> tuple[str, bytes, Net] | None:
    if len(payload) < 8 or payload[0] >> 6 != 0:
        return None
    size = 8 + (payload[0] & 0x3F) * 4
    if size > len(payload):
        return None
    protocol = (payload[2] << 8) | payload[3]
    if protocol < 0x0600:
        return None
    inner = payload[size:]
    if protocol == ETH_BRIDGE:
        return "geneve", inner, link.ethernet(inner, 0)
    return "geneve", inner, link.after_ethertype(inner, 0, protocol, [])


def _teredo(payload: bytes, *, exact: bool) -> tuple[str, bytes, Net] | None:
    off = 0
    if len(payload) - off >= 4 and payload[off : off + 2] == b"\x00\x01":
        off += 4 + payload[off + 2] + payload[off + 3] + 9
    if len(payload) - off >= 8 and payload[off : off + 2] == b"\x00\x00":
        off += 8
    if len(payload) - off < 40 or payload[off] >> 4 != 6:
        return None
    if exact and 40 + ((payload[off + 4] << 8) | payload[off + 5]) != len(payload) - off:
        return None
    if exact and not (
        payload[off + 8 : off + 12] == TEREDO_PREFIX
        or payload[off + 24 : off + 28] == TEREDO_PREFIX
    ):
        # Off port 3544 one end must hold a Teredo address (2001:0::/32, RFC 4380):
        # otherwise a DNS query whose ID starts with 0x6 would pass for Teredo.
        return None
    inner = payload[off:]
    return "teredo", inner, Net("ipv6", 0)


def gre(payload: bytes) -> tuple[str, bytes, Net] | None:
    """(tunnel name, inner bytes, inner network layer) of a GRE packet, or None."""
    if len(payload) < 4:
        return None
    flags, protocol = struct.unpack_from("!HH", payload, 0)
    version = flags & 0x7
    off = 4
    if version == 0:
        if flags & 0xC000:
            off += 4
        if flags & 0x2000:
            off += 4
        if flags & 0x1000:
            off += 4
        if flags & 0x4000:
            for _ in range(MAX_SRE):
                if len(payload) - off < 4:
                    return None
                family, _sre_offset, sre_length = struct.unpack_from("!HBB", payload, off)
                off += 4 + sre_length
                if family == 0 and sre_length == 0:
                    break
            else:
                return None
    elif version == 1:
        off += 4 if flags & 0x2000 else 0
        off += 4 if flags & 0x1000 else 0
        off += 4 if flags & 0x0080 else 0
    else:
        return None
    if off > len(payload):
        return None
    name = "gre"
    if protocol == ERSPAN_2:
        name = "erspan"
        off += 8 if flags & 0x1000 else 0
    elif protocol == ERSPAN_3:
        name = "erspan"
        if len(payload) - off >= 12 and payload[off + 11] & 0x01:
            off += 8
        off += 12
    if off > len(payload):
        return None
    inner = payload[off:]
    if protocol in (ETH_BRIDGE, ERSPAN_2, ERSPAN_3):
        return name, inner, link.ethernet(inner, 0)
    if protocol == GRE_PPP:
        return name, inner, link.ppp(inner, 0)
    return name, inner, link.after_ethertype(inner, 0, protocol, [])
