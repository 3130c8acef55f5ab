"""Bidirectional flows in Zeek's vocabulary, built from labelled packets.

A flow is keyed by protocol and its two endpoints. ``orig`` is the client and ``resp``
the service side, by the annotator's rules. A TCP SYN on a 4-tuple whose connection was
closed (FIN or RST seen) starts a new flow, as tshark's ``tcp.stream`` does. Memory is
bounded by live flows: finished and idle flows leave the table as FlowRecords.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from portsniff.annotate.records import PacketRecord

SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04
PORTED = ("tcp", "udp", "sctp", "dccp")


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One conversation (Zeek's conn.log names)."""

    uid: str
    ts: float
    duration: float
    proto: str
    orig_ip: str | None
    orig_port: int | None
    resp_ip: str | None
    resp_port: int | None
    orig_pkts: int
    orig_bytes: int
    resp_pkts: int
    resp_bytes: int
    service: str | None
    service_port: int | None
    status: str | None
    port_class: str | None
    basis: str | None
    ambiguous: bool
    conn_state: str | None
    tunnel: str | None  # set for inner flows: the tunnel that carried them
    vlan: tuple[int, ...]

    # The filters are made from the fields when asked for, not kept: a capture of many
    # flows keeps every FlowRecord, and the two texts were most of each one's memory.
    @property
    def bpf(self) -> str:
        """A BPF selecting exactly this flow's packets (both directions)."""
        return self._filters()[0]

    @property
    def display_filter(self) -> str:
        """A Wireshark display filter selecting exactly this flow's packets."""
        return self._filters()[1]

    def _filters(self) -> tuple[str, str]:
        return flow_filters(
            self.proto,
            (self.orig_ip, self.orig_port),
            (self.resp_ip, self.resp_port),
            bool(self.vlan),
        )

    def __reduce__(self) -> tuple[Any, tuple[tuple[Any, ...]]]:
        # The fields in order (a summary sent between processes holds every flow:
        # pickling by field names and slots state took several times longer).
        return _new_record, (_stored_values(self),)

    def as_dict(self) -> dict[str, Any]:
        out = dict(zip(_STORED, _stored_values(self), strict=True))
        out["vlan"] = list(self.vlan)  # the only tuple field: a JSON list
        out["bpf"], out["display_filter"] = self._filters()
        return out


_STORED: tuple[str, ...] = tuple(f.name for f in fields(FlowRecord))
_stored_values = attrgetter(*_STORED)
#: A flow's output fields (JSON keys, CSV columns): the stored ones, then the filters.
FLOW_FIELDS: tuple[str, ...] = (*_STORED, "bpf", "display_filter")


class _Flow:
    __slots__ = (
        "ambiguous",
        "basis",
        "first",
        "flags_orig",
        "flags_resp",
        "last",
        "orig",
        "orig_bytes",
        "orig_is_a",
        "orig_pkts",
        "port_class",
        "proto",
        "resp",
        "resp_bytes",
        "resp_pkts",
        "service",
        "service_port",
        "status",
        "tunnel",
        "uid",
        "vlan",
    )

    def __init__(
        self,
        proto: str,
        orig: tuple[str | None, int | None],
        resp: tuple[str | None, int | None],
        ts: float,
        tunnel: str | None,
        uid: str,
    ) -> None:
        self.uid = uid
        self.proto = proto
        self.orig = orig
        self.resp = resp
        self.first = self.last = ts
        self.orig_pkts = self.orig_bytes = self.resp_pkts = self.resp_bytes = 0
        self.flags_orig = self.flags_resp = 0
        self.service: str | None = None
        self.service_port: int | None = None
        self.status: str | None = None
        self.port_class: str | None = None
        self.basis: str | None = None
        self.ambiguous = False
        self.tunnel = tunnel
        self.vlan: tuple[int, ...] = ()
        # Whether orig is endpoint A of the vectorised summary's canonical key (fixed
        # for the flow: known after its first block there).
        self.orig_is_a: bool | None = None

    @property
    def closed(self) -> bool:
        return bool((self.flags_orig | self.flags_resp) & (FIN | RST))

    def __reduce__(self) -> tuple[Any, tuple[tuple[Any, ...]]]:
        # The values in slot order (a summary's half sends thousands of live flows:
        # pickling slots by name took several times longer).
        return _flow_from, (_flow_values(self),)


_flow_values = attrgetter(*_Flow.__slots__)


def _flow_from(values: tuple[Any, ...]) -> _Flow:
    """A _Flow with these slot values (unpickling)."""
    f = _Flow.__new__(_Flow)
    # One unpacking assignment (7x faster than setattr by name): the slots in order,
    # which the test of pickling every slot checks.
    (
        f.ambiguous,
        f.basis,
        f.first,
        f.flags_orig,
        f.flags_resp,
        f.last,
        f.orig,
        f.orig_bytes,
        f.orig_is_a,
        f.orig_pkts,
        f.port_class,
        f.proto,
        f.resp,
        f.resp_bytes,
        f.resp_pkts,
        f.service,
        f.service_port,
        f.status,
        f.tunnel,
        f.uid,
        f.vlan,
    ) = values
    return f


def conn_state(
    proto: str, orig_flags: int, resp_flags: int, resp_pkts: int, orig_pkts: int = 1
) -> str | None:
    """Zeek's ``conn_state`` for TCP (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, SH,
    OTH); for other transports SF when both sides spoke, else S0."""
    if proto != "tcp":
        return "SF" if resp_pkts and orig_pkts else "S0"
    syn = bool(orig_flags & SYN)
    synack = bool(resp_flags & SYN)
    if not syn and not synack:
        return "OTH"
    if syn and not synack:
        if resp_flags & RST:
            return "REJ"
        if orig_flags & RST:
            return "RSTOS0"
        if orig_flags & FIN:
            return "SH"
        return "S0"
    if orig_flags & RST:
        return "RSTO"
    if resp_flags & RST:
        return "RSTR"
    if orig_flags & FIN and resp_flags & FIN:
        return "SF"
    if orig_flags & FIN:
        return "S2"
    if resp_flags & FIN:
        return "S3"
    return "S1"


def _host_bpf(ip: str) -> str:
    return f"{'ip6' if ':' in ip else 'ip'} host {ip}"


def flow_filters(
    proto: str, orig: tuple[str | None, int | None], resp: tuple[str | None, int | None], vlan: bool
) -> tuple[str, str]:
    """A BPF and a Wireshark display filter that select exactly this flow's packets
    (both directions). BPF needs ``vlan`` to see into 802.1Q frames."""
    (a, ap), (b, bp) = orig, resp
    if a is None or b is None:
        return "", ""
    ipf = "ipv6" if ":" in a else "ip"
    if ap is not None and bp is not None and proto in PORTED:
        one = f"src host {a} and src port {ap} and dst host {b} and dst port {bp}"
        two = f"src host {b} and src port {bp} and dst host {a} and dst port {ap}"
        bpf = f"{proto} and (({one}) or ({two}))"
        d1 = f"{ipf}.src == {a} && {proto}.srcport == {ap} && {ipf}.dst == {b} && {proto}.dstport == {bp}"
        d2 = f"{ipf}.src == {b} && {proto}.srcport == {bp} && {ipf}.dst == {a} && {proto}.dstport == {ap}"
        display = f"{proto} && (({d1}) || ({d2}))"
    else:
        bpf = f"{proto} and {_host_bpf(a)} and {_host_bpf(b)}"
        display = f"{proto} && {ipf}.addr == {a} && {ipf}.addr == {b}"
    if vlan:
        bpf = f"({bpf}) or (vlan and ({bpf}))"
    return bpf, display


#: FlowRecord's slot setters in field order: a record made by them skips the frozen
#: __init__'s object.__setattr__ per field (a summary makes one per flow; a scan, one
#: per packet or two).
_SETTERS = tuple(getattr(FlowRecord, name).__set__ for name in _STORED)


def _new_record(values: tuple[Any, ...]) -> FlowRecord:
    """``FlowRecord(*values)``, faster (FlowRecord has no checks in its __init__)."""
    r = object.__new__(FlowRecord)
    for put, v in zip(_SETTERS, values, strict=True):
        put(r, v)
    return r


def flow_record(f: _Flow) -> FlowRecord:
    """The FlowRecord of a finished flow."""
    orig, resp = f.orig, f.resp
    return _new_record(
        (
            f.uid,
            f.first,
            round(f.last - f.first, 9),
            f.proto,
            orig[0],
            orig[1],
            resp[0],
            resp[1],
            f.orig_pkts,
            f.orig_bytes,
            f.resp_pkts,
            f.resp_bytes,
            f.service,
            f.service_port,
            f.status,
            f.port_class,
            f.basis,
            f.ambiguous,
            conn_state(f.proto, f.flags_orig, f.flags_resp, f.resp_pkts, f.orig_pkts),
            f.tunnel,
            f.vlan,
        )
    )


def record_rank(r: FlowRecord) -> tuple[Any, ...]:
    """A finished flow's place in the top flows: most bytes first, then earliest, ...; the
    uid's number ends ties (the order is the same however the flows were collected: a
    capture summarised in parts finishes them in another order)."""
    return (-(r.orig_bytes + r.resp_bytes), r.ts, r.proto, r.orig_ip or "", uid_number(r.uid))


def live_rank(f: _Flow) -> tuple[Any, ...]:
    """:func:`record_rank` of the record a live flow would finish as."""
    return (-(f.orig_bytes + f.resp_bytes), f.first, f.proto, f.orig[0] or "", uid_number(f.uid))


def uid_number(uid: str) -> int:
    """The creation number in a flow's uid (``F12`` -> 12; 0 for another form)."""
    return int(uid[1:]) if uid[1:].isdigit() else 0


def table_key(
    tunnel: str | None, proto: str, a: tuple[str, int | None], b: tuple[str, int | None]
) -> tuple[Any, ...]:
    """FlowTable's key of a flow: the same for both directions (endpoints in order)."""
    # Ordered by (address, port or 0), a tie keeping (a, b): a comparison, not sorted()
    # (each new flow of a scan makes a key).
    if (b[0], b[1] or 0) < (a[0], a[1] or 0):
        return (tunnel, proto, b, a)
    return (tunnel, proto, a, b)


class FlowTable:
    """Live flows; ``add`` returns nothing, finished flows come out of ``drain``/``finish``.

    Idle flows (no packet for ``idle_timeout`` seconds of capture time) and the least
    recently seen flows beyond ``max_flows`` are finished early, so memory is bounded by
    the number of live flows.
    """

    def __init__(self, *, idle_timeout: float = 3600.0, max_flows: int = 1_000_000) -> None:
        self._live: OrderedDict[tuple[Any, ...], _Flow] = OrderedDict()
        self._done: list[FlowRecord] = []
        self._next_uid = 0
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        #: When set, finished flows it refuses get no record: they go to ``passed``
        #: (a summary that keeps its top flows need not make a record of every flow).
        self.screen: Callable[[_Flow], bool] | None = None
        self.passed: list[_Flow] = []

    def __len__(self) -> int:
        return len(self._live)

    def add(self, r: PacketRecord) -> str | None:
        """Count one packet (and its tunnelled inner headers) into its flows; returns the
        uid of the packet's own (outer) flow, None for non-IP packets."""
        if r.src_ip is None or r.dst_ip is None:
            return None
        uid = self._count(r.proto, r.src_ip, r.src_port, r.dst_ip, r.dst_port, r, None)
        for e in r.inner:
            if e.src_ip is not None and e.dst_ip is not None:
                self._count(
                    e.proto,
                    e.src_ip,
                    e.src_port,
                    e.dst_ip,
                    e.dst_port,
                    r,
                    e.tunnel,
                    e.service,
                    e.service_port,
                )
        self._expire(r.ts)
        return uid

    def _count(
        self,
        proto: str,
        sip: str,
        sport: int | None,
        dip: str,
        dport: int | None,
        r: PacketRecord,
        tunnel: str | None,
        inner_service: str | None = None,
        inner_port: int | None = None,
    ) -> str:
        src = (sip, sport)
        dst = (dip, dport)
        key = table_key(tunnel, proto, src, dst)
        flow = self._live.get(key)
        flags = (r.tcp_flags or 0) if tunnel is None and proto == "tcp" else 0
        if flow is not None and flags & SYN and not flags & ACK and flow.closed:
            self._finish(key)
            flow = None
        if flow is None:
            if (tunnel is None and r.service_side == "src") or (
                tunnel is not None
                and inner_port is not None
                and inner_port == sport
                and sport != dport
            ):
                orig, resp = dst, src
            else:
                orig, resp = src, dst
            self._next_uid += 1
            flow = self._live[key] = _Flow(proto, orig, resp, r.ts, tunnel, f"F{self._next_uid}")
            if tunnel is None:
                flow.service, flow.service_port = r.service, r.service_port
                flow.status, flow.port_class = r.status, r.port_class
                flow.basis, flow.ambiguous = r.basis, r.ambiguous
            else:
                flow.service, flow.service_port = inner_service, inner_port
            flow.vlan = r.vlan
        else:
            self._live.move_to_end(key)
        flow.last = max(flow.last, r.ts)
        flow.first = min(flow.first, r.ts)
        if src == flow.orig:
            flow.orig_pkts += 1
            flow.orig_bytes += r.len
            flow.flags_orig |= flags
        else:
            flow.resp_pkts += 1
            flow.resp_bytes += r.len
            flow.flags_resp |= flags
        return flow.uid

    def _finish(self, key: tuple[Any, ...]) -> None:
        f = self._live.pop(key)
        if self.screen is None or self.screen(f):
            self._done.append(flow_record(f))
        else:
            self.passed.append(f)

    def _expire(self, now: float) -> None:
        live = self._live
        while live:
            key, flow = next(iter(live.items()))
            if len(live) > self.max_flows or now - flow.last > self.idle_timeout:
                self._finish(key)
            else:
                break

    def drain(self) -> Iterator[FlowRecord]:
        """Flows finished so far (each once)."""
        done, self._done = self._done, []
        yield from done

    def finish(self) -> Iterator[FlowRecord]:
        """Finish every live flow, then drain."""
        for key in list(self._live):
            self._finish(key)
        yield from self.drain()
