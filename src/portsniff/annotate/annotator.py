"""Label decoded packets with the registry: service side, fragments, tunnels, ICMP quotes,
DNS-SD. Output order is always frame order."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from portsniff.annotate.records import DnssdLabel, EndpointLabel, PacketRecord, label_fields
from portsniff.annotate.side import FlowSides, decide
from portsniff.decode.batch import DecodedBatch
from portsniff.decode.packet import PROTOS, Decoded, Endpoints
from portsniff.registry.record import TRANSPORTS, PortLabel
from portsniff.timestamps import seconds

if TYPE_CHECKING:
    from portsniff.registry.index import RegistryIndex

#: How long a non-first fragment waits for its first fragment before it is reported as
#: unresolved: whichever comes first, packets read after it or seconds of capture time.
FRAGMENT_WINDOW_PACKETS = 10_000
FRAGMENT_WINDOW_SECONDS = 30.0
_MAX_FRAGMENT_KEYS = 100_000


@dataclass(slots=True)
class AnnotateCounts:
    """What the annotator saw; ``problems`` counts each kind of problem."""

    packets: int = 0
    labelled: int = 0
    unlabelled: int = 0
    malformed: int = 0
    non_ip: int = 0
    fragments: int = 0
    unresolved_fragments: int = 0
    problems: dict[str, int] = field(default_factory=dict)

    def add_problem(self, problem: str) -> None:
        self.problems[problem] = self.problems.get(problem, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "packets": self.packets,
            "labelled": self.labelled,
            "unlabelled": self.unlabelled,
            "malformed": self.malformed,
            "non_ip": self.non_ip,
            "fragments": self.fragments,
            "unresolved_fragments": self.unresolved_fragments,
            "problems": dict(sorted(self.problems.items())),
        }


@dataclass(slots=True)
class _Row:
    frame: int
    file: str
    ts_ns: int
    wirelen: int
    caplen: int
    src_ip: str | None
    dst_ip: str | None
    proto: str
    src_port: int | None
    dst_port: int | None
    tcp_flags: int | None
    detail: Decoded | None
    vlan: tuple[int, ...] = ()  # the tags of a row without a detail
    seq: int = 0
    record: PacketRecord | None = None  # set once labelled


class Annotator:
    """Turns DecodedBatches into PacketRecords, in frame order.

    Call :meth:`feed` for each batch, then :meth:`finish`; both yield records. A non-first
    fragment that arrives before its first holds back output until the first arrives or
    the fragment window passes (then it is output with null ports, counted unresolved).
    """

    def __init__(self, index: RegistryIndex, *, flows: FlowSides | None = None) -> None:
        self.index = index
        self.flows = flows if flows is not None else FlowSides()
        self.counts = AnnotateCounts()
        self._labels: dict[tuple[str, int], PortLabel] = {}
        self._dnssd: dict[str, DnssdLabel] = {}
        self._first_fragments: OrderedDict[
            tuple[str, str, int, int], tuple[int | None, int | None, int | None]
        ] = OrderedDict()
        self._waiting: dict[tuple[str, str, int, int], list[_Row]] = {}
        self._queue: deque[_Row] = deque()
        self._seq = 0
        self._addr_cache: dict[bytes, str] = {}

    # -- registry lookups, cached per (transport, port) --------------------------------

    def lookup(self, transport: str, port: int) -> PortLabel:
        key = (transport, port)
        label = self._labels.get(key)
        if label is None:
            label = self._labels[key] = self.index.lookup(transport, port)
        return label

    def _assigned(self, transport: str, port: int) -> bool:
        return self.lookup(transport, port).status == "assigned"

    # -- feeding ---------------------------------------------------------------------

    def feed(
        self, batch: DecodedBatch, mask: npt.NDArray[np.bool_] | None = None
    ) -> Iterator[PacketRecord]:
        """Label the packets of ``batch`` (those ``mask`` keeps); yields records ready."""
        detail = batch.detail
        rows = range(len(batch)) if mask is None else np.flatnonzero(mask).tolist()
        for i in rows:
            proto = PROTOS[int(batch.proto[i])]
            sp = int(batch.src_port[i])
            dp = int(batch.dst_port[i])
            fl = int(batch.tcp_flags[i])
            row = _Row(
                frame=batch.first_frame + i,
                file=batch.file,
                ts_ns=int(batch.ts_ns[i]),
                wirelen=int(batch.wirelen[i]),
                caplen=int(batch.caplen[i]),
                src_ip=self._addr(batch, i, "src"),
                dst_ip=self._addr(batch, i, "dst"),
                proto=proto,
                src_port=None if sp < 0 else sp,
                dst_port=None if dp < 0 else dp,
                tcp_flags=None if fl < 0 else fl,
                detail=detail(i),
                vlan=batch.vlan(i),
            )
            yield from self._add(row)

    def finish(self) -> Iterator[PacketRecord]:
        """Output what is still held back (fragments whose first never came)."""
        while self._queue:
            row = self._queue.popleft()
            if row.record is None:
                self._give_up(row)
            assert row.record is not None
            yield row.record
        self._waiting.clear()

    def _addr(self, batch: DecodedBatch, i: int, which: str) -> str | None:
        if not batch.ip_version[i]:
            return None
        raw = bytes(batch.src_addr[i] if which == "src" else batch.dst_addr[i])
        key = raw + bytes((int(batch.ip_version[i]),))
        text = self._addr_cache.get(key)
        if text is None:
            text = batch.ip_str(i, which)
            assert text is not None
            if len(self._addr_cache) > 100_000:
                self._addr_cache.clear()
            self._addr_cache[key] = text
        return text

    def _add(self, row: _Row) -> Iterator[PacketRecord]:
        self._seq += 1
        row.seq = self._seq
        d = row.detail
        frag = d.fragment if d is not None else None
        if frag is not None:
            self.counts.fragments += 1
            if frag.offset == 0:
                self._first_fragments[frag.key] = (row.src_port, row.dst_port, row.tcp_flags)
                if len(self._first_fragments) > _MAX_FRAGMENT_KEYS:
                    self._first_fragments.popitem(last=False)
                row.record = self._record(row)
                for waiting in self._waiting.pop(frag.key, ()):
                    waiting.src_port, waiting.dst_port = row.src_port, row.dst_port
                    waiting.record = self._record(waiting)
            else:
                first = self._first_fragments.get(frag.key)
                if first is not None:
                    row.src_port, row.dst_port = first[0], first[1]
                    row.record = self._record(row)
                else:
                    self._waiting.setdefault(frag.key, []).append(row)
        else:
            row.record = self._record(row)
        self._queue.append(row)
        yield from self._drain(row)

    def _drain(self, newest: _Row) -> Iterator[PacketRecord]:
        queue = self._queue
        while queue:
            head = queue[0]
            if head.record is None:
                too_old = (
                    newest.seq - head.seq > FRAGMENT_WINDOW_PACKETS
                    or (newest.ts_ns - head.ts_ns) / 1e9 > FRAGMENT_WINDOW_SECONDS
                )
                if not too_old:
                    return
                self._give_up(head)
            queue.popleft()
            assert head.record is not None
            yield head.record

    def _give_up(self, row: _Row) -> None:
        d = row.detail
        if d is not None and d.fragment is not None:
            rows = self._waiting.get(d.fragment.key)
            if rows and row in rows:
                rows.remove(row)
                if not rows:
                    del self._waiting[d.fragment.key]
        self.counts.unresolved_fragments += 1
        self.counts.add_problem("non-first fragment whose first fragment was not seen")
        row.record = self._record(row)

    # -- labelling ------------------------------------------------------------------

    def _record(self, row: _Row) -> PacketRecord:
        counts = self.counts
        counts.packets += 1
        d = row.detail
        problem = d.problem if d is not None else None
        if problem:
            counts.malformed += 1
            counts.add_problem(problem)
        if row.src_ip is None:
            counts.non_ip += 1
        ts = seconds(row.ts_ns)
        label: PortLabel | None = None
        side: str | None = None
        basis: str | None = None
        ambiguous = False
        sp, dp = row.src_port, row.dst_port
        if sp is not None and dp is not None and row.proto in TRANSPORTS:
            ls = self.lookup(row.proto, sp)
            ld = self.lookup(row.proto, dp)
            decision = self.flows.side(
                row.proto,
                (row.src_ip, sp),
                (row.dst_ip, dp),
                row.tcp_flags,
                ls.status == "assigned",
                ld.status == "assigned",
                ts,
            )
            side = "dst" if decision.service == (row.dst_ip, dp) else "src"
            label = ld if side == "dst" else ls
            basis = decision.basis
            ambiguous = decision.ambiguous
        if label is not None and label.service:
            counts.labelled += 1
        else:
            counts.unlabelled += 1
        return PacketRecord(
            frame=row.frame,
            file=row.file,
            ts=ts,
            len=row.wirelen,
            caplen=row.caplen,
            src_ip=row.src_ip,
            dst_ip=row.dst_ip,
            proto=row.proto,
            src_port=sp,
            dst_port=dp,
            service_side=side,
            basis=basis,
            ambiguous=ambiguous,
            dnssd=self._dnssd_labels(d) if d is not None and d.dnssd else (),
            inner=tuple(self._inner(e, ts) for e in d.inner) if d is not None else (),
            quoted=self._quoted(d.quoted) if d is not None and d.quoted else None,
            fragment=d is not None and d.fragment is not None,
            vlan=d.vlan if d is not None else row.vlan,
            **label_fields(label),
            ts_ns=row.ts_ns,
            problem=problem,
            tcp_flags=row.tcp_flags,
        )

    def _inner(self, e: Endpoints, ts: float) -> EndpointLabel:
        service: PortLabel | None = None
        if e.src_port is not None and e.dst_port is not None and e.proto in TRANSPORTS:
            ls = self.lookup(e.proto, e.src_port)
            ld = self.lookup(e.proto, e.dst_port)
            decision = self.flows.side(
                e.proto,
                (e.src_ip, e.src_port),
                (e.dst_ip, e.dst_port),
                None,
                ls.status == "assigned",
                ld.status == "assigned",
                ts,
            )
            service = ld if decision.service == (e.dst_ip, e.dst_port) else ls
        return _endpoint_label(e, service)

    def _quoted(self, e: Endpoints) -> EndpointLabel:
        return quoted_label(e, self.lookup)

    def _dnssd_labels(self, d: Decoded) -> tuple[DnssdLabel, ...]:
        return dnssd_labels(self.index, self._dnssd, d)


def quoted_label(e: Endpoints, lookup: Callable[[str, int], PortLabel]) -> EndpointLabel:
    """The label of a header an ICMP error quotes. The quoted packet is not traffic of
    its own: its side is decided statelessly, as for a flow's first packet."""
    service: PortLabel | None = None
    if e.src_port is not None and e.dst_port is not None and e.proto in TRANSPORTS:
        ls = lookup(e.proto, e.src_port)
        ld = lookup(e.proto, e.dst_port)
        decision = decide(
            (e.src_ip, e.src_port),
            (e.dst_ip, e.dst_port),
            None,
            ls.status == "assigned",
            ld.status == "assigned",
        )
        service = ld if decision.service == (e.dst_ip, e.dst_port) else ls
    return _endpoint_label(e, service)


def dnssd_labels(
    index: RegistryIndex, cache: dict[str, DnssdLabel], d: Decoded
) -> tuple[DnssdLabel, ...]:
    """The registry's entries for the DNS-SD types a packet names (``cache`` keeps them
    per lower-cased type)."""
    out = []
    for service_type in d.dnssd:
        cached = cache.get(service_type.lower())
        if cached is None:
            records = index.dnssd(service_type)
            rec = records[0] if records else None
            cached = DnssdLabel(
                type=service_type,
                service=rec.service_name if rec else None,
                description=rec.description if rec else None,
            )
            if len(cache) < 10_000:
                cache[service_type.lower()] = cached
        suffix = "." + service_type.lower() + "."
        instances = tuple(i for i in d.dnssd_instances if suffix in (i.lower() + "."))
        out.append(DnssdLabel(cached.type, cached.service, cached.description, instances))
    return tuple(out)


def _endpoint_label(e: Endpoints, service: PortLabel | None) -> EndpointLabel:
    return EndpointLabel(
        proto=e.proto,
        src_ip=e.src_ip,
        dst_ip=e.dst_ip,
        src_port=e.src_port,
        dst_port=e.dst_port,
        service=service.service if service else None,
        service_port=service.port if service else None,
        tunnel=e.tunnel,
    )
