"""IPv4 and IPv6 headers of the reference decoder.

Rules (the other engines follow them exactly):

- "ip" dispatches on the first nibble (4 or 6, else "bad IP version N"); "ipv6" needs 6.
- IPv4: 20 bytes and IHL >= 5 ("truncated IPv4 header", "bad IPv4 header length"); the
  options must be captured ("truncated IPv4 options"); total length 0 means "as
  captured" (TSO), a total length below the header length is "bad IPv4 total length"
  (addresses kept, nothing above decoded); the payload ends at the total length or the
  end of the captured bytes, whichever is first. An AH header (51) is skipped as in
  IPv6 ("truncated AH header" when it is cut); ``ip_proto`` is the protocol after it.
- IPv6: 40 bytes; payload length 0 means "as captured" (jumbograms, TSO). Extension
  headers hop-by-hop (0), routing (43), destination options (60), fragment (44) and
  AH (51, length in 4-byte units + 2) are skipped, as many as there are (each takes
  at least 8 bytes, so the walk ends); anything else
  (TCP, UDP, ESP 50, no-next-header 59, mobility 135, ...) is the upper layer.
  A truncated extension header is "truncated IPv6 extension header" with ``ip_proto``
  the header that could not be read.
- A packet is a fragment when IPv4 MF is set or its offset is > 0, or an IPv6 fragment
  header has M set or offset > 0 (an "atomic" IPv6 fragment header is skipped and
  the packet is whole). The key is (src, dst, identification, protocol) where protocol
  is the IPv4 protocol field or the fragment header's next header (which can differ
  from ``ip_proto`` when AH or other extension headers follow). Non-first fragments
  stop there: ``first`` is False and nothing above IP is decoded.
- Addresses are text as Python's ``ipaddress`` writes them.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from functools import lru_cache

from portsniff.decode.packet import Fragment

IPV6_SKIPPED = frozenset({0, 43, 60})
IPV6_FRAGMENT = 44
IPV6_AH = 51


@dataclass(frozen=True, slots=True)
class IPHeader:
    """One IP header: addresses, final upper-layer protocol and the bytes above it.

    ``payload`` starts at the upper-layer header (empty for non-first fragments and
    when ``problem`` stopped decoding).
    """

    version: int
    src: str
    dst: str
    ip_proto: int
    payload: bytes
    fragment: Fragment | None
    first: bool
    problem: str | None = None


def ipv4_text(raw: bytes) -> str:
    """Dotted-quad text of 4 address bytes."""
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


_WORDS = struct.Struct("!8H")
_MAPPED = (0, 0, 0, 0, 0, 0xFFFF)
_COLONS = ":%x:%x:%x:%x:%x:%x:%x:%x:"
_ZERO_RUNS = {k: ":0" * k + ":" for k in range(2, 9)}


@lru_cache(maxsize=4096)
def ipv6_text(raw: bytes) -> str:
    """RFC 5952 text of 16 address bytes (as ``ipaddress`` writes it)."""
    words = _WORDS.unpack(raw)
    if words[:6] == _MAPPED:
        # IPv4-mapped: written as this Python's ipaddress writes it (3.13 changed it).
        return str(ipaddress.IPv6Address(raw))
    # Written here (a capture of many hosts brings thousands of addresses: ipaddress
    # took ~6 us each): hex words, the first longest run of two or more zero words
    # "::". Between colons, a zero word is ":0:" and a run of k of them ":0" * k + ":".
    text = _COLONS % words
    if _ZERO_RUNS[2] not in text:
        return text[1:-1]
    for k in range(8, 2, -1):
        at = text.find(_ZERO_RUNS[k])
        if at >= 0:
            break
    else:
        k, at = 2, text.find(_ZERO_RUNS[2])
    return text[1:at] + "::" + text[at + 2 * k + 1 : -1]


def address_text(version: int, raw: bytes) -> str:
    """The text of an address column value (16 bytes; IPv4 in the first 4)."""
    return ipv4_text(raw[:4]) if version == 4 else ipv6_text(raw)


def parse_ip(pkt: bytes, kind: str) -> IPHeader | str:
    """The IP header at the start of ``pkt`` or, when there is none, the problem text.

    ``kind`` is "ip" (IPv4 or IPv6 by the first nibble) or "ipv6".
    """
    if not pkt:
        return "truncated IPv6 header" if kind == "ipv6" else "truncated IP header"
    version = pkt[0] >> 4
    if kind == "ipv6":
        if version != 6:
            return f"bad IPv6 version {version}"
        return _ipv6(pkt)
    if version == 4:
        return _ipv4(pkt)
    if version == 6:
        return _ipv6(pkt)
    return f"bad IP version {version}"


def _ipv4(pkt: bytes) -> IPHeader | str:
    if len(pkt) < 20:
        return "truncated IPv4 header"
    hlen = (pkt[0] & 0x0F) * 4
    if hlen < 20:
        return "bad IPv4 header length"
    total, ip_id, frag, proto = struct.unpack_from("!HHHxB", pkt, 2)
    src = ipv4_text(pkt[12:16])
    dst = ipv4_text(pkt[16:20])
    offset = (frag & 0x1FFF) * 8
    more = bool(frag & 0x2000)
    fragment = Fragment((src, dst, ip_id, proto), offset, more) if more or offset else None
    first = offset == 0
    if len(pkt) < hlen:
        return IPHeader(4, src, dst, proto, b"", fragment, first, "truncated IPv4 options")
    if total == 0:
        end = len(pkt)
    elif total < hlen:
        return IPHeader(4, src, dst, proto, b"", fragment, first, "bad IPv4 total length")
    else:
        end = min(total, len(pkt))
    if not first:
        return IPHeader(4, src, dst, proto, b"", fragment, first)
    payload = pkt[hlen:end]
    while proto == IPV6_AH:  # AH over IPv4: skip it like IPv6's extension header
        if len(payload) < 2 or len(payload) < (payload[1] + 2) * 4:
            return IPHeader(4, src, dst, proto, b"", fragment, first, "truncated AH header")
        proto, payload = payload[0], payload[(payload[1] + 2) * 4 :]
    return IPHeader(4, src, dst, proto, payload, fragment, first)


def _ipv6(pkt: bytes) -> IPHeader | str:
    if len(pkt) < 40:
        return "truncated IPv6 header"
    plen = (pkt[4] << 8) | pkt[5]
    end = len(pkt) if plen == 0 else min(40 + plen, len(pkt))
    src = ipv6_text(pkt[8:24])
    dst = ipv6_text(pkt[24:40])
    nh = pkt[6]
    off = 40
    fragment: Fragment | None = None
    while True:
        if nh in IPV6_SKIPPED or nh == IPV6_AH:
            if end - off < 2:
                break
            size = (pkt[off + 1] + 2) * 4 if nh == IPV6_AH else (pkt[off + 1] + 1) * 8
            if end - off < size:
                break
            nh = pkt[off]
            off += size
            continue
        if nh == IPV6_FRAGMENT:
            if end - off < 8:
                break
            next_header = pkt[off]
            field, ident = struct.unpack_from("!HI", pkt, off + 2)
            frag_offset = field & 0xFFF8
            more = bool(field & 0x1)
            nh = next_header
            off += 8
            if more or frag_offset:
                fragment = Fragment((src, dst, ident, next_header), frag_offset, more)
                if frag_offset:
                    return IPHeader(6, src, dst, nh, b"", fragment, False)
            continue
        return IPHeader(6, src, dst, nh, pkt[off:end], fragment, True)
    return IPHeader(6, src, dst, nh, b"", fragment, True, "truncated IPv6 extension header")
