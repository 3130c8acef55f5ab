"""Columnar annotation: label a whole DecodedBatch with numpy.

:class:`VectorAnnotator` produces exactly the records :class:`~portsniff.annotate.annotator.Annotator`
produces (the reference), as :class:`LabelledBatch` blocks in frame order. The service side is
decided per *flow*, not per packet: every call the reference makes to ``FlowSides.side`` is an
"event" (a packet's outer ports, a tunnelled header, a fragment resolved late), and the events of
a block are grouped by flow; a flow's decision changes only at its first event and at SYN/SYN-ACK
events, which numpy finds. Rows with details beyond a VLAN tag (fragments, tunnels, ICMP quotes,
DNS-SD, problems) are rare: their records are built one by one, but their events join the same
vectorised pass so that flow state is shared and ordered as the reference orders it. When a block
could evict flows from the side memory (idle or too many flows), its events are replayed one by
one, as the reference does, so eviction stays exact.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from portsniff.annotate.annotator import (
    FRAGMENT_WINDOW_PACKETS,
    FRAGMENT_WINDOW_SECONDS,
    AnnotateCounts,
    _endpoint_label,
    dnssd_labels,
    quoted_label,
)
from portsniff.annotate.records import DnssdLabel, EndpointLabel, PacketRecord, label_fields
from portsniff.decode.batch import (
    PROTO_CODE,
    DecodedBatch,
    Tunnels,
    packed_address,
    vlan_tuple,
    vlan_tuples,
)
from portsniff.decode.ip import address_text as plain_address_text
from portsniff.decode.packet import PROTOS, Decoded, Endpoints
from portsniff.registry.record import TRANSPORTS, PortLabel
from portsniff.timestamps import TimeOrder, seconds, seconds_array

if TYPE_CHECKING:
    from portsniff.registry.index import RegistryIndex

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
U8 = npt.NDArray[np.uint8]
B = npt.NDArray[np.bool_]

#: ``basis`` codes of the columns (-1: none).
BASES = ("syn", "syn-ack", "first-packet", "only-assigned", "lower-port")
BASIS_CODE = {b: i for i, b in enumerate(BASES)}
#: ``side`` codes of the columns.
SIDE_NONE, SIDE_SRC, SIDE_DST = 0, 1, 2
SIDE_NAME = (None, "src", "dst")
SYN, ACK = 0x02, 0x10
_MAX_FRAGMENT_KEYS = 100_000
_FLOW_SPACES = itertools.count(1)  # LabelledBatch.flow_space of each labeller
_N_TRANSPORTS = len(TRANSPORTS)
_TCP_CODE = PROTOS.index("tcp")
assert PROTOS[:_N_TRANSPORTS] == TRANSPORTS  # proto codes 0-3 are the port transports


class Labeller:
    """Registry labels per (transport, port), cached; ``assigned`` from the index's table."""

    def __init__(self, index: RegistryIndex) -> None:
        self.index = index
        self._labels: dict[tuple[int, int], PortLabel] = {}
        self._assigned: npt.NDArray[np.bool_] | None = None

    def label(self, proto: int, port: int) -> PortLabel:
        """The label of ``port`` on transport code ``proto`` (0-3)."""
        key = (proto, port)
        got = self._labels.get(key)
        if got is None:
            transport = TRANSPORTS[proto]
            self.index.covered_table(transport)  # once: then unlisted ports cost little
            got = self._labels[key] = self.index.lookup(transport, port)
        return got

    def assigned(self, proto: I64, port: I64) -> B:
        """Whether each (transport code, port) is assigned (ports must be 0-65535)."""
        table = self._assigned
        if table is None:
            # One table for all transports: a look-up per distinct port would cost ~10 us
            # each, and real traffic brings thousands of distinct ephemeral ports.
            table = self._assigned = np.stack([self.index.assigned_table(t) for t in TRANSPORTS])
        out: B = table[proto, port]
        return out


@dataclass(slots=True)
class LabelledBatch:
    """A block of labelled packets in frame order (columns, as DecodedBatch's).

    ``side`` (0 none, 1 src, 2 dst), ``basis`` (index into BASES, -1 none) and ``ambiguous``
    are the label columns; the label itself is ``labels.label(proto, service port)``. Ports
    are the record's (non-first fragments carry their first fragment's; ``fragment`` marks
    the IP fragments labelled with the block). Rows whose record was built one by one
    (details other than a VLAN tag, or a fragment not met in order) are in ``records``.

    ``flow`` names each vector row's flow and direction for the writers' caches: the
    labeller's flow slot times 2, plus 1 when the row is sent by the flow's second
    endpoint (-1 for other rows). A slot names one flow from the batch listing it in
    ``new_flows`` on, among the batches of one labeller (``flow_space``, 0 for none),
    taken in order;
    ``one_flow_per_slot`` says whether each slot names one flow throughout this batch
    (a labeller's block does; batches joined across a slot's new use do not).

    VLAN tags are columns (``vlan_tag``, ``vlan_tag2``: the first two, outermost first,
    -1 for none; a trunk port tags every row); ``vlan`` holds the rows with more.
    ``tunnels`` holds the inner header of rows carried by one tunnel, its ``side`` the
    inner header's label side (the label is its transport's and port's, as the row's).

    ``head`` is set by a labeller that tracks heads (the second half of a capture labelled
    apart, :mod:`portsniff.summary_split`): for rows labelled before their flow's first
    SYN or SYN-ACK, in a flow first met without a SYN (rows whose label may depend on
    what came before the half), the number of that flow's head (:class:`Heads`), else -1.
    """

    file: str
    frame: I64
    ts_ns: I64
    wirelen: I64
    caplen: I64
    ip_version: U8
    src_addr: npt.NDArray[np.void]
    dst_addr: npt.NDArray[np.void]
    proto: U8
    src_port: I32
    dst_port: I32
    tcp_flags: I32
    side: I8
    basis: I8
    ambiguous: B
    flow: I32
    fragment: B
    vlan_tag: I32
    vlan_tag2: I32
    labels: Labeller
    vlan: dict[int, tuple[int, ...]] = field(default_factory=dict)
    records: dict[int, PacketRecord] = field(default_factory=dict)
    new_flows: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    flow_space: int = 0
    one_flow_per_slot: bool = True
    head: I32 | None = None
    tunnels: Tunnels | None = None

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def service_port(self) -> I32:
        """The port the label is for (-1 for rows without a label)."""
        out = np.full(len(self), -1, np.int32)
        out[self.side == SIDE_SRC] = self.src_port[self.side == SIDE_SRC]
        out[self.side == SIDE_DST] = self.dst_port[self.side == SIDE_DST]
        return out

    def slice(self, a: int, b: int) -> LabelledBatch:
        """Rows ``a`` to ``b`` (exclusive) as a batch of their own."""
        return LabelledBatch(
            self.file,
            self.frame[a:b],
            self.ts_ns[a:b],
            self.wirelen[a:b],
            self.caplen[a:b],
            self.ip_version[a:b],
            self.src_addr[a:b],
            self.dst_addr[a:b],
            self.proto[a:b],
            self.src_port[a:b],
            self.dst_port[a:b],
            self.tcp_flags[a:b],
            self.side[a:b],
            self.basis[a:b],
            self.ambiguous[a:b],
            self.flow[a:b],
            self.fragment[a:b],
            self.vlan_tag[a:b],
            self.vlan_tag2[a:b],
            self.labels,
            {i - a: v for i, v in self.vlan.items() if a <= i < b},
            {i - a: v for i, v in self.records.items() if a <= i < b},
            # The first piece lists them: pieces are taken in order.
            self.new_flows if a == 0 else self.new_flows[:0],
            self.flow_space,
            self.one_flow_per_slot,
            None if self.head is None else self.head[a:b],
            None if self.tunnels is None else self.tunnels.slice(a, b),
        )

    @classmethod
    def concat(cls, batches: Sequence[LabelledBatch]) -> LabelledBatch:
        """The rows of ``batches`` (of one file, labelled alike) as one batch, in order."""
        first = batches[0]
        if len(batches) == 1:
            return first
        cols = {name: np.concatenate([getattr(b, name) for b in batches]) for name in _COLUMNS}
        vlan: dict[int, tuple[int, ...]] = {}
        records: dict[int, PacketRecord] = {}
        at = 0
        for b in batches:
            vlan.update((i + at, v) for i, v in b.vlan.items())
            records.update((i + at, r) for i, r in b.records.items())
            at += len(b)
        spaces = {b.flow_space for b in batches}
        space = spaces.pop() if len(spaces) == 1 else 0
        head = None
        if any(b.head is not None for b in batches):
            head = np.concatenate(
                [np.full(len(b), -1, np.int32) if b.head is None else b.head for b in batches]
            )
        return cls(
            file=first.file,
            labels=first.labels,
            vlan=vlan,
            records=records,
            new_flows=np.concatenate([b.new_flows for b in batches]),
            flow_space=space,
            one_flow_per_slot=bool(space) and _one_flow_per_slot(batches),
            head=head,
            tunnels=Tunnels.concat([b.tunnels for b in batches], [len(b) for b in batches]),
            **cols,
        )

    def state(self) -> tuple[Any, ...]:
        """Everything but the labeller, to send to another process (``from_state``)."""
        return (
            self.file,
            *(getattr(self, name) for name in _COLUMNS),
            self.vlan,
            self.records,
            self.new_flows,
            self.flow_space,
            self.one_flow_per_slot,
            self.head,
            self.tunnels,
        )

    @classmethod
    def from_state(cls, state: tuple[Any, ...], labels: Labeller) -> LabelledBatch:
        """The batch ``state()`` described, labelled by ``labels``."""
        *cols, vlan, records, new_flows, space, unique, head, tunnels = state
        named: dict[str, Any] = dict(zip(("file", *_COLUMNS), cols, strict=True))
        return cls(
            **named,
            labels=labels,
            vlan=vlan,
            records=records,
            new_flows=new_flows,
            flow_space=space,
            one_flow_per_slot=unique,
            head=head,
            tunnels=tunnels,
        )

    def record(self, i: int) -> PacketRecord:
        """Row ``i`` as a PacketRecord."""
        got = self.records.get(i)
        if got is not None:
            return got
        return self.records_at([i])[i]

    def records_at(self, rows: Sequence[int]) -> dict[int, PacketRecord]:
        """The PacketRecords of ``rows`` (ascending), made together (a record each from
        :meth:`record` costs a batch each)."""
        if not rows:
            return {}
        at = np.asarray(rows, np.int64)
        cols: dict[str, Any] = {name: getattr(self, name)[at] for name in _COLUMNS}
        vlan = {k: self.vlan[i] for k, i in enumerate(rows) if i in self.vlan}
        tunnels = None if self.tunnels is None else self.tunnels.take(at)
        part = LabelledBatch(file=self.file, labels=self.labels, vlan=vlan, tunnels=tunnels, **cols)
        own = self.records
        return {i: own.get(i) or r for i, r in zip(rows, part.iter_records(), strict=True)}

    def tags(self, i: int) -> tuple[int, ...]:
        """The VLAN tags of row ``i`` (outermost first)."""
        got = self.vlan.get(i)
        if got is not None:
            return got
        return vlan_tuple(int(self.vlan_tag[i]), int(self.vlan_tag2[i]))

    def tagged(self) -> B:
        """Which rows have VLAN tags."""
        out: B = self.vlan_tag >= 0
        if self.vlan:
            out[list(self.vlan)] = True
        return out

    def all_tags(self) -> dict[int, tuple[int, ...]]:
        """The VLAN tags of every tagged row, by row."""
        rows = np.flatnonzero(self.vlan_tag >= 0)
        tags = vlan_tuples(self.vlan_tag[rows], self.vlan_tag2[rows])
        out = dict(zip(rows.tolist(), tags, strict=True))
        out.update(self.vlan)
        return out

    def vlan_words(self) -> tuple[npt.NDArray[np.uint64], list[int]]:
        """One word per row naming its VLAN tags (0: none; one tag ``t``: ``t + 1``; two:
        ``t1 + 1 | (t2 + 1) << 32``), and the tagged rows whose tags no word holds."""
        one = self.vlan_tag.astype(np.int64)
        two = self.vlan_tag2.astype(np.int64)
        words = (np.where(one >= 0, one + 1, 0) | np.where(two >= 0, (two + 1) << 32, 0)).astype(
            np.uint64
        )
        return words, sorted(self.vlan)

    def addresses(self, which: str) -> list[str | None]:
        """``src`` or ``dst`` addresses as text (None for non-IP rows)."""
        column = self.src_addr if which == "src" else self.dst_addr
        return address_texts(self.ip_version, column)

    def iter_records(self) -> Iterator[PacketRecord]:
        """Every row as a PacketRecord (equal to the reference's)."""
        srcs = self.addresses("src")
        dsts = self.addresses("dst")
        label = self.labels.label
        records = self.records
        vlan = self.all_tags()
        columns = zip(
            self.frame.tolist(),
            self.ts_ns.tolist(),
            self.wirelen.tolist(),
            self.caplen.tolist(),
            srcs,
            dsts,
            self.proto.tolist(),
            self.src_port.tolist(),
            self.dst_port.tolist(),
            self.tcp_flags.tolist(),
            self.side.tolist(),
            self.basis.tolist(),
            self.ambiguous.tolist(),
            self.fragment.tolist(),
            seconds_array(self.ts_ns).tolist(),
            strict=True,
        )
        file = self.file
        inner = self._inner_labels()
        for i, (
            frame,
            ts_ns,
            wl,
            cl,
            src,
            dst,
            proto,
            sp,
            dp,
            fl,
            side,
            basis,
            amb,
            frag,
            ts,
        ) in enumerate(columns):
            got = records.get(i)
            if got is not None:
                yield got
                continue
            lab = label(proto, sp if side == SIDE_SRC else dp) if side else None
            yield PacketRecord(
                frame=frame,
                file=file,
                ts=ts,
                len=wl,
                caplen=cl,
                src_ip=src,
                dst_ip=dst,
                proto=PROTOS[proto],
                src_port=None if sp < 0 else sp,
                dst_port=None if dp < 0 else dp,
                service_side=SIDE_NAME[side],
                basis=BASES[basis] if basis >= 0 else None,
                ambiguous=amb,
                dnssd=(),
                inner=inner.get(i, ()),
                quoted=None,
                fragment=frag,
                vlan=vlan.get(i, ()),
                **label_fields(lab),
                ts_ns=ts_ns,
                problem=None,
                tcp_flags=None if fl < 0 else fl,
            )

    def _inner_labels(self) -> dict[int, tuple[EndpointLabel]]:
        """The labelled inner header of every tunnelled row, by row."""
        t = self.tunnels
        if t is None:
            return {}
        out: dict[int, tuple[EndpointLabel]] = {}
        label = self.labels.label
        for k, (i, side) in enumerate(zip(t.row.tolist(), t.side.tolist(), strict=True)):
            e = t.endpoints(k)
            service = None
            if side:
                assert e.src_port is not None and e.dst_port is not None
                port = e.src_port if side == SIDE_SRC else e.dst_port
                service = label(PROTO_CODE[e.proto], port)
            out[i] = (_endpoint_label(e, service),)
        return out


class SlotUse:
    """The flow slots a run of batches of one labeller uses: whether a next batch gives
    one of them to a new flow (then the run and that batch do not join with one flow per
    slot)."""

    def __init__(self) -> None:
        self.used = np.zeros(0, np.bool_)

    def reused_by(self, lb: LabelledBatch) -> bool:
        """Whether ``lb`` gives a slot used so far to a new flow."""
        new = lb.new_flows[lb.new_flows < self.used.size]
        return bool(self.used[new].any())

    def add(self, lb: LabelledBatch) -> None:
        """Count the slots ``lb`` uses."""
        slots = lb.flow[lb.flow >= 0] >> 1
        if slots.size:
            top = int(slots.max()) + 1
            if top > self.used.size:
                self.used.resize(top, refcheck=False)  # new entries are False
            self.used[slots] = True

    def clear(self) -> None:
        """Forget every slot (a new run starts)."""
        self.used[:] = False


def _one_flow_per_slot(batches: Sequence[LabelledBatch]) -> bool:
    """Whether no batch gives a slot to a new flow after an earlier batch used it."""
    if not all(b.one_flow_per_slot for b in batches):
        return False
    use = SlotUse()
    for b in batches:
        if use.reused_by(b):
            return False
        use.add(b)
    return True


_COLUMNS = (
    "frame",
    "ts_ns",
    "wirelen",
    "caplen",
    "ip_version",
    "src_addr",
    "dst_addr",
    "proto",
    "src_port",
    "dst_port",
    "tcp_flags",
    "side",
    "basis",
    "ambiguous",
    "flow",
    "fragment",
    "vlan_tag",
    "vlan_tag2",
)
_ADDR_CACHE: dict[tuple[int, bytes], str] = {}


def address_text(version: int, raw: bytes) -> str:
    """An address column value as text (cached)."""
    key = (version, raw)
    got = _ADDR_CACHE.get(key)
    if got is None:
        if len(_ADDR_CACHE) > 200_000:
            _ADDR_CACHE.clear()
        got = _ADDR_CACHE[key] = plain_address_text(version, raw)
    return got


_RAW_CACHE: dict[bytes, str] = {}
_ZERO_TAIL = bytes(12)


def _raw_text(raw: bytes) -> str:
    # Only for columns where a zero tail means IPv4 (see address_texts). IPv4 is
    # written here (decode.ip.ipv4_text's form): a scan brings an address per packet.
    if raw[4:] == _ZERO_TAIL:
        got = _RAW_CACHE[raw] = f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    else:
        got = _RAW_CACHE[raw] = address_text(6, raw)
    return got


def address_texts(version: U8, column: npt.NDArray[np.void]) -> list[str | None]:
    """Each row's address as text, None where ``version`` is 0 (a dict look-up per row)."""
    n = int(version.shape[0])
    if n == 0:
        return []
    quads = column.view(np.uint32).reshape(n, 4)
    six = version == 6
    if np.any(six & (quads[:, 1] == 0) & (quads[:, 2] == 0) & (quads[:, 3] == 0)):
        # An IPv6 address ending in 12 zero bytes looks like IPv4 by its bytes alone.
        words = column.view(np.uint64).reshape(n, 2)
        _, first, inverse = _group(words[:, 0], words[:, 1], version.astype(np.uint64))
        raws_f = column[first].tolist()
        vers = version[first].tolist()
        texts: list[str | None] = [
            address_text(v, r) if v else None for v, r in zip(vers, raws_f, strict=True)
        ]
        return [texts[k] for k in inverse.tolist()]
    if len(_RAW_CACHE) > 200_000:
        _RAW_CACHE.clear()
    get = _RAW_CACHE.get
    out: list[str | None] = [get(r) or _raw_text(r) for r in column.tolist()]
    for i in np.flatnonzero(version == 0).tolist():
        out[i] = None
    return out


def _group(*keys: npt.NDArray[np.uint64]) -> tuple[I64, I64, I64]:
    """Rows grouped by equal key tuples: (order, first row of each group, group of each row).

    Groups are numbered in order of their first row. A 64-bit mix of the keys is sorted
    (one key sorts faster than several); the groups are then checked against every key,
    and a collision (of the mix without its low bits) falls back to sorting all keys.
    """
    n = int(keys[0].shape[0])
    if n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    mix = _mix(keys)
    # The row number goes in the mix's low bits: a plain sort of one array is a stable
    # sort of the mix (faster than argsort), and the order comes out of it.
    bits = max(1, (n - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    mix &= ~low
    mix |= np.arange(n, dtype=np.uint64)
    mix.sort()
    order = (mix & low).astype(np.int64)
    mix >>= np.uint64(bits)
    change = np.ones(n, np.bool_)
    change[1:] = mix[1:] != mix[:-1]
    del mix
    # Rows next to each other in a group must agree on every key.
    same = ~change[1:]
    if any(bool(np.any((ks[1:] != ks[:-1]) & same)) for ks in (k[order] for k in keys)):
        order = np.lexsort(keys[::-1]).astype(np.int64)
        change[:] = False
        change[0] = True
        for k in keys:
            ks = k[order]
            change[1:] |= ks[1:] != ks[:-1]
    gid_sorted = np.cumsum(change) - 1
    ngroups = int(gid_sorted[-1]) + 1
    first = order[change]  # stable sorts: a group's first row comes first
    # Renumber groups by first appearance.
    rank = np.empty(ngroups, np.int64)
    by_first = np.argsort(first, kind="stable")
    rank[by_first] = np.arange(ngroups)
    inverse = np.empty(n, np.int64)
    inverse[order] = rank[gid_sorted]
    return order, first[by_first], inverse


def _mix(keys: Sequence[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    """A 64-bit mix of each row's keys (equal keys, equal mix)."""
    mix = np.zeros(keys[0].shape[0], np.uint64)
    for j, k in enumerate(keys):
        mix ^= (k + np.uint64(j + 1)) * np.uint64(0x9E3779B97F4A7C15)
        mix ^= mix >> np.uint64(29)
    return mix


@dataclass(slots=True)
class _Events:
    """Side-memory calls of a block (see module docstring), columns in call order."""

    pos: list[int] = field(default_factory=list)
    proto: list[int] = field(default_factory=list)
    sver: list[int] = field(default_factory=list)
    saddr: list[bytes] = field(default_factory=list)
    sport: list[int] = field(default_factory=list)
    dver: list[int] = field(default_factory=list)
    daddr: list[bytes] = field(default_factory=list)
    dport: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    inner: list[int] = field(default_factory=list)  # indexes of tunnelled headers' events

    def add(
        self,
        pos: int,
        proto: int,
        src: tuple[int, bytes, int],
        dst: tuple[int, bytes, int],
        flags: int,
        ts_ns: int,
    ) -> int:
        self.pos.append(pos)
        self.proto.append(proto)
        self.sver.append(src[0])
        self.saddr.append(src[1])
        self.sport.append(src[2])
        self.dver.append(dst[0])
        self.daddr.append(dst[1])
        self.dport.append(dst[2])
        self.flags.append(flags)
        self.ts_ns.append(ts_ns)
        return len(self.pos) - 1


def _packed(ip: str | None) -> tuple[int, bytes]:
    return (0, bytes(16)) if ip is None else packed_address(ip)


@dataclass(slots=True)
class _Row:
    """A row whose record is built one by one (the reference's ``_Row``)."""

    lb: LabelledBatch
    i: int
    seq: int
    ts_ns: int
    src_ip: str | None
    dst_ip: str | None
    src_bin: tuple[int, bytes]
    dst_bin: tuple[int, bytes]
    proto: str
    src_port: int | None
    dst_port: int | None
    tcp_flags: int | None
    detail: Decoded
    outer: int = -1  # event index of the outer ports in the current block
    inner: list[int] = field(default_factory=list)
    done: bool = False  # its record is made
    waiting: bool = False  # a non-first fragment waiting for its first


class VectorAnnotator:
    """Labels DecodedBatches as LabelledBatches, in frame order (see module docstring).

    Same parameters and memory bounds as the reference's ``FlowSides``. With ``heads``
    it also keeps what :mod:`portsniff.summary_split` needs to join a half labelled
    apart to the half before it (``LabelledBatch.head`` and :attr:`heads`).
    """

    def __init__(
        self,
        index: RegistryIndex,
        *,
        max_flows: int = 1_000_000,
        idle_timeout: float = 600.0,
        heads: bool = False,
    ) -> None:
        self.index = index
        self.labels = Labeller(index)
        self.counts = AnnotateCounts()
        self.max_flows = max_flows
        self.idle_timeout = idle_timeout
        self.evicted = 0
        self.slow_blocks = 0
        self.pieces = 0  # parts of blocks longer than the idle timeout (see feed)
        # flow key -> slot, in LRU order as the reference's FlowSides; the slot indexes
        # the flow's decision code and last ts. Slots of forgotten flows are used again
        # from the next block on (a block's ``flow`` column names one flow per slot).
        self._flows: OrderedDict[bytes, int] = OrderedDict()
        self._code = np.zeros(1024, np.int64)
        self._last = np.zeros(1024, np.float64)
        self._slots = 0  # slots ever used
        self._free: list[int] = []
        self._freed: list[int] = []  # forgotten in this block
        self._space = next(_FLOW_SPACES)
        self._min_last = float("inf")  # a lower bound of every remembered flow's last ts
        self._first_fragments: OrderedDict[
            tuple[str, str, int, int], tuple[int | None, int | None]
        ] = OrderedDict()
        self._waiting: dict[tuple[str, str, int, int], list[_Row]] = {}
        self._unresolved: deque[_Row] = deque()
        self._held: deque[list[object]] = deque()  # [LabelledBatch, first row not output]
        self._seq = 0
        self._dnssd: dict[str, DnssdLabel] = {}
        # A packet's DNS-SD labels by its (types, instances): announcements repeat them.
        # (Each type's label is fixed once met, so the labels of a pair never change.)
        self._dnssd_of: dict[tuple[Any, ...], tuple[DnssdLabel, ...]] = {}
        self.heads: Heads | None = Heads() if heads else None
        self._ev_head: I64 = np.zeros(0, np.int64)

    # -- feeding ---------------------------------------------------------------------

    def feed(self, batch: DecodedBatch, mask: B | None = None) -> Iterator[LabelledBatch]:
        """Label the packets of ``batch`` (those ``mask`` keeps); yields batches ready."""
        pieces = self._pieces(batch.ts_ns)
        if pieces is None:
            yield from self._feed(batch, mask)
            return
        # A block longer than the idle timeout is labelled in parts that are not (any
        # cut labels alike): in each, flows forgotten can be told at once.
        self.pieces += len(pieces)
        for a, b in pieces:
            part = np.zeros(len(batch), np.bool_)
            part[a:b] = True if mask is None else mask[a:b]
            yield from self._feed(batch, part)

    def _pieces(self, ts_ns: I64) -> list[tuple[int, int]] | None:
        """Row ranges of a block, each spanning less than the idle timeout when the
        block spans more (None: one piece)."""
        n = int(ts_ns.size)
        limit = int(self.idle_timeout * 0.95e9)
        if n < 2 * PIECE_ROWS or int(ts_ns.max()) - int(ts_ns.min()) <= limit:
            return None
        starts = np.arange(0, n, PIECE_ROWS)
        lows = np.minimum.reduceat(ts_ns, starts).tolist()
        highs = np.maximum.reduceat(ts_ns, starts).tolist()
        out: list[tuple[int, int]] = []
        at, lo, hi = 0, lows[0], highs[0]
        for k in range(1, len(lows)):
            if max(hi, highs[k]) - min(lo, lows[k]) > limit:
                cut = k * PIECE_ROWS
                out.append((at, cut))
                at, lo, hi = cut, lows[k], highs[k]
            else:
                lo, hi = min(lo, lows[k]), max(hi, highs[k])
        out.append((at, n))
        return out if len(out) > 1 else None

    def _feed(self, batch: DecodedBatch, mask: B | None) -> Iterator[LabelledBatch]:
        if mask is None:
            rows = None
            n = len(batch)
        else:
            rows = np.flatnonzero(mask)
            n = int(rows.size)
        if n == 0:
            return

        def col(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
            return a if rows is None else a[rows]

        lb = LabelledBatch(
            file=batch.file,
            frame=(np.arange(n, dtype=np.int64) if rows is None else rows.astype(np.int64))
            + batch.first_frame,
            ts_ns=col(batch.ts_ns),  # type: ignore[arg-type]
            wirelen=col(batch.wirelen),  # type: ignore[arg-type]
            caplen=col(batch.caplen),  # type: ignore[arg-type]
            ip_version=col(batch.ip_version),  # type: ignore[arg-type]
            src_addr=col(batch.src_addr),  # type: ignore[arg-type]
            dst_addr=col(batch.dst_addr),  # type: ignore[arg-type]
            proto=col(batch.proto),  # type: ignore[arg-type]
            src_port=np.array(col(batch.src_port), np.int32),
            dst_port=np.array(col(batch.dst_port), np.int32),
            tcp_flags=col(batch.tcp_flags),  # type: ignore[arg-type]
            side=np.zeros(n, np.int8),
            basis=np.full(n, -1, np.int8),
            ambiguous=np.zeros(n, np.bool_),
            flow=np.full(n, -1, np.int32),
            fragment=np.zeros(n, np.bool_),
            vlan_tag=np.array(col(batch.vlan_tag), np.int32),
            vlan_tag2=np.array(col(batch.vlan_tag2), np.int32),
            labels=self.labels,
            flow_space=self._space,
            head=None if self.heads is None else np.full(n, -1, np.int32),
        )
        if batch.tunnels is not None:
            own = batch.tunnels.slice(0, len(batch)) if rows is None else batch.tunnels.take(rows)
            own.side = np.zeros(len(own), np.int8)  # (a slice shares the batch's)
            lb.tunnels = own if len(own) else None
        seq0 = self._seq
        self._seq += n
        # Details, by row of lb (their VLAN tags join the columns, or ``vlan`` if more).
        special: list[tuple[int, Decoded]] = []
        frags: list[tuple[int, Decoded]] = []  # fragments with nothing else special
        if batch.details:
            if rows is None:
                where = {k: k for k in batch.details}
            else:
                keys = np.array(sorted(batch.details), np.int64)
                at = np.searchsorted(rows, keys)
                ok = (at < n) & (rows[np.minimum(at, n - 1)] == keys)
                where = dict(zip(keys[ok].tolist(), at[ok].tolist(), strict=True))
            for k in sorted(where):
                d = batch.details[k]
                i = where[k]
                if len(d.vlan) > 2:
                    lb.vlan[i] = d.vlan
                elif d.vlan:
                    lb.vlan_tag[i] = d.vlan[0]
                    if len(d.vlan) > 1:
                        lb.vlan_tag2[i] = d.vlan[1]
                if d.inner or d.quoted or d.dnssd or d.dnssd_instances or d.problem:
                    special.append((i, d))
                elif d.fragment:
                    frags.append((i, d))
        # (A fragment labelled one by one, e.g. with a problem, keeps them all so.)
        if frags and (
            any(d.fragment for _, d in special) or not self._fragments_in_order(lb, frags)
        ):
            special = sorted(special + frags)  # one by one, as the reference goes
        is_special = np.zeros(n, np.bool_)
        if special:
            is_special[[i for i, _ in special]] = True

        # Vector rows' events: outer ports of the port transports.
        proto = lb.proto
        ported = (~is_special) & (proto < _N_TRANSPORTS) & (lb.src_port >= 0) & (lb.dst_port >= 0)
        vrows = np.flatnonzero(ported)
        # Tunnelled rows' inner headers (in the columns): one event each, after the row's.
        tsel = np.zeros(0, np.int64)  # the entries of lb.tunnels with an event
        t = lb.tunnels
        if t is not None:
            tsel = np.flatnonzero((t.proto < _N_TRANSPORTS) & (t.src_port >= 0) & (t.dst_port >= 0))
        nt = int(tsel.size)
        extra = _Events()
        made: list[_Row] = []
        resolved_late: list[tuple[_Row, int]] = []  # (row, event) of waiting rows resolved here
        gave_up: list[_Row] = []
        if special or self._unresolved:
            self._specials(lb, special, seq0, extra, made, resolved_late, gave_up)
        codes, src_is_dst, flow_dir, lb.new_flows = self._decide(lb, vrows, tsel, extra)
        nv = int(vrows.size)
        if t is not None and nt:
            t.side[tsel] = np.where(src_is_dst[nv : nv + nt], SIDE_DST, SIDE_SRC)
        lb.flow[vrows] = flow_dir[:nv]
        if lb.head is not None:
            lb.head[vrows] = self._ev_head[:nv]
        if self.heads is not None:
            self.heads.time.see(lb.ts_ns)
        # Vector rows take their decision.
        vcode = codes[:nv]
        side = np.where(src_is_dst[:nv], SIDE_DST, SIDE_SRC).astype(np.int8)
        lb.side[vrows] = side
        lb.basis[vrows] = (vcode >> 1) & 7
        lb.ambiguous[vrows] = (vcode >> 4) & 1 > 0
        # Counts of the vector rows (the one-by-one rows count as their records are made).
        c = self.counts
        nspecial = len(special)
        c.packets += n - nspecial
        chosen = np.where(side == SIDE_DST, lb.dst_port[vrows], lb.src_port[vrows])
        labelled = int(
            np.count_nonzero(
                self.labels.assigned(proto[vrows].astype(np.int64), chosen.astype(np.int64))
            )
        )
        c.labelled += labelled
        c.unlabelled += n - nspecial - labelled
        c.non_ip += int(np.count_nonzero((lb.ip_version == 0) & ~is_special))
        # One-by-one rows, in the reference's order of record making.
        first_extra = nv + nt
        for row in made:
            if not row.done:
                self._finish_row(row, codes, src_is_dst, first_extra)
        for row, _ in resolved_late:
            self._finish_row(row, codes, src_is_dst, first_extra)
        for row in gave_up:
            self._finish_row(row, codes, src_is_dst, first_extra)
        self._held.append([lb, 0])
        yield from self._release()

    def finish(self) -> Iterator[LabelledBatch]:
        """Output what is still held back (fragments whose first never came)."""
        while self._unresolved:
            row = self._unresolved.popleft()
            if row.waiting:
                self._give_up(row)
                self._finish_row(row, np.zeros(0, np.int64), np.zeros(0, np.bool_), 0)
        self._waiting.clear()
        yield from self._release()

    def records(self, batch: DecodedBatch, mask: B | None = None) -> Iterator[PacketRecord]:
        """Like the reference's ``feed``: PacketRecords ready (call :meth:`finish_records`)."""
        for lb in self.feed(batch, mask):
            yield from lb.iter_records()

    def finish_records(self) -> Iterator[PacketRecord]:
        for lb in self.finish():
            yield from lb.iter_records()

    def _release(self) -> Iterator[LabelledBatch]:
        while self._unresolved and not self._unresolved[0].waiting:
            self._unresolved.popleft()
        stop = self._unresolved[0] if self._unresolved else None
        while self._held:
            entry = self._held[0]
            lb, start = entry
            assert isinstance(lb, LabelledBatch) and isinstance(start, int)
            if stop is not None and stop.lb is lb:
                if stop.i > start:
                    yield lb.slice(start, stop.i)
                    entry[1] = stop.i
                return
            self._held.popleft()
            yield lb if start == 0 else lb.slice(start, len(lb))

    def _fragments_in_order(self, lb: LabelledBatch, frags: list[tuple[int, Decoded]]) -> bool:
        """Label ``frags`` (rows of IP fragments) as vector rows when the block's
        fragments need none of the reference's holding back: every later fragment's first
        is remembered when it comes, and no first fragment is awaited (the common case:
        fragments in order). Later fragments take their first's ports; returns False,
        changing nothing, otherwise.

        The first fragments' ports are remembered as the reference does (the oldest of
        more than ``_MAX_FRAGMENT_KEYS`` forgotten): simulated first, in row order, then
        done once every later fragment is known to find its first."""
        if self._waiting:
            return False
        known = self._first_fragments
        firsts = [(i, d) for i, d in frags if d.fragment is not None and d.fragment.offset == 0]
        # The keys that may be forgotten in the block: the oldest, one per new key.
        over = len(known) + len(firsts) - _MAX_FRAGMENT_KEYS
        doomed = list(islice(known, over)) if over > 0 else []
        doomed_at = {k: j for j, k in enumerate(doomed)}
        size = len(known)
        forgotten = 0
        added: dict[tuple[str, str, int, int], tuple[int | None, int | None]] = {}
        changed: dict[tuple[str, str, int, int], tuple[int | None, int | None]] = {}
        later: list[tuple[int, tuple[int | None, int | None]]] = []
        never = len(doomed)
        for i, d in frags:
            frag = d.fragment
            assert frag is not None
            key = frag.key
            if key in added:
                remembered = True
            else:
                remembered = key in known and doomed_at.get(key, never) >= forgotten
            if frag.offset == 0:
                ports = (d.src_port, d.dst_port)
                if key in added:
                    added[key] = ports
                elif remembered:
                    changed[key] = ports
                else:
                    added[key] = ports
                    size += 1
                    if size > _MAX_FRAGMENT_KEYS:
                        if forgotten == len(doomed):
                            return False  # (a key of this block forgotten: one by one)
                        forgotten += 1
                        size -= 1
                continue
            if not remembered:
                return False
            got = added.get(key) or changed.get(key) or known[key]
            later.append((i, got))
        # What the reference does, in row order.
        for _, d in firsts:
            assert d.fragment is not None
            known[d.fragment.key] = (d.src_port, d.dst_port)
            if len(known) > _MAX_FRAGMENT_KEYS:
                known.popitem(last=False)
        if later:
            at = np.array([i for i, _ in later], np.int64)
            lb.src_port[at] = [-1 if sp is None else sp for _, (sp, _) in later]
            lb.dst_port[at] = [-1 if dp is None else dp for _, (_, dp) in later]
        lb.fragment[[i for i, _ in frags]] = True
        self.counts.fragments += len(frags)
        return True

    # -- rows built one by one ----------------------------------------------------------

    def _specials(
        self,
        lb: LabelledBatch,
        special: list[tuple[int, Decoded]],
        seq0: int,
        ev: _Events,
        made: list[_Row],
        resolved_late: list[tuple[_Row, int]],
        gave_up: list[_Row],
    ) -> None:
        """Fragments, hold-back and give-ups as the reference's ``_add``/``_drain`` do them;
        queues the events of these rows (positions interleave with the vector rows)."""
        ts = lb.ts_ns
        n = len(lb)
        cur = 0

        def drain_until(stop: int) -> None:
            # The reference checks the oldest unresolved row against every newer row.
            nonlocal cur
            while cur < stop:
                while self._unresolved and not self._unresolved[0].waiting:
                    self._unresolved.popleft()
                if not self._unresolved:
                    cur = stop
                    return
                h = self._unresolved[0]
                seqs_from = seq0 + 1 + cur
                # First row n in [cur, stop) with seq_n - seq_h > window or ts too far.
                k_seq = max(cur, h.seq + FRAGMENT_WINDOW_PACKETS + 1 - (seq0 + 1))
                del seqs_from
                seg = ts[cur:stop]
                late = np.flatnonzero((seg - h.ts_ns) / 1e9 > FRAGMENT_WINDOW_SECONDS)
                k = min(k_seq, cur + int(late[0]) if late.size else stop)
                if k >= stop:
                    cur = stop
                    return
                self._unresolved.popleft()
                self._give_up(h)
                gave_up.append(h)
                cur = k  # the same newest row checks the next oldest

        for i, d in special:
            drain_until(i)
            row = self._make_row(lb, i, d, seq0 + 1 + i)
            made.append(row)
            frag = d.fragment
            if frag is not None:
                self.counts.fragments += 1
                if frag.offset == 0:
                    self._first_fragments[frag.key] = (row.src_port, row.dst_port)
                    if len(self._first_fragments) > _MAX_FRAGMENT_KEYS:
                        self._first_fragments.popitem(last=False)
                    self._events_of(row, i, ev)
                    for k, waiting in enumerate(self._waiting.pop(frag.key, ())):
                        waiting.src_port, waiting.dst_port = row.src_port, row.dst_port
                        self._events_of(waiting, i, ev, sub=32 + k)
                        waiting.waiting = False
                        resolved_late.append((waiting, waiting.outer))
                else:
                    first = self._first_fragments.get(frag.key)
                    if first is not None:
                        row.src_port, row.dst_port = first
                        self._events_of(row, i, ev)
                    else:
                        if self.heads is not None:
                            self.heads.waited.append(frag.key)
                        self._waiting.setdefault(frag.key, []).append(row)
                        self._unresolved.append(row)
                        row.waiting = True  # made later (resolved or given up)
                        made.pop()
            else:
                self._events_of(row, i, ev)
            cur = i  # the row itself is the newest for the drain
            drain_until(i + 1)
        drain_until(n)

    def _make_row(self, lb: LabelledBatch, i: int, d: Decoded, seq: int) -> _Row:
        ver = int(lb.ip_version[i])
        sraw = bytes(lb.src_addr[i])
        draw = bytes(lb.dst_addr[i])
        sp = int(lb.src_port[i])
        dp = int(lb.dst_port[i])
        fl = int(lb.tcp_flags[i])
        return _Row(
            lb=lb,
            i=i,
            seq=seq,
            ts_ns=int(lb.ts_ns[i]),
            src_ip=address_text(ver, sraw) if ver else None,
            dst_ip=address_text(ver, draw) if ver else None,
            src_bin=(ver, sraw),
            dst_bin=(ver, draw),
            proto=PROTOS[int(lb.proto[i])],
            src_port=None if sp < 0 else sp,
            dst_port=None if dp < 0 else dp,
            tcp_flags=None if fl < 0 else fl,
            detail=d,
        )

    def _events_of(self, row: _Row, i: int, ev: _Events, sub: int = 0) -> None:
        """Queue the side-memory calls the reference's ``_record`` makes for ``row``."""
        base = i * 64 + sub
        row.outer = -1
        row.inner = []
        sp, dp = row.src_port, row.dst_port
        if sp is not None and dp is not None and row.proto in TRANSPORTS:
            row.outer = ev.add(
                base,
                PROTO_CODE[row.proto],
                (*row.src_bin, sp),
                (*row.dst_bin, dp),
                -1 if row.tcp_flags is None else row.tcp_flags,
                row.ts_ns,
            )
        for k, e in enumerate(row.detail.inner):
            if e.src_port is not None and e.dst_port is not None and e.proto in TRANSPORTS:
                k_ev = ev.add(
                    base + 1 + k if sub == 0 else base,
                    PROTO_CODE[e.proto],
                    (*_packed(e.src_ip), e.src_port),
                    (*_packed(e.dst_ip), e.dst_port),
                    -1,
                    row.ts_ns,
                )
                row.inner.append(k_ev)
                ev.inner.append(k_ev)
            else:
                row.inner.append(-1)

    def _give_up(self, row: _Row) -> None:
        frag = row.detail.fragment
        if frag is not None:
            rows = self._waiting.get(frag.key)
            if rows and row in rows:
                rows.remove(row)
                if not rows:
                    del self._waiting[frag.key]
        row.waiting = False
        row.outer = -1
        row.inner = [-1] * len(row.detail.inner)
        self.counts.unresolved_fragments += 1
        self.counts.add_problem("non-first fragment whose first fragment was not seen")

    def _finish_row(self, row: _Row, codes: I64, src_is_dst: B, nv: int) -> None:
        """Build the record of ``row`` from its events' decisions (the reference's ``_record``)."""
        lb, i = row.lb, row.i
        counts = self.counts
        counts.packets += 1
        d = row.detail
        problem = d.problem
        if problem:
            counts.malformed += 1
            counts.add_problem(problem)
        if row.src_ip is None:
            counts.non_ip += 1
        ts = seconds(row.ts_ns)
        label: PortLabel | None = None
        side = SIDE_NONE
        basis = -1
        ambiguous = False
        sp, dp = row.src_port, row.dst_port
        if row.outer >= 0:
            assert sp is not None and dp is not None
            e = nv + row.outer
            side = SIDE_DST if src_is_dst[e] else SIDE_SRC
            code = int(codes[e])
            p = PROTO_CODE[row.proto]
            label = self.labels.label(p, dp if side == SIDE_DST else sp)
            basis = (code >> 1) & 7
            ambiguous = bool((code >> 4) & 1)
            if lb.head is not None and e < self._ev_head.size:
                lb.head[i] = self._ev_head[e]
        if label is not None and label.service:
            counts.labelled += 1
        else:
            counts.unlabelled += 1
        inner: list[EndpointLabel] = []
        for e_end, k in zip(d.inner, row.inner, strict=True):
            service: PortLabel | None = None
            if k >= 0:
                assert e_end.src_port is not None and e_end.dst_port is not None
                p = PROTO_CODE[e_end.proto]
                to_dst = bool(src_is_dst[nv + k])
                service = self.labels.label(p, e_end.dst_port if to_dst else e_end.src_port)
            inner.append(_endpoint_label(e_end, service))
        record = PacketRecord(
            frame=int(lb.frame[i]),
            file=lb.file,
            ts=ts,
            len=int(lb.wirelen[i]),
            caplen=int(lb.caplen[i]),
            src_ip=row.src_ip,
            dst_ip=row.dst_ip,
            proto=row.proto,
            src_port=sp,
            dst_port=dp,
            service_side=SIDE_NAME[side],
            basis=BASES[basis] if basis >= 0 else None,
            ambiguous=ambiguous,
            dnssd=self._dnssd_labels(d) if d.dnssd else (),
            inner=tuple(inner),
            quoted=self._quoted(d.quoted) if d.quoted else None,
            fragment=d.fragment is not None,
            vlan=d.vlan,
            **label_fields(label),
            ts_ns=row.ts_ns,
            problem=problem,
            tcp_flags=row.tcp_flags,
        )
        lb.records[i] = record
        # The columns say what the record says (summaries read them).
        lb.src_port[i] = -1 if sp is None else sp
        lb.dst_port[i] = -1 if dp is None else dp
        lb.side[i] = side
        lb.basis[i] = basis
        lb.ambiguous[i] = ambiguous
        row.done = True

    def _quoted(self, e: Endpoints) -> EndpointLabel:
        return quoted_label(e, lambda t, port: self.labels.label(PROTO_CODE[t], port))

    def _dnssd_labels(self, d: Decoded) -> tuple[DnssdLabel, ...]:
        key = (d.dnssd, d.dnssd_instances)
        got = self._dnssd_of.get(key)
        if got is None:
            if len(self._dnssd_of) >= 4096:
                self._dnssd_of.clear()
            got = self._dnssd_of[key] = dnssd_labels(self.index, self._dnssd, d)
        return got

    # -- the side decision, per flow ------------------------------------------------------

    def _decide(
        self, lb: LabelledBatch, vrows: I64, tsel: I64, extra: _Events
    ) -> tuple[I64, B, I32, I32]:
        """Decision code of every event (vector rows first, then the inner headers of
        entries ``tsel`` of ``lb.tunnels``, then ``extra``), whether the service is the
        event's destination, each event's flow slot and direction (LabelledBatch.flow),
        and the slots given to new flows."""
        nv = int(vrows.size)
        nt = int(tsel.size)
        ne = len(extra.pos)
        n = nv + nt + ne
        t = lb.tunnels
        self._free.extend(self._freed)
        self._freed = []
        if n == 0:
            empty = np.zeros(0, np.int32)
            self._ev_head = np.zeros(0, np.int64)
            return np.zeros(0, np.int64), np.zeros(0, np.bool_), empty, empty

        def column(
            values: npt.NDArray[Any], inner: npt.NDArray[Any] | None, more: list[Any], dtype: Any
        ) -> npt.NDArray[Any]:
            # The vector rows' values, the inner headers', then the extra events' (most
            # blocks have neither).
            parts = [values[vrows].astype(dtype, copy=False)]
            if nt:
                parts.append((values[trows] if inner is None else inner).astype(dtype, copy=False))
            if ne:
                parts.append(np.array(more, dtype))
            return np.concatenate(parts) if len(parts) > 1 else parts[0]

        def tcol(name: str) -> npt.NDArray[Any] | None:
            return None if t is None else getattr(t, name)[tsel]

        trows = np.zeros(0, np.int64) if t is None else t.row[tsel]

        pos = vrows.astype(np.int64) * 64
        if nt or ne:  # (most blocks have neither)
            pos = np.concatenate([pos, trows * 64 + 1, np.array(extra.pos, np.int64)])
        proto = column(lb.proto, tcol("proto"), extra.proto, np.int64)
        sver = column(lb.ip_version, tcol("ip_version"), extra.sver, np.int64)
        dver = column(lb.ip_version, tcol("ip_version"), extra.dver, np.int64) if ne else sver
        sport = column(lb.src_port, tcol("src_port"), extra.sport, np.int64)
        dport = column(lb.dst_port, tcol("dst_port"), extra.dport, np.int64)
        flags = column(lb.tcp_flags, np.full(nt, -1, np.int32), extra.flags, np.int64)
        ts_ns = column(lb.ts_ns, None, extra.ts_ns, np.int64)
        saddr = (
            column(lb.src_addr, tcol("src_addr"), extra.saddr, "V16").view(np.uint64).reshape(n, 2)
        )
        daddr = (
            column(lb.dst_addr, tcol("dst_addr"), extra.daddr, "V16").view(np.uint64).reshape(n, 2)
        )
        # Call order: positions (inner and extra events interleave with the rows).
        order = np.argsort(pos, kind="stable") if ne or nt else np.arange(n)
        # Endpoint order inside the flow key (any total order works: the key is canonical).
        s_hi, s_lo = _be(saddr[:, 0]), _be(saddr[:, 1])
        d_hi, d_lo = _be(daddr[:, 0]), _be(daddr[:, 1])
        s_lt = (sver < dver) | (
            (sver == dver)
            & (
                (s_hi < d_hi)
                | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
            )
        )
        same = (sver == dver) & (s_hi == d_hi) & (s_lo == d_lo) & (sport == dport)
        a_hi = np.where(s_lt, s_hi, d_hi)
        a_lo = np.where(s_lt, s_lo, d_lo)
        b_hi = np.where(s_lt, d_hi, s_hi)
        b_lo = np.where(s_lt, d_lo, s_lo)
        a_ver = np.where(s_lt, sver, dver)
        b_ver = np.where(s_lt, dver, sver)
        a_port = np.where(s_lt, sport, dport)
        b_port = np.where(s_lt, dport, sport)
        misc = ((proto << 48) | (a_ver << 40) | (b_ver << 32) | (a_port << 16) | b_port).astype(
            np.uint64
        )
        # Grouped in call order: each flow's events come out in the order of the calls.
        grouped, first_c, flow_c = _group(*(k[order] for k in (misc, a_hi, a_lo, b_hi, b_lo)))
        first = order[first_c]
        flow = np.empty(n, np.int64)
        flow[order] = flow_c
        keys_arr = np.stack([misc, a_hi, a_lo, b_hi, b_lo], axis=1)[first]
        keys: list[bytes] = np.ascontiguousarray(keys_arr).view("V40").ravel().tolist()
        # The stateless rules per event (side.decide), as codes relative to endpoint A.
        labels = self.labels
        sa = labels.assigned(proto, sport)
        da = labels.assigned(proto, dport)
        has_flags = flags >= 0
        syn = has_flags & (flags & SYN > 0)
        ack = flags & ACK > 0
        pure = syn & ~ack
        synack = syn & ack
        to_dst = np.where(syn, ~ack, np.where(da, True, np.where(sa, False, dport <= sport)))
        basis = np.where(
            syn,
            np.where(ack, 1, 0),
            np.where(da, 2, np.where(sa, 3, 4)),
        ).astype(np.int64)
        amb = ~syn & sa & da & (sport != dport)
        # Chosen endpoint is A when (chosen is dst) differs from (src is A).
        cand_a = to_dst != s_lt
        cand = cand_a.astype(np.int64) | (basis << 1) | (amb.astype(np.int64) << 4)
        state = self._flows
        slot = np.array(list(map(state.get, keys, repeat(-1))), np.int64)
        was_known = slot >= 0
        start_slot = slot.copy()  # (the fast path fills in new flows' slots)
        known = np.where(was_known, self._code[np.maximum(slot, 0)], -1)
        tsf = seconds_array(ts_ns)
        forgets = self._forgetting(known, flow, order, tsf, keys)
        if forgets is not None:
            if forgets:
                self._forget(forgets, known, slot)
            code, last_call = self._decide_fast(
                order, flow, grouped, known, cand, syn, pure, synack
            )
            new = np.flatnonzero(slot < 0)
            new_slots = self._take_slots(int(new.size))
            slot[new] = new_slots
            ev_last = order[last_call]
            self._code[slot] = code[ev_last]
            self._last[slot] = tsf[ev_last]
            # LRU order: the new flows join, then the block's flows go to the end in
            # order of their last call (the calls are distinct, so any sort gives that
            # order), with the loops in C. A known flow keeps its slot.
            state.update(zip(map(keys.__getitem__, new.tolist()), new_slots.tolist(), strict=True))
            by_last = np.argsort(last_call)
            deque(map(state.move_to_end, map(keys.__getitem__, by_last.tolist())), maxlen=0)
            self._min_last = min(self._min_last, float(tsf.min()))
            ev_slot = slot[flow]
        else:
            self.slow_blocks += 1
            evicted = self.evicted
            code, ev_slot, new_slots = self._decide_slow(order, flow, keys, cand, pure, synack, tsf)
            if self.heads is not None and self.evicted > evicted:
                self.heads.evicting = True
        dec_a = (code & 1) > 0
        src_is_dst = (dec_a != s_lt) | same
        flow_dir = (ev_slot * 2 + (~s_lt)).astype(np.int32)
        if self.heads is not None:
            inner = np.zeros(n, np.bool_)
            inner[nv : nv + nt] = True
            if extra.inner:
                inner[nv + nt + np.array(extra.inner, np.int64)] = True
            events = BlockEvents(
                order,
                flow,
                keys,
                was_known,
                start_slot,
                ev_slot,
                cand,
                syn,
                pure,
                synack,
                inner,
                pos,
                proto,
                tsf,
            )
            self._ev_head = self.heads.track(events, lb.ts_ns)
        return code, src_is_dst, flow_dir, new_slots.astype(np.int32)

    def _take_slots(self, k: int) -> I64:
        """``k`` slots for new flows: forgotten flows' first, then new ones."""
        free = self._free
        reused = free[len(free) - k :] if k else []
        del free[len(free) - len(reused) :]
        fresh = k - len(reused)
        start = self._slots
        self._slots += fresh
        if self._slots > self._code.size:
            size = max(self._slots, 2 * self._code.size)
            self._code = np.resize(self._code, size)
            self._last = np.resize(self._last, size)
        return np.concatenate([np.array(reused, np.int64), np.arange(start, start + fresh)])

    def _forgetting(
        self,
        known: I64,
        flow: I64,
        order: I64,
        tsf: npt.NDArray[np.float64],
        keys: list[bytes],
    ) -> list[tuple[bytes, int, int, int]] | None:
        """When the block can be decided at once: the remembered flows it forgets, each
        with its slot, the event whose new flow forgets it and its block flow (-1: not
        called here); empty when none; None when it must go call by call.

        Flows are forgotten when a call makes a flow. Flows called in a block at most
        ``idle_timeout`` long are not idle in it. Forgetting walks from the least
        recently called flow and stops at the first one not idle: when the flows idle by
        the block's end are the first ones in that order, the walk is replayed on them
        alone, at the calls making flows (the first calls of flows unknown here, and of
        those forgotten before them); a flow called before the walk reaches it has left
        the front."""
        new = known < 0
        if not new.any():
            return []
        if len(self._flows) + int(np.count_nonzero(new)) > self.max_flows:
            return None
        n = len(flow)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        first_call = np.full(len(keys), n, np.int64)
        np.minimum.at(first_call, flow, rank)
        # Latest call that makes a flow: the first call of each new flow.
        newest = float(tsf[order[first_call[new]]].max())
        idle = self.idle_timeout
        if newest - min(self._min_last, float(tsf.min())) <= idle:
            return []
        if self._flows:  # the bound may be stale: recompute it
            self._min_last = float(self._last[self._live_slots()].min())
        hi = float(tsf.max())
        if newest - min(self._min_last, float(tsf.min())) <= idle:
            return []
        if hi - float(tsf.min()) > idle:
            return None
        # The idle flows at the front, in order.
        group = {k: g for g, k in enumerate(keys)}
        lasts = self._last
        front: list[tuple[bytes, int]] = []
        items = iter(self._flows.items())
        for key, s in items:
            if not hi - float(lasts[s]) > idle:
                # Idle flows behind this one stay if it does (not called here).
                rest = np.fromiter((t for _, t in items), np.int64)
                if rest.size and hi - float(lasts[rest].min()) > idle and key in group:
                    return None
                break
            front.append((key, s))
        if not front:
            return []
        flows = [group.get(k, -1) for k, _ in front]
        called = [int(first_call[g]) if g >= 0 else n for g in flows]
        c_last = lasts[np.array([t for _, t in front], np.int64)].tolist()
        ts_rank = tsf[order].tolist()
        making = np.sort(first_call[new]).tolist()  # a heap: sorted
        goes = [n] * len(front)
        at = 0  # the walk's front among ``front``
        while making and at < len(front):
            r = heapq.heappop(making)
            now = ts_rank[r]
            while at < len(front):
                if called[at] < r:  # called while remembered: moved to the back
                    at += 1
                elif now - c_last[at] > idle:
                    goes[at] = r
                    if called[at] < n:  # made again at its first call
                        heapq.heappush(making, called[at])
                    at += 1
                else:
                    break
        return [
            (key, s, int(order[g]), f)
            for (key, s), g, f in zip(front, goes, flows, strict=True)
            if g < n
        ]

    def _forget(self, forgets: list[tuple[bytes, int, int, int]], known: I64, slot: I64) -> None:
        """Forget the flows of ``forgets`` (see :meth:`_forgetting`) before the block is
        decided at once: those the block calls are new at their first call."""
        state = self._flows
        again: list[int] = []
        for key, s, event, g in forgets:
            del state[key]
            self._freed.append(s)  # given again from the next block on, as call by call
            self.evicted += 1
            if self.heads is not None:
                self.heads.note_eviction(event)
            if g >= 0:
                again.append(g)
        known[again] = -1
        slot[again] = -1
        if self.heads is not None:
            self.heads.evicting = True

    def _live_slots(self) -> I64:
        """The slots of every remembered flow."""
        state = self._flows
        return np.fromiter(state.values(), np.int64, len(state))

    @staticmethod
    def _decide_fast(
        order: I64,
        flow: I64,
        grouped: I64,
        known: I64,
        cand: I64,
        syn: B,
        pure: B,
        synack: B,
    ) -> tuple[I64, I64]:
        """Decision code of every event, and each flow's last call (its rank in call
        order). ``grouped`` has the call ranks of each flow's events together, in call
        order (the flows themselves in any order)."""
        n = len(flow)
        g = flow[order]
        sorted_idx = grouped
        ev = order[sorted_idx]  # events grouped by flow, call order inside each flow
        gs = g[sorted_idx]
        start = np.ones(n, np.bool_)
        start[1:] = gs[1:] != gs[:-1]
        start_pos = np.maximum.accumulate(np.where(start, np.arange(n), 0))
        syn_s = syn[ev].astype(np.int64)
        cs = np.cumsum(syn_s)
        prior = cs - syn_s - (cs - syn_s)[start_pos]
        k = known[gs]
        known_synish = (k >= 0) & (((k >> 1) & 7) <= 1)
        effective = (start & (k < 0)) | pure[ev] | (synack[ev] & (prior == 0) & ~known_synish)
        last_eff = np.maximum.accumulate(np.where(effective, np.arange(n), -1))
        valid = last_eff >= start_pos
        code_s = np.where(valid, cand[ev[np.maximum(last_eff, 0)]], k)
        code = np.empty(n, np.int64)
        code[ev] = code_s
        # A flow's last call ends its run (calls ascend inside each); by flow number.
        end = np.ones(n, np.bool_)
        end[:-1] = start[1:]
        last_call = np.empty(int(start.sum()), np.int64)
        last_call[gs[end]] = sorted_idx[end]
        return code, last_call

    def _decide_slow(
        self,
        order: I64,
        flow: I64,
        keys: list[bytes],
        cand: I64,
        pure: B,
        synack: B,
        tsf: npt.NDArray[np.float64],
    ) -> tuple[I64, I64, I64]:
        """The reference's FlowSides.side, call by call (exact eviction). Returns the
        codes, each event's slot and the slots given to new flows."""
        state = self._flows
        code = np.empty(len(flow), np.int64)
        ev_slot = np.empty(len(flow), np.int64)
        flow_l = flow.tolist()
        cand_l = cand.tolist()
        pure_l = pure.tolist()
        synack_l = synack.tolist()
        ts_l = tsf.tolist()
        codes, lasts = self._code, self._last
        # (code, last ts) of the slots used in this block, written back at its end.
        now: dict[int, tuple[int, float]] = {}
        new_slots: list[int] = []
        for e in order.tolist():
            key = keys[flow_l[e]]
            slot = state.get(key)
            is_new = slot is None
            if slot is None:
                c = cand_l[e]
                slot = int(self._take_slots(1)[0])
                codes, lasts = self._code, self._last  # they may have grown
                new_slots.append(slot)
                state[key] = slot
            else:
                got = now.get(slot)
                known = got[0] if got is not None else int(codes[slot])
                reset = pure_l[e] or (synack_l[e] and ((known >> 1) & 7) > 1)
                c = cand_l[e] if reset else known
                state.move_to_end(key)
            ts = ts_l[e]
            now[slot] = (c, ts)
            code[e] = c
            ev_slot[e] = slot
            if is_new:
                while state:
                    k0, s0 = next(iter(state.items()))
                    front = now.get(s0)
                    last = front[1] if front is not None else float(lasts[s0])
                    if len(state) > self.max_flows or ts - last > self.idle_timeout:
                        del state[k0]
                        now.pop(s0, None)
                        self._freed.append(s0)
                        self.evicted += 1
                        if self.heads is not None:
                            self.heads.note_eviction(e)
                    else:
                        break
        if now:
            used = np.fromiter(now, np.int64, len(now))
            codes[used] = [v[0] for v in now.values()]
            lasts[used] = [v[1] for v in now.values()]
        live = self._live_slots()
        self._min_last = float(lasts[live].min()) if live.size else float("inf")
        return code, ev_slot, np.array(new_slots, np.int64)


@dataclass(frozen=True, slots=True)
class BlockEvents:
    """A block's side-memory events as ``_decide`` sees them (for :class:`Heads`): call
    order, block flow of each, the flows' keys, whether each was known before the block
    and its slot then (-1: none), each event's slot, candidate decision code, SYN / pure
    SYN / SYN-ACK / tunnelled header flags, position (row * 64 + sub), transport code
    and time."""

    order: I64
    flow: I64
    keys: list[bytes]
    known: B
    start_slot: I64
    slot: I64
    cand: I64
    syn: B
    pure: B
    synack: B
    inner: B
    pos: I64
    proto: I64
    ts: npt.NDArray[np.float64]


class Heads:
    """What a labeller that started mid-capture assumed. A flow first met (in this
    part) without a pure SYN was decided on that packet, where the capture's earlier
    part may have decided it already: it is a *head*, numbered in the order met, until
    its first SYN or SYN-ACK; its rows until then are ``LabelledBatch.head`` rows
    (marked with the head's number).

    Per head: ``keys`` (the labeller's flow key), ``code`` (the decision its rows took),
    ``synack`` (the decision of a SYN-ACK ending it, -1 if none did), ``sure`` (its
    decision names the endpoint any earlier one would: its rows are not head rows),
    ``inner`` (a tunnelled header was labelled in it), ``before`` (the latest timestamp
    up to its first packet). Per flow made, in order: ``made_keys``, ``made_ts`` and
    ``evictions`` (the indexes of those whose making made the labeller forget flows).
    """

    def __init__(self) -> None:
        self.hid = np.zeros(0, np.int64)  # per slot: its flow's head, -1 for none
        self.open = np.zeros(0, np.bool_)  # per slot: its head has not ended
        self.keys: list[bytes] = []
        self.code = np.zeros(0, np.int64)
        self.synack = np.zeros(0, np.int64)
        self.sure = np.zeros(0, np.bool_)
        self.inner = np.zeros(0, np.bool_)
        self.before = np.zeros(0, np.float64)
        self.made_keys: list[bytes] = []
        self.made_ts: list[float] = []
        self.evictions: list[int] = []
        self.evicting = False  # set by the labeller for a block that forgot flows
        self._seen: set[bytes] = set()
        self._evicting_events: set[int] = set()
        self.time = TimeOrder()  # the timestamps labelled so far
        #: Non-first fragments met before any first of their datagram: the part before
        #: may hold one (then one process would have taken its ports).
        self.waited: list[tuple[str, str, int, int]] = []

    def note_eviction(self, event: int) -> None:
        """The labeller forgot flows when event ``event`` (of the block) made a flow."""
        self._evicting_events.add(event)

    def _grow_slots(self, size: int) -> None:
        if size > self.hid.size:
            size = max(size, 2 * self.hid.size, 1024)
            self.hid = _grown(self.hid, size, -1)
            self.open = _grown(self.open, size, False)

    def _add_heads(self, k: int) -> I64:
        """Numbers for ``k`` new heads (their columns grown)."""
        at = len(self.keys)
        if at + k > self.code.size:
            size = max(at + k, 2 * self.code.size, 1024)
            self.code = _grown(self.code, size, -1)
            self.synack = _grown(self.synack, size, -1)
            self.sure = _grown(self.sure, size, False)
            self.inner = _grown(self.inner, size, False)
            self.before = _grown(self.before, size, 0.0)
        return np.arange(at, at + k, dtype=np.int64)

    def track(self, ev: BlockEvents, ts_ns: I64) -> I64:
        """Update the heads for a block's events (``ts_ns``: its rows'); each event's
        head (-1: none, and for the rows of ``sure`` heads)."""
        order, flow, keys, known, ev_slot = ev.order, ev.flow, ev.keys, ev.known, ev.slot
        cand, syn, pure, synack, inner = ev.cand, ev.syn, ev.pure, ev.synack, ev.inner
        pos, proto, tsf = ev.pos, ev.proto, ev.ts
        n = int(flow.size)
        self._grow_slots(int(ev_slot.max()) + 1 if n else 0)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        # Rows' latest timestamps up to each (for ``before``).
        top = np.maximum(seconds_array(np.maximum.accumulate(ts_ns)), self.time.latest_seconds())
        if self.evicting:
            # Flows forgotten and made again inside the block: event by event.
            self.evicting = False
            out = self._track_events(ev, top)
            self._evicting_events.clear()
            return out
        nflows = int(known.size)
        big = np.iinfo(np.int64).max
        first = np.full(nflows, big, np.int64)
        np.minimum.at(first, flow, rank)
        first_syn = np.full(nflows, big, np.int64)
        np.minimum.at(first_syn, flow, np.where(syn, rank, big))
        fslot = np.full(nflows, -1, np.int64)
        first_ev = order[first[first < big]] if nflows else np.zeros(0, np.int64)
        fslot[flow[first_ev]] = ev_slot[first_ev]
        new = np.flatnonzero(~known)
        if new.size:
            new = new[np.argsort(first[new])]  # in the order they were made
            ev0 = order[first[new]]
            new_keys = [keys[f] for f in new.tolist()]
            self.made_keys.extend(new_keys)
            self.made_ts.extend(tsf[ev0].tolist())
            seen = self._seen
            fresh = np.array([k not in seen for k in new_keys], np.bool_)
            seen.update(new_keys)
            # A flow made again (forgotten in this part) is decided afresh, as in one
            # process: only a first meeting without a pure SYN is a head.
            is_new_head = fresh & ~pure[ev0]
            slots = fslot[new]
            self.hid[slots] = -1
            hf = np.flatnonzero(is_new_head)
            if hf.size:
                ids = self._add_heads(int(hf.size))
                e = ev0[hf]
                self.keys.extend(new_keys[j] for j in hf.tolist())
                self.code[ids] = cand[e]
                # Without SYNs (not TCP) every decision names the same endpoint, whichever
                # packet made it, unless both ports are assigned (then the first one's dst).
                self.sure[ids] = (proto[e] != _TCP_CODE) & ((cand[e] >> 4) & 1 == 0)
                self.synack[ids] = -1
                self.inner[ids] = False
                self.before[ids] = top[pos[e] // 64]
                self.hid[slots[hf]] = ids
            self.open[slots] = is_new_head
        was_open = self.open[np.maximum(fslot, 0)] & (fslot >= 0)
        is_head = was_open[flow] & (rank < first_syn[flow])
        # The first SYN-flagged event of an open head ends it; a SYN-ACK's decision is
        # kept (the part before may have decided otherwise).
        ends = np.flatnonzero(was_open & (first_syn < big))
        if ends.size:
            ev_end = order[first_syn[ends]]
            ids = self.hid[fslot[ends]]
            self.synack[ids] = np.where(synack[ev_end], cand[ev_end], -1)
        self.open[fslot[fslot >= 0]] = (was_open & (first_syn == big))[fslot >= 0]
        if not self.keys:
            return np.full(n, -1, np.int64)
        ev_hid = self.hid[ev_slot]
        hit = is_head & inner
        if hit.any():
            self.inner[ev_hid[hit]] = True
        head = is_head & ~self.sure[np.maximum(ev_hid, 0)]
        return np.where(head, ev_hid, -1)

    def _track_events(self, ev: BlockEvents, top: npt.NDArray[np.float64]) -> I64:
        """:meth:`track`, one event at a time (a flow's slot may change in the block)."""
        flow, keys, ev_slot, cand = ev.flow, ev.keys, ev.slot, ev.cand
        syn, pure, synack, inner, pos, proto = (
            ev.syn,
            ev.pure,
            ev.synack,
            ev.inner,
            ev.pos,
            ev.proto,
        )
        out = np.full(int(flow.size), -1, np.int64)
        start = ev.start_slot.tolist()
        current: dict[int, int] = {}  # block flow -> its slot so far
        for e in ev.order.tolist():
            f = int(flow[e])
            slot = int(ev_slot[e])
            # A slot freed in the block is not given again in it: a flow made again
            # (forgotten first, even before its first event here) has another slot.
            if current.get(f, start[f]) != slot:
                # The event made the flow (new here, or made again after forgetting it).
                key = keys[f]
                if e in self._evicting_events:
                    self.evictions.append(len(self.made_keys))
                self.made_keys.append(key)
                self.made_ts.append(float(ev.ts[e]))
                fresh = key not in self._seen
                self._seen.add(key)
                self.hid[slot] = -1
                self.open[slot] = False
                if fresh and not pure[e]:
                    h = int(self._add_heads(1)[0])
                    self.keys.append(key)
                    self.code[h] = cand[e]
                    self.sure[h] = proto[e] != _TCP_CODE and (int(cand[e]) >> 4) & 1 == 0
                    self.synack[h] = -1
                    self.inner[h] = False
                    self.before[h] = top[int(pos[e]) // 64]
                    self.hid[slot] = h
                    self.open[slot] = True
            current[f] = slot
            h = int(self.hid[slot])
            if h < 0 or not self.open[slot]:
                continue
            if syn[e]:
                self.synack[h] = cand[e] if synack[e] else -1
                self.open[slot] = False
                continue
            if inner[e]:
                self.inner[h] = True
            if not self.sure[h]:
                out[e] = h
        return out


#: Rows of the steps a block longer than the idle timeout is cut at (VectorAnnotator.feed).
PIECE_ROWS = 1024


def _grown(a: npt.NDArray[Any], size: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full(size, fill, a.dtype)
    out[: a.size] = a
    return out


def _be(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Native 8-byte words of addresses as numbers ordered like the bytes."""
    return words.byteswap() if np.little_endian else words
