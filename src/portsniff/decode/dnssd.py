"""DNS-SD service types and instance names in a DNS message (mDNS, DNS).

Rules (the other engines follow them exactly):

- The reference decoder looks at UDP payloads with port 53 or 5353 on either side and
  TCP payloads with port 53 on either side (those start with the 2-byte DNS length).
- Names looked at: every question name, the owner names of PTR, SRV and TXT records in
  the answer, authority and additional sections, and the target names of PTR records.
  Parsing stops quietly at the first malformed or truncated item; what was read before
  counts. Malformed DNS is not a decoding problem (the payload may not be DNS at all).
- Compression pointers are followed (at most 32 per name, 255 name bytes), so loops end.
- In a name, the service type is the rightmost pair of labels ``_x`` + ``_tcp``/``_udp``
  (``_tcp``/``_udp`` compared case-insensitively, ``_x`` longer than the underscore).
  ``_dns-sd._udp`` (DNS-SD's own browsing names such as
  ``_services._dns-sd._udp.local``) is not a service type and is ignored.
- The instance name is the label just before the type plus everything after it, e.g.
  ``Kitchen._airplay._tcp.local``, when that label exists, is not ``_sub`` and does not
  start with ``_`` (``_printer._sub._http._tcp.local`` is a subtype, no instance).
- Labels are UTF-8 (undecodable bytes replaced); ``.`` and ``\\`` inside a label are
  escaped with a backslash. Case is kept as sent; duplicates are removed
  case-insensitively (the first spelling seen wins) and results are sorted
  case-insensitively.
"""

from __future__ import annotations

import struct

DNS_PORTS_UDP = frozenset({53, 5353})
DNS_PORTS_TCP = frozenset({53})
MAX_JUMPS = 32
MAX_NAME = 255
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_SRV = 33
NAMED_TYPES = frozenset({TYPE_PTR, TYPE_TXT, TYPE_SRV})
PROTO_LABELS = (b"_tcp", b"_udp")
META_TYPE = "_dns-sd._udp"


def read_name(msg: bytes, off: int) -> tuple[list[bytes], int] | None:
    """The labels of the name at ``off`` and the offset after it, or None if malformed."""
    labels: list[bytes] = []
    after: int | None = None
    jumps = 0
    size = 0
    pos = off
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                return None
            if after is None:
                after = pos + 2
            jumps += 1
            if jumps > MAX_JUMPS:
                return None
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n & 0xC0:  # 0x40/0x80: extended and reserved label types
            return None
        if pos + 1 + n > len(msg):
            return None
        size += n + 1
        if size > MAX_NAME:
            return None
        labels.append(msg[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return labels, (pos if after is None else after)


def _text(label: bytes) -> str:
    return label.decode("utf-8", "replace").replace("\\", "\\\\").replace(".", "\\.")


def service_of(labels: list[bytes]) -> tuple[str | None, str | None]:
    """(service type, instance name) that a name's labels carry, each possibly None."""
    for i in range(len(labels) - 2, -1, -1):
        if labels[i + 1].lower() in PROTO_LABELS and labels[i][:1] == b"_" and len(labels[i]) > 1:
            stype = f"{_text(labels[i])}.{_text(labels[i + 1])}"
            if stype.lower() == META_TYPE:
                return None, None
            instance = None
            if i >= 1:
                before = labels[i - 1]
                if before[:1] != b"_" and before.lower() != b"_sub":
                    instance = ".".join(_text(label) for label in labels[i - 1 :])
            return stype, instance
    return None, None


def _names(msg: bytes) -> list[list[bytes]]:
    """The names of a DNS message that may carry DNS-SD service names (module rules)."""
    found: list[list[bytes]] = []
    if len(msg) < 12:
        return found
    qd, an, ns, ar = struct.unpack_from("!HHHH", msg, 4)
    pos = 12
    for _ in range(qd):
        got = read_name(msg, pos)
        if got is None:
            return found
        labels, pos = got
        found.append(labels)
        pos += 4
        if pos > len(msg):
            return found
    for _ in range(an + ns + ar):
        got = read_name(msg, pos)
        if got is None or len(msg) - got[1] < 10:
            return found
        labels, pos = got
        rtype, _rclass, _ttl, rdlength = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        if rdlength > len(msg) - pos:
            return found
        if rtype in NAMED_TYPES:
            found.append(labels)
        if rtype == TYPE_PTR:
            target = read_name(msg, pos)
            if target is not None:
                found.append(target[0])
        pos += rdlength
    return found


def dedupe_names(items: list[str]) -> tuple[str, ...]:
    """Unique names, case-insensitively (the first spelling kept), sorted."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.casefold(), item)
    return tuple(seen[key] for key in sorted(seen))


#: Messages whose names are kept (mDNS announcements and queries repeat byte for byte),
#: and the largest message kept: at most ~3 MB.
_CACHED, _CACHED_SIZE = 2048, 1500
_names_of: dict[bytes, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def service_names(msg: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(service types, instance names) named in the DNS message ``msg``; never raises."""
    if len(msg) > _CACHED_SIZE:
        return _service_names(msg)
    got = _names_of.get(msg)
    if got is None:
        if len(_names_of) >= _CACHED:
            _names_of.clear()
        got = _names_of[msg] = _service_names(msg)
    return got


def _service_names(msg: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    types: list[str] = []
    instances: list[str] = []
    for labels in _names(msg):
        stype, instance = service_of(labels)
        if stype is not None:
            types.append(stype)
        if instance is not None:
            instances.append(instance)
    return dedupe_names(types), dedupe_names(instances)


def dns_payload(proto: str, src_port: int, dst_port: int, payload: bytes) -> bytes | None:
    """The DNS message in a transport payload, or None when the ports are not DNS's."""
    if proto == "udp" and (src_port in DNS_PORTS_UDP or dst_port in DNS_PORTS_UDP):
        return payload
    if proto == "tcp" and (src_port in DNS_PORTS_TCP or dst_port in DNS_PORTS_TCP):
        if len(payload) < 2:
            return None
        length = (payload[0] << 8) | payload[1]
        return payload[2 : 2 + length]
    return None
