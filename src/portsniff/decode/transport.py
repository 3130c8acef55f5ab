"""Transport headers of the reference decoder: TCP, UDP, SCTP and DCCP ports.

Rules (the other engines follow them exactly):

- ``proto`` names come from the IP protocol number alone: 6 tcp, 17 udp, 132 sctp,
  33 dccp, 1 icmp, 58 icmpv6, anything else "other".
- Ports are the first 4 bytes of the header (source, destination) and are reported
  whenever those 4 bytes are there, except for SCTP, whose ports need the whole
  12-byte common header (as in tshark). A header shorter than its fixed size (TCP 20,
  UDP 8, SCTP 12, DCCP 12) is "truncated TCP header" etc., even when the ports could
  be read.
- ``tcp_flags`` is TCP byte 13 (CWR..FIN; the NS bit is not included).
- The application payload (used for DNS) starts after the TCP data offset (which must
  be >= 20 and captured) or after the 8-byte UDP header, and UDP's ends at the UDP
  length when that is between 8 and what was captured.
"""

from __future__ import annotations

from dataclasses import dataclass

PORT_PROTOS: dict[int, str] = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp"}
PROTO_NAMES: dict[int, str] = {**PORT_PROTOS, 1: "icmp", 58: "icmpv6"}
MIN_HEADER = {6: 20, 17: 8, 132: 12, 33: 12}


def proto_name(ip_proto: int) -> str:
    """The ``Decoded.proto`` name for an IP protocol number."""
    return PROTO_NAMES.get(ip_proto, "other")


@dataclass(frozen=True, slots=True)
class Ports:
    """What a TCP/UDP/SCTP/DCCP header says."""

    src_port: int | None
    dst_port: int | None
    tcp_flags: int | None
    payload: bytes
    problem: str | None = None


def parse_ports(ip_proto: int, seg: bytes) -> Ports:
    """Ports (and TCP flags, payload) of the ``ip_proto`` header at the start of ``seg``."""
    name = PORT_PROTOS[ip_proto].upper()
    if len(seg) < (12 if ip_proto == 132 else 4):
        return Ports(None, None, None, b"", f"truncated {name} header")
    src = (seg[0] << 8) | seg[1]
    dst = (seg[2] << 8) | seg[3]
    flags = seg[13] if ip_proto == 6 and len(seg) >= 14 else None
    if len(seg) < MIN_HEADER[ip_proto]:
        return Ports(src, dst, flags, b"", f"truncated {name} header")
    payload = b""
    if ip_proto == 6:
        doff = (seg[12] >> 4) * 4
        if 20 <= doff <= len(seg):
            payload = seg[doff:]
    elif ip_proto == 17:
        ulen = (seg[4] << 8) | seg[5]
        payload = seg[8:ulen] if 8 <= ulen <= len(seg) else seg[8:]
    return Ports(src, dst, flags, payload)
