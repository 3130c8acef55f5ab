"""The ``pyshark`` engine: tshark's dissectors (through pyshark) decide every field.

pyshark runs ``tshark -T ek`` over the whole capture file (EK output keeps every
occurrence of a protocol, e.g. the inner IP header of a tunnel or the one quoted by an
ICMP error, in order). ``decode(block)`` consumes tshark's frames for the block's packets
in order, pairing them by (timestamp, frame length) and skipping frames tshark shows for
pcapng blocks that are not packets (custom blocks). The chain in ``frame.protocols``
(``eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp``) is walked with the project's rules
(see :mod:`portsniff.decode.reference`): outermost addresses, first transport header's
ports, tunnels in ``inner``, ICMP quotes, fragments, VLAN ids, DNS-SD names.

What tshark cannot tell (documented differences, named by the cross-engine test):

- ``problem``: tshark's expert messages are not the project's problem texts; this
  engine sets ``problem`` only for link types tshark does not decode
  ("unsupported link type N") and for packets tshark did not show.
- Truncated or malformed headers: tshark dissects what it can by its own rules.
"""

from __future__ import annotations

import asyncio
import importlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from portsniff.capture.block import RawBlock
from portsniff.decode.batch import DecodedBatch
from portsniff.decode.dnssd import dedupe_names, service_of
from portsniff.decode.packet import Decoded, Endpoints, Fragment, IpLayer
from portsniff.errors import EngineUnavailable, UsageError

PORT_PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33}
IP_NUMBERS = {**PORT_PROTOS, "icmp": 1, "icmpv6": 58, "gre": 47, "esp": 50, "ah": 51}
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERRORS = frozenset({1, 2, 3, 4})
IPIP_NAMES = {(4, 4): "ipip", (4, 41): "6in4", (6, 4): "4in6", (6, 41): "6in6"}
UDP_TUNNELS = {"vxlan": "vxlan", "geneve": "geneve", "teredo": "teredo"}
IP_LAYERS = ("ip", "ipv6")
#: Link types tshark dissects to the network layer the way the project does.
SUPPORTED_LINKTYPES = frozenset(
    {0, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 127, 192, 228, 229, 239, 258, 276}
)
#: tshark preferences: no reassembly (ports stay on the first fragment / segment).
PREFS = {
    "ip.defragment": "FALSE",
    "ipv6.defragment": "FALSE",
    "tcp.desegment_tcp_streams": "FALSE",
    # Teredo on other ports than 3544 (the project recognises it by its IPv6 length).
    "teredo.heuristic_teredo": "TRUE",
}


def _pyshark() -> Any:
    if shutil.which("tshark") is None:
        raise EngineUnavailable("the pyshark engine needs tshark: apt-get install tshark")
    try:
        return importlib.import_module("pyshark")
    except ImportError:
        raise EngineUnavailable(
            "the pyshark engine needs pyshark: pip install 'portsniff[pyshark]'"
        ) from None


@dataclass(frozen=True, slots=True)
class _Frame:
    """What this engine keeps of one tshark frame."""

    number: int
    epoch_us: int
    length: int
    chain: list[tuple[str, dict[str, Any]]]  # (protocol, its fields) in frame order


def _value(fields: dict[str, Any], key: str) -> Any:
    """A field's first value (EK gives lists for repeated fields)."""
    value = fields.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _values(fields: dict[str, Any], key: str) -> list[Any]:
    value = fields.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    text = str(value)
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _epoch_us(text: Any) -> int:
    """Microseconds of tshark's ``frame.time_epoch`` text (EK may print a float)."""
    seconds, _, fraction = str(text).partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _frame_of(packet: Any) -> _Frame:
    info: dict[str, Any] = packet.frame_info._fields_dict
    protocols = str(info.get("frame_frame_protocols") or "")
    layers: dict[str, list[dict[str, Any]]] = {}
    for layer in packet.layers:
        raw = layer._fields_dict  # EK: a list of dicts when the protocol occurs again
        layers.setdefault(layer.layer_name, []).extend(raw if isinstance(raw, list) else [raw])
    seen: dict[str, int] = {}
    chain: list[tuple[str, dict[str, Any]]] = []
    for name in protocols.split(":"):
        k = seen.get(name, 0)
        seen[name] = k + 1
        occurrences = layers.get(name, [])
        chain.append((name, occurrences[k] if k < len(occurrences) else {}))
    return _Frame(
        number=int(info.get("frame_frame_number") or 0),
        epoch_us=_epoch_us(info.get("frame_frame_time_epoch") or 0),
        length=int(info.get("frame_frame_len") or 0),
        chain=chain,
    )


def _ip_header(
    name: str, fields: dict[str, Any], chain: list[tuple[str, dict[str, Any]]], pos: int
) -> tuple[int, str, str, int, Fragment | None, bool]:
    """(version, src, dst, upper protocol, fragment, first) of the IP layer at ``pos``."""
    p = name + "_" + name + "_"
    src, dst = str(_value(fields, p + "src")), str(_value(fields, p + "dst"))
    if name == "ip":
        proto = _int(_value(fields, "ip_ip_proto")) or 0
        offset = (_int(_value(fields, "ip_ip_frag_offset")) or 0) * 8  # 8-byte units
        more = _flag(_value(fields, "ip_ip_flags_mf"))
        ident = _int(_value(fields, "ip_ip_id")) or 0
        fragment = Fragment((src, dst, ident, proto), offset, more) if more or offset else None
        return 4, src, dst, proto, fragment, offset == 0
    # IPv6: the upper layer is the last extension header's "next header". EK nests the
    # extension headers in the ipv6 layer grouped by kind, so the chain says the order.
    proto = _int(_value(fields, "ipv6_ipv6_nxt")) or 0
    seen: dict[str, int] = {}
    j = pos + 1
    while j < len(chain) and chain[j][0].startswith("ipv6."):
        kind = chain[j][0].split(".", 1)[1]
        k = seen.get(kind, 0)
        seen[kind] = k + 1
        ext = _nth(fields.get(f"ipv6_{kind}"), k)
        nxt = _int(_value(ext, f"ipv6_{kind}_ipv6_{kind}_nxt"))
        proto = proto if nxt is None else nxt
        j += 1
    fragment = None
    first = True
    frag = _nth(fields.get("ipv6_fraghdr"), 0)
    pre = "ipv6_fraghdr_ipv6_fraghdr_"
    if pre + "ident" in frag:
        frag_offset = (_int(_value(frag, pre + "offset")) or 0) * 8
        more = _flag(_value(frag, pre + "more"))
        ident = _int(_value(frag, pre + "ident")) or 0
        nh = _int(_value(frag, pre + "nxt"))
        if more or frag_offset:
            fragment = Fragment((src, dst, ident, proto if nh is None else nh), frag_offset, more)
            first = frag_offset == 0
    return 6, src, dst, proto, fragment, first


def _nth(value: Any, k: int) -> dict[str, Any]:
    """The ``k``-th occurrence of a nested EK group (a dict, or a list of dicts)."""
    if isinstance(value, dict):
        return value if k == 0 else {}
    if isinstance(value, list) and k < len(value) and isinstance(value[k], dict):
        item: dict[str, Any] = value[k]
        return item
    return {}


def _dns_names(fields: dict[str, Any]) -> list[str]:
    """Question names, record owner names and PTR targets of a DNS message.

    EK lists each field's values separately and drops repeated values, so an owner
    name cannot be paired with its record type: every owner name is looked at (the
    project looks only at PTR/SRV/TXT owners; an A record owned by a service instance
    name would count here - a documented difference).
    """
    names = [str(v) for v in _values(fields, "dns_dns_qry_name")]
    names.extend(str(v) for v in _values(fields, "dns_dns_resp_name"))
    names.extend(str(v) for v in _values(fields, "dns_dns_ptr_domain_name"))
    return names


def _dnssd(fields: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    types: list[str] = []
    instances: list[str] = []
    for name in _dns_names(fields):
        labels = [label.encode() for label in name.split(".") if label]
        stype, instance = service_of(labels)
        if stype is not None:
            types.append(stype)
        if instance is not None:
            instances.append(instance)
    return dedupe_names(types), dedupe_names(instances)


def _next_ip(chain: list[tuple[str, dict[str, Any]]], pos: int, stop: tuple[str, ...] = ()) -> int:
    """Index of the next IP layer after ``pos`` (or -1), not looking past ``stop`` names."""
    for j in range(pos + 1, len(chain)):
        name = chain[j][0]
        if name in IP_LAYERS:
            return j
        if name in stop:
            return -1
    return -1


def _decode_ip(chain: list[tuple[str, dict[str, Any]]], pos: int, depth: int) -> IpLayer:
    name, fields = chain[pos]
    version, src, dst, proto, fragment, first = _ip_header(name, fields, chain, pos)
    layer = IpLayer(_text(src), _text(dst), _proto_name(proto), proto, fragment=fragment)
    if not first:
        return layer
    # The protocol right after the IP header (skipping its extension header entries).
    j = pos + 1
    while j < len(chain) and chain[j][0].startswith("ipv6."):
        j += 1
    upper = chain[j][0] if j < len(chain) else ""
    upper_fields = chain[j][1] if j < len(chain) else {}
    if upper in PORT_PROTOS and PORT_PROTOS[upper] == proto:
        pre = f"{upper}_{upper}_"
        layer.src_port = _int(_value(upper_fields, pre + "srcport"))
        layer.dst_port = _int(_value(upper_fields, pre + "dstport"))
        if upper == "tcp":
            flags = _int(_value(upper_fields, "tcp_tcp_flags"))
            layer.tcp_flags = None if flags is None else flags & 0xFF
        rest = [n for n, _ in chain[j + 1 :]]
        dns = next((n for n in rest if n in ("dns", "mdns")), None)
        if dns is not None and (
            {layer.src_port, layer.dst_port} & ({53, 5353} if upper == "udp" else {53})
        ):
            layer.dnssd, layer.instances = _dnssd(chain[j + 1 + rest.index(dns)][1])
        if upper == "udp" and rest and rest[0] in UDP_TUNNELS:
            _tunnel(layer, UDP_TUNNELS[rest[0]], chain, j + 1, depth, descend=False)
    elif upper in ("icmp", "icmpv6"):
        icmp_type = _int(_value(upper_fields, f"{upper}_{upper}_type"))
        errors = ICMP_ERRORS if upper == "icmp" else ICMPV6_ERRORS
        if icmp_type in errors:
            layer.quoted = _quoted(upper_fields)
    elif proto in (4, 41) and upper in IP_LAYERS:
        _tunnel(layer, IPIP_NAMES[(version, proto)], chain, j - 1, depth, descend=True)
    elif proto == 47 and upper == "gre":
        _tunnel(layer, "gre", chain, j, depth, descend=True)
    return layer


def _quoted(icmp: dict[str, Any]) -> Endpoints | None:
    """The endpoints quoted by an ICMP error: EK nests its IP and transport headers."""
    for qname in IP_LAYERS:
        qfields = icmp.get(qname)
        if isinstance(qfields, dict):
            break
    else:
        return None
    _, qsrc, qdst, qproto, _, qfirst = _ip_header(qname, qfields, [], 0)
    if qname == "ipv6":
        # The quote's extension headers are not in the frame's chain: the quoted
        # transport header tshark dissected says the upper protocol.
        for t, number in PORT_PROTOS.items():
            if isinstance(icmp.get(t), dict):
                qproto = number
    sport = dport = None
    for t, number in PORT_PROTOS.items():
        tfields = icmp.get(t)
        if qfirst and number == qproto and isinstance(tfields, dict):
            sport = _int(_value(tfields, f"{t}_{t}_srcport"))
            dport = _int(_value(tfields, f"{t}_{t}_dstport"))
    return Endpoints(_proto_name(qproto), _text(qsrc), _text(qdst), sport, dport)


def _tunnel(
    layer: IpLayer,
    name: str,
    chain: list[tuple[str, dict[str, Any]]],
    pos: int,
    depth: int,
    *,
    descend: bool,
) -> None:
    k = _next_ip(chain, pos, stop=("arp", "vxlan", "geneve", "gre"))
    if k < 0:
        layer.inner = [Endpoints("other", None, None, None, None, name)]
        return
    sub = _decode_ip(chain, k, depth + 1)
    entry = Endpoints(sub.proto, sub.src_ip, sub.dst_ip, sub.src_port, sub.dst_port, name)
    layer.inner = [entry, *sub.inner]
    if descend:
        layer.proto, layer.ip_proto = sub.proto, sub.ip_proto
        layer.src_port, layer.dst_port = sub.src_port, sub.dst_port
        layer.tcp_flags, layer.quoted = sub.tcp_flags, sub.quoted
        layer.dnssd, layer.instances = sub.dnssd, sub.instances
        if layer.fragment is None:
            layer.fragment = sub.fragment


def _proto_name(number: int) -> str:
    for name, value in IP_NUMBERS.items():
        if value == number and name in ("tcp", "udp", "sctp", "dccp", "icmp", "icmpv6"):
            return name
    return "other"


def _text(addr: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def decode_frame(linktype: int, frame: _Frame) -> Decoded:
    """One packet as tshark dissected it, by the project's rules."""
    if linktype not in SUPPORTED_LINKTYPES:
        return Decoded(linktype=linktype, problem=f"unsupported link type {linktype}")
    chain = frame.chain
    vlan: list[int] = []
    for i, (name, fields) in enumerate(chain):
        if name in ("vlan", "ieee8021ad"):
            vlan.extend(_int(v) or 0 for v in _values(fields, f"{name}_{name}_id")[:1])
        elif name == "arp":
            return Decoded(linktype=linktype, proto="arp", vlan=tuple(vlan))
        elif name in IP_LAYERS:
            if f"{name}_{name}_dst" not in fields:
                # tshark could not read the whole fixed header.
                return Decoded(linktype=linktype, vlan=tuple(vlan), problem="truncated IP header")
            layer = _decode_ip(chain, i, 0)
            return layer.decoded(linktype, tuple(vlan))
    return Decoded(linktype=linktype, vlan=tuple(vlan))


class PysharkEngine:
    """Decodes a capture with tshark through pyshark (see the module docstring)."""

    name = "pyshark"

    def __init__(self, path: str) -> None:
        if path in ("-", "<stdin>"):
            raise UsageError("the pyshark engine reads files only (tshark reads the file again)")
        self.path = path
        self._pyshark = _pyshark()
        self._capture: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frames: Iterator[Any] | None = None
        self._pending: _Frame | None = None
        #: tshark frames that matched no packet (pcapng custom blocks and the like).
        self.skipped_frames = 0

    def _next_frame(self) -> _Frame | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._frames is None:
            # pyshark runs tshark on the thread's current event loop: give it one of its
            # own, so that close() can close it without touching anybody else's.
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._capture = self._pyshark.FileCapture(
                self.path, keep_packets=False, use_ek=True, override_prefs=PREFS
            )
            self._frames = iter(self._capture)
        try:
            return _frame_of(next(self._frames))
        except StopIteration:
            return None
        except (KeyError, ValueError):
            # pyshark 0.6 fails on frames without a timestamp (pcapng custom blocks) and
            # its frame generator ends there: the packets after it go without tshark.
            self._frames = iter(())
            return None

    def _frame_for(self, wirelen: int) -> _Frame | None:
        """The next tshark frame of this length (skipping frames that are not packets).

        Frames come in file order; tshark adds frames for some pcapng blocks that are not
        packets (custom blocks). Times are not compared: tshark normalises invalid
        timestamps (a nanosecond fraction >= 1e9) differently from the capture reader.
        """
        skipped: list[_Frame] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                break
            if frame.length == wirelen:
                self.skipped_frames += len(skipped)
                return frame
            skipped.append(frame)
            if len(skipped) > 16:
                break
        # Nothing matched: keep the first unmatched frame for the next packet.
        if skipped:
            self._pending = skipped[0]
        return None

    def decode(self, block: RawBlock) -> DecodedBatch:
        """Decode every packet of ``block`` (rows in the block's order)."""
        n = len(block)
        batch = DecodedBatch.empty(block.file, block.first_frame, n)
        batch.ts_ns[:] = block.ts_ns
        batch.wirelen[:] = block.wirelen
        batch.caplen[:] = block.caplen
        batch.linktype[:] = block.linktype
        batch.comments = dict(block.comments)
        wirelen = block.wirelen.tolist()
        linktype = block.linktype.tolist()
        for i in range(n):
            frame = self._frame_for(wirelen[i])
            if frame is None:
                d = Decoded(linktype=linktype[i], problem="tshark did not show this packet")
            else:
                d = decode_frame(linktype[i], frame)
            batch.set_decoded(i, d)
        return batch

    def close(self) -> None:
        """Stop tshark and close pyshark's event loop."""
        if self._capture is not None:
            self._capture.close()
            self._capture = None
            self._frames = None
        if self._loop is not None:
            self._loop.close()
            asyncio.set_event_loop(None)
            self._loop = None
