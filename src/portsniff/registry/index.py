"""The merged registry: what every (transport, port) pair and every service name means.

Sources are given in precedence order. For each (transport, port) the richest source that
lists the pair wins (IANA XML/CSV, then IANA's text table, then Wireshark's services,
then a system services file; ties go to the earlier source), and the label says which.
Records without a transport protocol (``x11``-era ranges such as ``swx 7300-7359``, and
nameless Unassigned ranges) cover tcp and udp. Ports no source lists are unassigned.
Work is done lazily: building an index only stores its sources.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING

from portsniff.caveat import CAVEAT
from portsniff.registry.record import (
    TRANSPORTS,
    ParsedRegistry,
    PortLabel,
    RegistrySource,
    ServiceRecord,
    Status,
    parse_port_range,
    port_class,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Richness of each source kind (lower wins).
KIND_RANK = {"iana-xml": 0, "iana-csv": 0, "iana-text": 1, "wireshark-services": 2, "services": 3}
#: Transports a record without a transport protocol covers.
UNSPECIFIED_COVERS = ("tcp", "udp")

_ALIAS = re.compile(r'This entry is an alias to\s+"([^"]+)"', re.I)
_BRACKETED = re.compile(r"\[[^\]]*\]")
_PORTS_IN_TEXT = re.compile(r"(?<![\d.])(\d{1,5})(?:\s*-\s*(\d{1,5}))?(?![\d.])")
_DNSSD = re.compile(r"_([^.]+)\._(tcp|udp)\.?", re.I)


def alias_target(record: ServiceRecord) -> str | None:
    """X when the record's Assignment Notes say ``This entry is an alias to "X"``."""
    m = _ALIAS.search(record.assignment_notes)
    return m.group(1) if m else None


def unauthorized_ports(record: ServiceRecord) -> tuple[tuple[int, int], ...]:
    """The ports IANA's "Unauthorized Use Reported" note of ``record`` concerns.

    The note often names ports inside the record's range ("Unauthorized Use Known on port
    796" on the 788-799 Unassigned record); those are returned, else the whole range.
    """
    span = record.port_range if record.unauthorized_use_reported else None
    if span is None:
        return ()
    text = _BRACKETED.sub(" ", record.unauthorized_use_reported)  # "[RFC4146]" is no port
    named: list[tuple[int, int]] = []
    for m in _PORTS_IN_TEXT.finditer(text):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        lo, hi = max(lo, span[0]), min(hi, span[1])
        if lo <= hi and (lo, hi) not in named:
            named.append((lo, hi))
    return tuple(named) if named else (span,)


def _covers(record: ServiceRecord, transport: str) -> bool:
    proto = record.transport_protocol
    return proto == transport or (not proto and transport in UNSPECIFIED_COVERS)


#: Source kinds that list every assigned port of the registry: a port they do not list
#: is unassigned. Other kinds (/etc/services, the excerpt) list only some ports.
COMPLETE_KINDS = frozenset({"iana-xml", "iana-csv", "wireshark-services"})


def _status(records: Sequence[ServiceRecord], named: bool, port: int, complete: bool) -> Status:
    if named:
        return "assigned"
    if any(r.description.lower().startswith("reserved") for r in records):
        return "reserved"
    if records or complete or port >= 49152:  # RFC 6335: dynamic ports are never assigned
        return "unassigned"
    return "unlisted"


class _Source:
    """One registry with lazily built port maps.

    It holds either parsed records or the columns of a compiled registry; records are
    then made only when a look-up needs them, so a cached registry is usable within
    milliseconds (and the look-up path never imports numpy).
    """

    __slots__ = (
        "_cols",
        "_made",
        "_masks",
        "_ranges",
        "_records",
        "_segments",
        "_single",
        "caveat",
        "label",
        "source",
    )

    def __init__(
        self,
        source: RegistrySource,
        caveat: str | None,
        records: tuple[ServiceRecord, ...] | None = None,
        columns: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self.source = source
        self.caveat = caveat
        self.label = f"{source.kind}:{source.path}"
        self._records = records
        self._cols = columns
        self._made: dict[int, ServiceRecord] = {}
        self._masks: npt.NDArray[np.bool_] | None = None
        self._single: dict[str, dict[int, list[int]]] | None = None
        self._ranges: dict[str, list[tuple[int, int, int]]] = {}
        self._segments: dict[str, tuple[list[int], list[tuple[int, ...]]]] = {}

    @property
    def records(self) -> tuple[ServiceRecord, ...]:
        if self._records is None:
            assert self._cols is not None
            self._records = tuple(ServiceRecord(*row) for row in zip(*self._cols, strict=True))
        return self._records

    def record(self, i: int) -> ServiceRecord:
        if self._records is not None:
            return self._records[i]
        got = self._made.get(i)
        if got is None:
            assert self._cols is not None
            got = self._made[i] = ServiceRecord(*(c[i] for c in self._cols))
        return got

    def _build(self) -> dict[str, dict[int, list[int]]]:
        single: dict[str, dict[int, list[int]]] = {t: {} for t in TRANSPORTS}
        ranges: dict[str, list[tuple[int, int, int]]] = {t: [] for t in TRANSPORTS}
        if self._cols is not None:
            numbers, protocols = self._cols[1], self._cols[2]
        else:
            numbers = [r.port_number for r in self.records]
            protocols = [r.transport_protocol for r in self.records]
        for i, (number, proto) in enumerate(zip(numbers, protocols, strict=True)):
            if not number:
                continue
            transports = (proto,) if proto else UNSPECIFIED_COVERS
            if number.isdigit():
                port = int(number)
                for t in transports:
                    single[t].setdefault(port, []).append(i)
            else:
                span = parse_port_range(number)
                assert span is not None  # parsers validated every port number
                for t in transports:
                    ranges[t].append((span[0], span[1], i))
        self._single, self._ranges = single, ranges
        return single

    def spans(self, transport: str) -> list[tuple[int, int, int]]:
        """(lo, hi, record index) of every record covering ``transport``, in file order."""
        single = self._single if self._single is not None else self._build()
        out = [(p, p, i) for p, idx in single[transport].items() for i in idx]
        out.extend(self._ranges[transport])
        out.sort(key=lambda x: x[2])
        return out

    def _range_segments(self, transport: str) -> tuple[list[int], list[tuple[int, ...]]]:
        """Port ranges cut into disjoint segments: segment k starts at ``bounds[k]`` and
        holds the record indices of every range covering it (so a look-up is a bisect
        instead of a scan of every range)."""
        got = self._segments.get(transport)
        if got is not None:
            return got
        spans = self._ranges[transport]
        starts: dict[int, list[int]] = {}
        stops: dict[int, list[int]] = {}
        for lo, hi, i in spans:
            starts.setdefault(lo, []).append(i)
            stops.setdefault(hi + 1, []).append(i)
        bounds = sorted(starts.keys() | stops.keys())
        members: list[tuple[int, ...]] = []
        active: set[int] = set()
        for b in bounds:  # a sweep: ranges open at their start, close after their end
            active.difference_update(stops.get(b, ()))
            active.update(starts.get(b, ()))
            members.append(tuple(sorted(active)))
        got = self._segments[transport] = (bounds, members)
        return got

    def all_masks(self) -> npt.NDArray[np.bool_]:
        """``port_masks`` of every transport, shape (4, 2, 65536): kept beside the compiled
        registry (keyed by its sha256), so they are computed once per registry file."""
        import numpy as np

        from portsniff.registry import cache

        if self._masks is not None:
            return self._masks
        blob = cache.load_masks(self.source.sha256)
        if blob is not None:
            bits = np.unpackbits(np.frombuffer(blob, np.uint8))
            got = bits.astype(np.bool_).reshape(len(TRANSPORTS), 2, 65536)
        else:
            got = np.stack([np.stack(self.port_masks(t)) for t in TRANSPORTS])
            cache.store_masks(self.source.sha256, np.packbits(got).tobytes())
        self._masks = got
        return got

    def port_masks(self, transport: str) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Per port: whether a record covers it, and whether one of those names a service."""
        import numpy as np

        single = self._single if self._single is not None else self._build()
        names = self._cols[0] if self._cols is not None else [r.service_name for r in self.records]
        ports = single[transport]
        covered = np.zeros(65536, np.bool_)
        named = np.zeros(65536, np.bool_)
        covered[list(ports)] = True
        named[[p for p, idx in ports.items() if any(names[i] for i in idx)]] = True
        # Ranges: +1 at the start, -1 after the end, summed up.
        cover_d = np.zeros(65537, np.int32)
        named_d = np.zeros(65537, np.int32)
        for lo, hi, i in self._ranges[transport]:
            cover_d[lo] += 1
            cover_d[hi + 1] -= 1
            if names[i]:
                named_d[lo] += 1
                named_d[hi + 1] -= 1
        covered |= np.cumsum(cover_d[:65536]) > 0
        named |= np.cumsum(named_d[:65536]) > 0
        return covered, named

    def covering(self, transport: str, port: int) -> tuple[ServiceRecord, ...]:
        return tuple(map(self.record, self.covering_ids(transport, port)))

    def covering_ids(self, transport: str, port: int) -> tuple[int, ...]:
        """The indices of the records covering the pair, in registry order."""
        single = self._single if self._single is not None else self._build()
        hits = single[transport].get(port, ())
        bounds, members = self._range_segments(transport)
        k = bisect_right(bounds, port) - 1
        if k >= 0 and members[k]:
            return tuple(sorted((*hits, *members[k])))
        return tuple(hits)


class RegistryIndex:
    """Look-ups over one or more parsed registries (see the module docstring)."""

    def __init__(self, parsed: Sequence[ParsedRegistry]) -> None:
        if not parsed:
            from portsniff.errors import RegistryError

            raise RegistryError("no registry sources to index")
        self._init([_Source(p.source, p.caveat, records=p.records) for p in parsed])

    def _init(self, given: Sequence[_Source]) -> None:
        order = sorted(range(len(given)), key=lambda i: (KIND_RANK.get(given[i].source.kind, 9), i))
        #: Sources in the order given (precedence order).
        self.sources: tuple[RegistrySource, ...] = tuple(s.source for s in given)
        self._ranked = tuple(given[i] for i in order)
        #: Whether a port no source lists is known to be unassigned (see COMPLETE_KINDS).
        self.complete = any(src.source.kind in COMPLETE_KINDS for src in given)
        caveats = [s.caveat for s in self._ranked if s.caveat]
        #: IANA's caveat as a source states it, else the project's copy of IANA's words.
        self.caveat: str = caveats[0] if caveats else CAVEAT
        #: The registry date of the richest source.
        self.updated: str | None = self._ranked[0].source.updated
        self._names: dict[str, list[tuple[int, ServiceRecord]]] | None = None
        self._tables: dict[str, tuple[list[PortLabel], npt.NDArray[np.int32]]] = {}
        self._assigned: dict[str, npt.NDArray[np.bool_]] = {}
        self._covered: dict[str, npt.NDArray[np.bool_]] = {}
        self._shapes: dict[tuple[str, int, tuple[int, ...]], tuple[PortLabel, bool]] = {}

    @classmethod
    def build(cls, parsed: Sequence[ParsedRegistry]) -> RegistryIndex:
        """An index over ``parsed`` (precedence order: first = preferred)."""
        return cls(parsed)

    @classmethod
    def from_columns(
        cls, sources: Sequence[tuple[RegistrySource, str | None, Sequence[Sequence[str]]]]
    ) -> RegistryIndex:
        """An index over compiled registries: (source, caveat, the 12 columns) each."""
        if not sources:
            from portsniff.errors import RegistryError

            raise RegistryError("no registry sources to index")
        index = cls.__new__(cls)
        index._init([_Source(src, caveat, columns=cols) for src, caveat, cols in sources])
        return index

    unauthorized_ports = staticmethod(unauthorized_ports)

    # -- ports -------------------------------------------------------------------------

    @staticmethod
    def _check(transport: str, port: int) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r} (expected one of {TRANSPORTS})")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} out of range 0-65535")

    def _winner(
        self, transport: str, port: int
    ) -> tuple[_Source | None, tuple[ServiceRecord, ...]]:
        for src in self._ranked:
            records = src.covering(transport, port)
            if records:
                return src, records
        return None, ()

    def _winner_ids(self, transport: str, port: int) -> tuple[int, tuple[int, ...]]:
        """The rank of the first source covering the pair and its records' indices
        ((-1, ()) when no source does)."""
        for rank, src in enumerate(self._ranked):
            ids = src.covering_ids(transport, port)
            if ids:
                return rank, ids
        return -1, ()

    def records_for(self, transport: str, port: int) -> tuple[ServiceRecord, ...]:
        """The winning source's records for the pair, in registry order."""
        self._check(transport, port)
        return self._winner(transport, port)[1]

    def lookup(self, transport: str, port: int) -> PortLabel:
        """What the registry says about ``port`` on ``transport``."""
        self._check(transport, port)
        covered = self._covered.get(transport)
        if covered is not None and not covered[port]:
            # No source lists the port (most ports of a scan): no source to ask.
            return self._label(transport, port, (), None, self.complete)
        rank, ids = self._winner_ids(transport, port)
        if rank < 0:
            return self._label(transport, port, (), None, self.complete)
        return self._shaped(transport, port, rank, ids)

    def _shaped(self, transport: str, port: int, rank: int, ids: tuple[int, ...]) -> PortLabel:
        """The label of ``port``, covered by the records ``ids`` of the source of ``rank``.

        A set of records makes the same label for every port it covers but for the port,
        its class and the unauthorized-use note (a scan meets thousands of ports of one
        range record): the set's shape is made once, then copied with the port's own."""
        key = (transport, rank, ids)
        got = self._shapes.get(key)
        if got is None:
            src = self._ranked[rank]
            records = tuple(map(src.record, ids))
            shape = self._label(transport, -1, records, src.label)
            got = self._shapes[key] = (shape, any(r.unauthorized_use_reported for r in records))
        t, noted = got
        return PortLabel(
            transport,
            port,
            t.service,
            t.names,
            t.description,
            t.status,
            port_class(port),
            t.aliases,
            self._label(transport, port, t.records, None).unauthorized_use if noted else None,
            t.source,
            t.records,
        )

    @staticmethod
    def _label(
        transport: str,
        port: int,
        records: tuple[ServiceRecord, ...],
        source: str | None,
        complete: bool = True,
    ) -> PortLabel:
        names: list[str] = []
        primary: list[ServiceRecord] = []
        aliases: list[tuple[str, str]] = []
        for r in records:
            if not r.service_name:
                continue
            target = alias_target(r)
            if target is None:
                primary.append(r)
                if r.service_name not in names:
                    names.append(r.service_name)
            else:
                aliases.append((r.service_name, target))
        lowered = {n.lower() for n in names}
        alias_names: list[str] = []
        for alias, target in aliases:
            if target.lower() in lowered:
                if alias not in alias_names:
                    alias_names.append(alias)
            elif alias not in names:  # an alias whose target is not on this port is a name
                names.append(alias)
        unauthorized = None
        for r in records:
            if r.unauthorized_use_reported and any(
                lo <= port <= hi for lo, hi in unauthorized_ports(r)
            ):
                unauthorized = r.unauthorized_use_reported
                break
        first = primary[0] if primary else (records[0] if records else None)
        return PortLabel(
            transport=transport,
            port=port,
            service=names[0] if names else None,
            names=tuple(names),
            description=(first.description or None) if first else None,
            status=_status(records, bool(names), port, complete),
            port_class=port_class(port),
            aliases=tuple(alias_names),
            unauthorized_use=unauthorized,
            source=source,
            records=records,
        )

    def covered_table(self, transport: str) -> npt.NDArray[np.bool_]:
        """Whether any source lists each of the 65,536 ports on ``transport``; built once,
        after which ``lookup`` answers for the other ports without asking the sources."""
        self._check(transport, 0)
        got = self._covered.get(transport)
        if got is not None:
            return got
        import numpy as np

        out = np.zeros(65536, np.bool_)
        t = TRANSPORTS.index(transport)
        for src in self._ranked:
            out |= src.all_masks()[t, 0]
        self._covered[transport] = out
        return out

    def assigned_table(self, transport: str) -> npt.NDArray[np.bool_]:
        """Whether each of the 65,536 ports is assigned on ``transport`` (as ``lookup``
        says: the winning source names a service for it); built with numpy, once."""
        self._check(transport, 0)
        got = self._assigned.get(transport)
        if got is not None:
            return got
        import numpy as np

        out = np.zeros(65536, np.bool_)
        decided = np.zeros(65536, np.bool_)
        t = TRANSPORTS.index(transport)
        for src in self._ranked:
            masks = src.all_masks()
            covered, named = masks[t, 0], masks[t, 1]
            take = covered & ~decided
            out[take] = named[take]
            decided |= covered
        self._assigned[transport] = out
        return out

    def label_table(self, transport: str) -> tuple[list[PortLabel], npt.NDArray[np.int32]]:
        """Labels and a 65,536-entry array mapping each port to its label's index.

        Built on first use and kept per transport (for vectorised annotation:
        ``labels[table[ports]]``).
        """
        self._check(transport, 0)
        got = self._tables.get(transport)
        if got is not None:
            return got
        import numpy as np

        # Per port, the winning source and its covering records (registry order).
        owner = [-1] * 65536
        members: list[list[int] | None] = [None] * 65536
        for s, src in enumerate(self._ranked):
            claimed = [False] * 65536
            for lo, hi, i in src.spans(transport):
                for p in range(lo, hi + 1):
                    if owner[p] < 0 or (owner[p] == s and claimed[p]):
                        owner[p] = s
                        claimed[p] = True
                        m = members[p]
                        if m is None:
                            members[p] = [i]
                        else:
                            m.append(i)
        labels: list[PortLabel] = []
        for port in range(65536):
            m = members[port]
            if m is None:
                labels.append(self._label(transport, port, (), None, self.complete))
            else:  # record indices in file order, as covering_ids gives them
                labels.append(self._shaped(transport, port, owner[port], tuple(m)))
        table = np.arange(65536, dtype=np.int32)
        self._tables[transport] = (labels, table)
        return labels, table

    # -- names -------------------------------------------------------------------------

    def _name_map(self) -> dict[str, list[tuple[int, ServiceRecord]]]:
        if self._names is None:
            names: dict[str, list[tuple[int, ServiceRecord]]] = {}
            for s, src in enumerate(self._ranked):
                for r in src.records:
                    if r.service_name:
                        names.setdefault(r.service_name.lower(), []).append((s, r))
            self._names = names
        return self._names

    def by_name(self, name: str) -> tuple[ServiceRecord, ...]:
        """Records of a service name (case-insensitive, RFC 6335), from the richest source
        that lists it. ``_airplay._tcp`` (DNS-SD form) keeps the records for that protocol
        (and those without one)."""
        text = name.strip()
        proto = None
        m = _DNSSD.fullmatch(text)
        if m:
            text, proto = m.group(1), m.group(2).lower()
        hits = self._name_map().get(text.lower(), [])
        if not hits:
            return ()
        best = hits[0][0]
        return tuple(
            r
            for s, r in hits
            if s == best and (proto is None or r.transport_protocol in (proto, ""))
        )

    def dnssd(self, service_type: str) -> tuple[ServiceRecord, ...]:
        """Records usable as the DNS-SD service type (``_airplay._tcp`` or ``airplay``):
        the name's records less historic aliases, which service discovery cannot use."""
        return tuple(r for r in self.by_name(service_type) if alias_target(r) is None)

    # -- figures -----------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        """Counts over the sources.

        ``assigned_pairs`` counts distinct (port, protocol) pairs that a record names with
        an explicit transport protocol (ranges expanded), in the merged view;
        ``protocolless_named_records`` counts named records without a protocol, which
        ``lookup`` applies to tcp and udp.
        """
        records = [r for src in self._ranked for r in src.records]
        claimed: dict[str, set[int]] = {t: set() for t in TRANSPORTS}
        assigned: dict[str, set[int]] = {t: set() for t in TRANSPORTS}
        for src in self._ranked:
            covered: dict[str, set[int]] = {t: set() for t in TRANSPORTS}
            named: dict[str, set[int]] = {t: set() for t in TRANSPORTS}
            for r in src.records:
                span = r.port_range
                if span is None:
                    continue
                ports = range(span[0], span[1] + 1)
                for t in TRANSPORTS:
                    if _covers(r, t):
                        covered[t].update(ports)
                if r.service_name and r.transport_protocol:
                    named[r.transport_protocol].update(ports)
            for t in TRANSPORTS:
                assigned[t] |= named[t] - claimed[t]
                claimed[t] |= covered[t]
        by_transport = {t: len(assigned[t]) for t in TRANSPORTS}
        return {
            "records": len(records),
            "assigned_pairs": sum(by_transport.values()),
            "assigned_pairs_by_transport": by_transport,
            "range_records": sum(1 for r in records if "-" in r.port_number),
            "alias_records": sum(1 for r in records if alias_target(r) is not None),
            "unauthorized_records": sum(1 for r in records if r.unauthorized_use_reported),
            "protocolless_named_records": sum(
                1 for r in records if r.service_name and r.port_number and not r.transport_protocol
            ),
            "sources": len(self._ranked),
        }
