"""The summary of one or more captures: what every summary report renders.

A Summary merges exactly with another (``merge``), so that chunks of a capture, files of
a directory or workers' results add up to the summary of the whole; its size grows with
services and flows, never with packets.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from portsniff.annotate.records import DnssdLabel, PacketRecord
from portsniff.flows import FlowRecord, FlowTable, _Flow, live_rank, record_rank

TRANSPORT_KEYS = ("tcp", "udp", "sctp", "dccp", "icmp", "icmpv6", "other_ip", "non_ip")
MAX_BINS = 240  # time bins per timeline; bins widen (x2) to stay under this
MAX_INSTANCES = 1000
#: Flows a summary that keeps its top ones holds beyond twice those before it prunes.
PRUNE_SLACK = 1024


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(slots=True)
class Timeline:
    """Bytes per time bin; bins are aligned to multiples of ``width`` seconds."""

    width: float = 1.0
    bins: dict[int, int] = field(default_factory=dict)

    def add(self, ts: float, nbytes: int) -> None:
        b = math.floor(ts / self.width)
        self.bins[b] = self.bins.get(b, 0) + nbytes
        if len(self.bins) > MAX_BINS:
            self._widen(self.width * 2)

    def _widen(self, width: float) -> None:
        while self.width < width:
            self.width *= 2
            merged: dict[int, int] = {}
            for b, v in self.bins.items():
                nb = b // 2
                merged[nb] = merged.get(nb, 0) + v
            self.bins = merged
        if len(self.bins) > MAX_BINS:
            self._widen(self.width * 2)

    def merge(self, other: Timeline) -> None:
        width = max(self.width, other.width)
        self._widen(width)
        o = Timeline(other.width, dict(other.bins))
        o._widen(width)
        # ``other`` alone may hold too many bins at that width: then it is wider still.
        self._widen(o.width)
        for b, v in o.bins.items():
            self.bins[b] = self.bins.get(b, 0) + v
        if len(self.bins) > MAX_BINS:
            self._widen(self.width * 2)

    def add_bins(self, width: float, bins: dict[int, int]) -> None:
        """``merge(Timeline(width, bins))``, without making that Timeline when the widths
        agree (a summary adds a block's bins to every service it saw)."""
        if width != self.width or len(bins) > MAX_BINS:
            self.merge(Timeline(width, dict(bins)))
            return
        own = self.bins
        get = own.get
        for b, v in bins.items():
            own[b] = get(b, 0) + v
        if len(own) > MAX_BINS:
            self._widen(self.width * 2)

    def points(self) -> list[tuple[float, int]]:
        return [(b * self.width, v) for b, v in sorted(self.bins.items())]


@dataclass(slots=True)
class ServiceRow:
    """Traffic on one (service, proto, port); ``service`` None for unassigned/reserved."""

    service: str | None
    proto: str
    port: int
    description: str | None = None
    status: str | None = None
    port_class: str | None = None
    flows: int = 0
    packets: int = 0
    bytes: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    unauthorized_use: str | None = None
    ambiguous: int = 0  # packets whose side was ambiguous
    vlan: bool = False
    timeline: Timeline = field(default_factory=Timeline)

    def merge(self, o: ServiceRow) -> None:
        self.flows += o.flows
        self.packets += o.packets
        self.bytes += o.bytes
        self.first_seen = _min(self.first_seen, o.first_seen)
        self.last_seen = _max(self.last_seen, o.last_seen)
        self.unauthorized_use = self.unauthorized_use or o.unauthorized_use
        self.ambiguous += o.ambiguous
        self.vlan = self.vlan or o.vlan
        self.timeline.merge(o.timeline)

    @property
    def flags(self) -> list[str]:
        out = []
        if self.unauthorized_use:
            out.append("iana-unauthorized-use-note")
        if self.status in ("reserved", "unassigned", "unlisted"):
            out.append(self.status)
        if self.ambiguous:
            out.append("ambiguous-side")
        return out

    def filters(self) -> tuple[str, str]:
        """BPF and display filter selecting this row's packets."""
        bpf = f"{self.proto} port {self.port}"
        if self.vlan:
            bpf = f"({bpf}) or (vlan and {bpf})"
        return bpf, f"{self.proto}.port == {self.port}"

    def as_dict(self, total_bytes: int) -> dict[str, Any]:
        bpf, display = self.filters()
        return {
            "service": self.service,
            "proto": self.proto,
            "port": self.port,
            "description": self.description,
            "status": self.status,
            "port_class": self.port_class,
            "flows": self.flows,
            "packets": self.packets,
            "bytes": self.bytes,
            "share": round(self.bytes / total_bytes, 6) if total_bytes else 0.0,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "flags": self.flags,
            "unauthorized_use": self.unauthorized_use,
            "bpf": bpf,
            "display_filter": display,
        }


@dataclass(slots=True)
class DnssdRow:
    """A DNS-SD service type seen on the network."""

    type: str
    service: str | None
    description: str | None
    packets: int = 0
    instances: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "service": self.service,
            "description": self.description,
            "packets": self.packets,
            "instances": sorted(self.instances),
        }


@dataclass(slots=True)
class Summary:
    """Everything the summary reports show; see module docstring."""

    caveat: str
    registry: list[dict[str, Any]]
    files: list[dict[str, Any]] = field(default_factory=list)
    linktypes: Counter[int] = field(default_factory=Counter)
    packets: int = 0
    bytes: int = 0
    malformed: int = 0
    truncated: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    services: dict[tuple[str | None, str, int], ServiceRow] = field(default_factory=dict)
    flows: list[FlowRecord] = field(default_factory=list)
    dnssd: dict[str, DnssdRow] = field(default_factory=dict)
    transports: dict[str, list[int]] = field(default_factory=dict)
    problems: Counter[str] = field(default_factory=Counter)
    #: Finished flows not kept in ``flows`` (a summary that reports only its top flows
    #: keeps those: its memory then grows with the live flows, not with all of them).
    flows_dropped: int = 0

    @property
    def flow_total(self) -> int:
        """Every conversation seen, kept or not."""
        return len(self.flows) + self.flows_dropped

    def keep_flows(self, n: int) -> None:
        """Keep only the first ``n`` flows of :meth:`top_flows`' order (the order is
        total: the top flows of merged summaries are then the top of their kept ones)."""
        if len(self.flows) > n:
            self.flows_dropped += len(self.flows) - n
            self.flows = self.top_flows(n)

    def merge(self, o: Summary) -> Summary:
        """Add ``o`` into this summary (exactly: counts add, spans widen)."""
        self.files.extend(o.files)
        self.linktypes.update(o.linktypes)
        self.packets += o.packets
        self.bytes += o.bytes
        self.malformed += o.malformed
        self.truncated += o.truncated
        self.first_ts = _min(self.first_ts, o.first_ts)
        self.last_ts = _max(self.last_ts, o.last_ts)
        for key, row in o.services.items():
            mine = self.services.get(key)
            if mine is None:
                self.services[key] = row
            else:
                mine.merge(row)
        self.flows.extend(o.flows)
        self.flows_dropped += o.flows_dropped
        for dkey, d in o.dnssd.items():
            m = self.dnssd.get(dkey)
            if m is None:
                self.dnssd[dkey] = d
            else:
                m.packets += d.packets
                m.instances |= d.instances
        for tkey, (p, b) in o.transports.items():
            t = self.transports.setdefault(tkey, [0, 0])
            t[0] += p
            t[1] += b
        self.problems.update(o.problems)
        return self

    def add_file(self, report: dict[str, Any], linktypes: Counter[int]) -> None:
        """Note one input file (its report and the link types it held)."""
        self.files.append(report)
        self.linktypes.update(linktypes)

    def add_dnssd(self, d: DnssdLabel) -> None:
        """Count one packet's mention of a DNS-SD service type (and its instances)."""
        row = self.dnssd.get(d.type.lower())
        if row is None:
            row = self.dnssd[d.type.lower()] = DnssdRow(d.type, d.service, d.description)
        row.packets += 1
        for inst in d.instances:
            if len(row.instances) < MAX_INSTANCES:
                row.instances.add(inst)

    # -- views the reports share -----------------------------------------------------

    def service_rows(self) -> list[ServiceRow]:
        """Assigned services, most bytes first."""
        rows = [r for r in self.services.values() if r.status == "assigned"]
        return sorted(rows, key=lambda r: (-r.bytes, r.proto, r.port, r.service or ""))

    def unknown_rows(self) -> list[ServiceRow]:
        """Traffic on unassigned and reserved ports, most bytes first."""
        rows = [r for r in self.services.values() if r.status != "assigned"]
        return sorted(rows, key=lambda r: (-r.bytes, r.proto, r.port))

    def top_flows(self, n: int | None) -> list[FlowRecord]:
        flows = sorted(self.flows, key=record_rank)
        return flows if n is None else flows[:n]

    def capture_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "linktypes": {str(k): v for k, v in sorted(self.linktypes.items())},
            "packets": self.packets,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "duration": (self.last_ts - self.first_ts)
            if self.first_ts is not None and self.last_ts is not None
            else None,
            "malformed": self.malformed,
            "truncated": self.truncated,
            "unreadable": [f["file"] for f in self.files if f.get("error")],
            "damaged": [f["file"] for f in self.files if f.get("damage")],
            "problems": dict(sorted(self.problems.items())),
        }

    def to_dict(self, top: int | None = None, *, flow_dicts: bool = True) -> dict[str, Any]:
        """The JSON document (docs/summary.schema.json). ``top`` limits the lists; with
        ``flow_dicts`` False, "flows" holds the FlowRecords (for a writer that encodes
        them itself)."""
        total = self.bytes
        services = self.service_rows()
        unknown = self.unknown_rows()
        if top is not None:
            services, unknown = services[:top], unknown[:top]
        flows = self.top_flows(top)
        return {
            "caveat": self.caveat,
            "registry": {"sources": self.registry},
            "capture": self.capture_dict(),
            "services": [r.as_dict(total) for r in services],
            "unknown_ports": [r.as_dict(total) for r in unknown],
            "flows": [f.as_dict() for f in flows] if flow_dicts else flows,
            "dnssd": [d.as_dict() for d in sorted(self.dnssd.values(), key=lambda d: d.type)],
            "transports": {
                k: {
                    "packets": self.transports.get(k, [0, 0])[0],
                    "bytes": self.transports.get(k, [0, 0])[1],
                }
                for k in TRANSPORT_KEYS
            },
        }


class SummaryBuilder:
    """Folds labelled packets (and file reports) into a Summary."""

    def __init__(
        self,
        caveat: str,
        registry: list[dict[str, Any]],
        flows: FlowTable | None = None,
        keep: int | None = None,
    ) -> None:
        self.summary = Summary(caveat=caveat, registry=registry)
        self.flow_table = flows if flows is not None else FlowTable()
        #: Finished flows kept: the top ``keep`` (None: all), for reports of the top ones.
        self.keep = keep
        self._flow_rows: dict[tuple[str | None, str, int], int] = {}

    def add(self, r: PacketRecord) -> None:
        s = self.summary
        s.packets += 1
        s.bytes += r.len
        if r.caplen < r.len:
            s.truncated += 1
        if r.problem:
            s.malformed += 1
            s.problems[r.problem] += 1
        s.first_ts = _min(s.first_ts, r.ts)
        s.last_ts = _max(s.last_ts, r.ts)
        if r.src_ip is None:
            tkey = "non_ip"
        elif r.proto in ("tcp", "udp", "sctp", "dccp", "icmp", "icmpv6"):
            tkey = r.proto
        else:
            tkey = "other_ip"
        t = s.transports.setdefault(tkey, [0, 0])
        t[0] += 1
        t[1] += r.len
        if r.service_port is not None:
            key = (r.service, r.proto, r.service_port)
            row = s.services.get(key)
            if row is None:
                row = s.services[key] = ServiceRow(
                    r.service, r.proto, r.service_port, r.description, r.status, r.port_class
                )
            row.packets += 1
            row.bytes += r.len
            row.first_seen = _min(row.first_seen, r.ts)
            row.last_seen = _max(row.last_seen, r.ts)
            if r.unauthorized_use:
                row.unauthorized_use = r.unauthorized_use
            if r.ambiguous:
                row.ambiguous += 1
            if r.vlan:
                row.vlan = True
            row.timeline.add(r.ts, r.len)
        for d in r.dnssd:
            s.add_dnssd(d)
        self.flow_table.add(r)
        self._collect(self.flow_table.drain())

    def add_file(self, report: dict[str, Any], linktypes: Counter[int]) -> None:
        self.summary.add_file(report, linktypes)

    def _collect(self, flows: Any) -> None:
        got = list(flows)
        s = self.summary
        s.flows.extend(got)
        self._count_flows(got)
        # Pruned now and then (a sort each time the list doubles past ``keep``).
        if self.keep is not None and len(s.flows) > 2 * self.keep + PRUNE_SLACK:
            s.keep_flows(self.keep)

    def _count_flows(self, flows: Sequence[FlowRecord | _Flow]) -> None:
        """Count finished outer flows (records, or flows that got none) into their
        services' rows."""
        services = self.summary.services
        for f in flows:
            if f.tunnel is None and f.service_port is not None:
                row = services.get((f.service, f.proto, f.service_port))
                if row is not None:
                    row.flows += 1

    def finish(self) -> Summary:
        """Close every live flow and return the summary."""
        table = self.flow_table
        keep = self.keep
        if keep is not None and len(table) > keep + PRUNE_SLACK:
            # Of the live flows, only those that may make the top get a record (a scan
            # ends with many thousands live); the others are counted.
            top = set(map(id, heapq.nsmallest(keep, table._live.values(), key=live_rank)))
            table.screen = lambda f: id(f) in top
        self._collect(table.finish())
        table.screen = None
        if table.passed:
            self._count_flows(table.passed)
            self.summary.flows_dropped += len(table.passed)
            table.passed = []
        if keep is not None:
            self.summary.keep_flows(keep)
        return self.summary
