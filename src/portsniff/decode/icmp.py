"""ICMP and ICMPv6 errors of the reference decoder: the endpoints they quote.

Rules (the other engines follow them exactly):

- Errors are ICMP types 3 (unreachable), 4 (source quench), 5 (redirect), 11 (time
  exceeded) and 12 (parameter problem), and ICMPv6 types 1-4. Other types quote nothing.
- The quoted IP header starts after the 8-byte ICMP header: IPv4 or IPv6 by the nibble
  inside ICMP, IPv6 (with extension headers, same rules as the outer) inside ICMPv6.
  Without a readable fixed IP header there is no quote (``None``), which is not a
  decoding problem of the packet.
- The quote's ports are the first 4 bytes after the quoted IP header when its protocol
  is TCP/UDP/SCTP/DCCP, it is not a non-first fragment and those bytes were quoted.
  Quoted tunnels are not followed.
"""

from __future__ import annotations

from portsniff.decode.ip import parse_ip
from portsniff.decode.packet import Endpoints
from portsniff.decode.transport import PORT_PROTOS, proto_name

ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERRORS = frozenset({1, 2, 3, 4})


def is_error(ip_proto: int, icmp_type: int) -> bool:
    """Whether an ICMP (``ip_proto`` 1) or ICMPv6 (58) message of this type is an error."""
    return icmp_type in (ICMP_ERRORS if ip_proto == 1 else ICMPV6_ERRORS)


def quoted(ip_proto: int, seg: bytes) -> Endpoints | None:
    """The endpoints quoted by the ICMP (1) / ICMPv6 (58) message ``seg``, if an error."""
    if len(seg) < 8 or not is_error(ip_proto, seg[0]):
        return None
    hdr = parse_ip(seg[8:], "ip" if ip_proto == 1 else "ipv6")
    if isinstance(hdr, str):
        return None
    src_port = dst_port = None
    if hdr.problem is None and hdr.first and hdr.ip_proto in PORT_PROTOS:
        body = hdr.payload
        if len(body) >= 4:
            src_port = (body[0] << 8) | body[1]
            dst_port = (body[2] << 8) | body[3]
    return Endpoints(proto_name(hdr.ip_proto), hdr.src, hdr.dst, src_port, dst_port)
