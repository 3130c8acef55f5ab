"""Big captures summarised by two processes, each reading about half of them; the two
halves are joined exactly (the summary is the one-process summary, byte for byte).

The halves meet inside a big uncompressed pcap or pcapng (at a record or block: the
child finds one after the middle by its shape, and a pcapng's interfaces from the file's
first blocks; both are checked at the join), or, between files of a run of captures (any
format), at the start of a file. A forked child labels and summarises the second half as
if the capture began there. What that assumption may get wrong is kept apart, to be
settled at the join:

* the rows labelled before their flow's first SYN or SYN-ACK, in flows the child first
  met without a SYN (``LabelledBatch.head``), are summed per flow, not per service: the
  first half's decision for that flow, if it remembers one, says which port they count
  for;
* the first flow the child makes for each key (its *head flow*) stays unfinished: if the
  first half has that flow live, the two are one conversation (the first half's uid,
  ends and service; the counts added up by endpoint).

Flows the child makes are numbered again after the first half's. Forgetting idle flows
is replayed at the join: with timestamps that never go back, which flows one process
would have forgotten, and when, follows from the flows' last packets and the order in
which the child met new flows. The join checks its conditions first (the halves meet at
one record; the child forgot flows only where one process would have, and when time
went back, no flow was idle long enough to be forgotten; no fragment's parts straddle
the join; no SYN would restart a connection the first half closed; ...). When one
fails, the parent reads the second half itself and the child's work is dropped:
``summarise`` says why. The parent also stops the child early when the first half's
first rows make many short flows (the join's work grows with the flows the child meets
first: there it would cost more than the child saves), or are mostly tunnelled (the
child's guesses of inner flows seldom join).
"""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing
import os
import signal
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from portsniff.annotate.annotator import _MAX_FRAGMENT_KEYS
from portsniff.annotate.parallel import Unit, UnitResult, iter_unit
from portsniff.annotate.vector import LabelledBatch, VectorAnnotator, _grown, address_text
from portsniff.decode.packet import PROTOS
from portsniff.errors import CaptureError
from portsniff.flows import (
    ACK,
    FIN,
    RST,
    SYN,
    FlowRecord,
    FlowTable,
    _Flow,
    _new_record,
    _stored_values,
    flow_record,
    table_key,
    uid_number,
)
from portsniff.summary import Summary, Timeline
from portsniff.summary_vector import VectorSummaryBuilder, _dense_unique, service_row
from portsniff.timestamps import TimeOrder, seconds, seconds_array

if TYPE_CHECKING:
    from portsniff.annotate.pipeline import AnnotateRun, FileReport
    from portsniff.decode.batch import DecodedBatch
    from portsniff.registry.index import RegistryIndex

FlowKey = tuple[Any, ...]
_WORDS = struct.Struct("=5Q")  # a labeller flow key: misc, then A's and B's address words
_TCP = PROTOS.index("tcp")


# -- the second half's side ---------------------------------------------------------------


class HeadFlowTable(FlowTable):
    """A FlowTable that keeps each key's first flow (its head flow) out of the finished
    ones: ``heads`` maps the key to the flow and whether it ended before the end."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: dict[FlowKey, tuple[_Flow, bool]] = {}
        self._ending = False

    def _finish(self, key: FlowKey) -> None:
        if key in self.heads:
            super()._finish(key)
        else:
            self.heads[key] = (self._live.pop(key), not self._ending)

    def finish(self) -> Any:
        self._ending = True
        return super().finish()


#: Bins a head's timeline keeps (its bins widen beyond, as a Timeline's do).
_MAX_BINS = 240
#: Timeline entries held before they are summed up (and widened) per head.
_COMPACT = 1 << 18


@dataclass(slots=True)
class HeadSums:
    """The head rows' sums per head (numbered by the labeller's Heads), what a ServiceRow
    sums. Timelines are (head, bin, bytes) columns, each head's bins ``2 ** exp[head]``
    seconds wide: at most MAX_BINS bins a head, as a Timeline of its rows would have."""

    packets: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    bytes: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    first: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    last: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    vlan: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    exp: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    bins: list[npt.NDArray[np.int64]] = field(default_factory=list)  # (3, n): head, bin, bytes
    held: int = 0
    limit: int = _COMPACT  # held entries that make the next compaction

    def _grow(self, size: int) -> None:
        if size <= self.packets.size:
            return
        size = max(size, 2 * self.packets.size, 1024)
        hi, lo = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        for name, fill in (
            ("packets", 0),
            ("bytes", 0),
            ("first", hi),
            ("last", lo),
            ("exp", 0),
            ("vlan", False),
        ):
            setattr(self, name, _grown(getattr(self, name), size, fill))

    def add(self, lb: LabelledBatch, rows: npt.NDArray[np.int64]) -> None:
        """Sum ``rows`` of ``lb`` (head rows) into their heads."""
        assert lb.head is not None
        head = lb.head[rows].astype(np.int64)
        self._grow(int(head.max()) + 1)
        size = self.packets.size
        wl = lb.wirelen[rows]
        ts = lb.ts_ns[rows]
        self.packets += np.bincount(head, minlength=size)
        self.bytes += np.rint(np.bincount(head, weights=wl, minlength=size)).astype(np.int64)
        np.minimum.at(self.first, head, ts)
        np.maximum.at(self.last, head, ts)
        self.vlan[head[lb.tagged()[rows]]] = True
        # Seconds as the summary's timelines floor them, then each head's width.
        b = np.floor(seconds_array(ts)).astype(np.int64) >> self.exp[head]
        self._hold(_summed(head, b, wl.astype(np.int64)))

    def _hold(self, part: npt.NDArray[np.int64]) -> None:
        self.bins.append(part)
        self.held += part.shape[1]
        if self.held > self.limit:
            self.compact()
            # Twice what is left (at most MAX_BINS a head): compactions stay rare, and
            # each one's temporaries are about the size of the last.
            self.limit = max(_COMPACT, 2 * self.held)

    def compact(self) -> None:
        """Sum the held bins per (head, bin), widening heads beyond MAX_BINS bins."""
        if not self.bins:
            return
        head, b, nbytes = np.concatenate(self.bins, axis=1)
        while True:
            head, b, nbytes = _summed(head, b, nbytes)
            count = np.bincount(head, minlength=self.exp.size)
            wide = count > _MAX_BINS
            if not wide.any():
                break
            self.exp[wide] += 1
            hit = wide[head]
            b = np.where(hit, b >> 1, b)
        self.bins = [np.stack([head, b, nbytes])]
        self.held = int(head.size)

    def timelines(self, groups: list[list[int]]) -> list[Timeline | None]:
        """The timeline of each group of heads' rows together (None for no rows)."""
        if len(self.bins) != 1:
            self.compact()
        out: list[Timeline | None] = [None] * len(groups)
        if not self.bins:
            return out
        head, b, nbytes = self.bins[0]
        group = np.full(self.exp.size, -1, np.int64)
        top = np.zeros(len(groups), np.int64)
        for g, heads in enumerate(groups):
            at = np.array(heads, np.int64)
            group[at] = g
            top[g] = int(self.exp[at].max())
        g_of = group[head]
        keep = g_of >= 0
        g_of, head, b, nbytes = g_of[keep], head[keep], b[keep], nbytes[keep]
        # One width per group: its widest head's (narrower bins are summed into it).
        b = b >> (top[g_of] - self.exp[head])
        g_of, b, nbytes = _summed(g_of, b, nbytes)
        cuts = np.flatnonzero(np.diff(g_of)) + 1
        for gs, bs, ns in zip(
            np.split(g_of, cuts), np.split(b, cuts), np.split(nbytes, cuts), strict=True
        ):
            if not gs.size:
                continue
            g = int(gs[0])
            tl = Timeline(float(2 ** int(top[g])), dict(zip(bs.tolist(), ns.tolist(), strict=True)))
            if len(tl.bins) > _MAX_BINS:
                tl._widen(tl.width * 2)
            out[g] = tl
        return out


def _summed(
    head: npt.NDArray[np.int64], b: npt.NDArray[np.int64], nbytes: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Rows (head, bin, bytes) with the bytes of equal (head, bin) added up, ordered."""
    if not head.size:
        return np.zeros((3, 0), np.int64)
    lo = int(b.min())
    span = int(b.max()) - lo + 1
    uniq, inv = _dense_unique(head * span + (b - lo))
    total = np.rint(np.bincount(inv, weights=nbytes, minlength=uniq.size)).astype(np.int64)
    return np.stack([uniq // span, uniq % span + lo, total])


class HalfSummaryBuilder(VectorSummaryBuilder):
    """The summary of a capture's second half, its heads kept apart (module docstring)."""

    def __init__(self, caveat: str, registry: list[dict[str, Any]]) -> None:
        super().__init__(caveat, registry, HeadFlowTable())
        self.head = HeadSums()
        #: Keys whose first flow was made by a pure SYN.
        self.syn_first: set[FlowKey] = set()
        self._made_keys: set[FlowKey] = set()
        #: Keys the child made a later flow for, not with a pure SYN (its fields may
        #: come from the head's decision, as the first flow's do).
        self.remade: set[FlowKey] = set()
        #: (flows made so far, latest timestamp so far) after each block.
        self.made_by: list[tuple[int, float]] = []
        #: Per key, the latest timestamp of the IP packets before its first flow's first.
        self.ip_before: dict[FlowKey, float] = {}
        self._ip_before = np.zeros(0, np.float64)
        self._latest = -np.inf

    def add_batch(self, lb: LabelledBatch) -> None:
        # Each row's latest IP timestamp before it (flow expiry runs on IP packets).
        ts = np.where(lb.ip_version > 0, seconds_array(lb.ts_ns), -np.inf)
        before = np.empty(len(lb), np.float64)
        if len(lb):
            before[0] = self._latest
            before[1:] = np.maximum(np.maximum.accumulate(ts)[:-1], self._latest)
        self._ip_before = before
        super().add_batch(lb)
        if len(lb) and (lb.ip_version > 0).any():
            self._latest = max(self._latest, seconds(int(lb.ts_ns[lb.ip_version > 0].max())))
        self.made_by.append((self.flow_table._next_uid, self._latest))

    def _count_flows(self, flows: Sequence[FlowRecord | _Flow]) -> None:
        # Counted at the join: a flow's row may hold only head rows here (kept apart).
        pass

    def _made(self, key: FlowKey, lb: LabelledBatch, i: int) -> None:
        fl = int(lb.tcp_flags[i])
        pure_syn = int(lb.proto[i]) == _TCP and fl >= 0 and bool(fl & SYN) and not fl & ACK
        if key in self._made_keys:
            if not pure_syn:  # a pure SYN decides afresh: the flow is not the guess's
                self.remade.add(key)
            return
        self._made_keys.add(key)
        self.ip_before[key] = float(self._ip_before[i])
        if pure_syn:
            self.syn_first.add(key)

    def _services(self, lb: LabelledBatch, keep: npt.NDArray[np.bool_] | None = None) -> None:
        head = lb.head
        if head is None:
            super()._services(lb, keep)
            return
        settled = head < 0
        super()._services(lb, settled if keep is None else settled & keep)
        rows = np.flatnonzero(~settled & (lb.side > 0))
        if rows.size:
            self.head.add(lb, rows)

    def made_before(self, uid: str) -> float:
        """The latest timestamp up to the block that made flow ``uid``."""
        n = uid_number(uid)
        at = bisect.bisect_left(self.made_by, (n, -np.inf))
        return self.made_by[min(at, len(self.made_by) - 1)][1] if self.made_by else -np.inf


@dataclass(frozen=True, slots=True)
class Part:
    """The child's half: the rest of a pcap or pcapng from a byte (``unit``; None when
    the half starts with a file), then whole files."""

    unit: Unit | None
    paths: list[str]


@dataclass(slots=True)
class HalfResult:
    """What the child sends back (see module docstring)."""

    unit: UnitResult | None
    files: list[FileReport]  # the whole files read, in order
    summary: Summary
    problems: Counter[str]
    first_fragments: list[tuple[str, str, int, int]]  # the keys the child remembers
    waited: list[tuple[str, str, int, int]]
    evicted: int
    slow_blocks: int
    expired_blocks: int
    uids: int
    head_keys: list[bytes]  # per head, numbered by the labeller's Heads
    head_code: npt.NDArray[np.int64]
    head_synack: npt.NDArray[np.int64]
    head_inner: npt.NDArray[np.bool_]
    head_before: npt.NDArray[np.float64]
    sums: HeadSums
    head_flows: list[tuple[FlowKey, _Flow, bool, float]]
    syn_first: set[FlowKey]
    remade: set[FlowKey]
    ip_before: dict[FlowKey, float]
    made_keys: list[bytes]  # every flow the labeller made, in the order it made them
    made_ts: list[float]
    evictions: list[int]  # the made flows whose making made the labeller forget flows
    time: TimeOrder  # the half's timestamps


def summarise_half(
    part: Part, run: AnnotateRun, index: RegistryIndex, meta: list[dict[str, Any]]
) -> HalfResult:
    """Label and summarise ``part`` as if the capture began there (the child's work;
    ``run`` reads its whole files)."""
    from portsniff.annotate.pipeline import VECTOR_BLOCK_BYTES, FileReport
    from portsniff.caveat import CAVEAT
    from portsniff.cli_summary import SUMMARY_ROWS
    from portsniff.live.fold import FoldedSummary

    annot = VectorAnnotator(index, heads=True)
    builder = HalfSummaryBuilder(CAVEAT, meta)
    folded = FoldedSummary(builder, SUMMARY_ROWS)
    res = None
    files: list[FileReport] = []
    if part.unit is not None and split_kind(part.unit.path) == "pcapng":
        res = _pcapng_rest(part.unit, run, annot, folded)
    elif part.unit is not None:
        res = UnitResult(start=part.unit.start, next_start=part.unit.start)
        _fold(annot, iter_unit(part.unit, res, bytearray()), folded)
    for path in part.paths:
        report = FileReport(file=path)
        files.append(report)
        _fold(annot, run.read_file(path, report, None, VECTOR_BLOCK_BYTES), folded)
    for lb in annot.finish():
        folded.add_batch(lb)
    folded.flush()
    summary = builder.finish()
    builder.head.compact()
    heads = annot.heads
    assert heads is not None
    table = builder.flow_table
    assert isinstance(table, HeadFlowTable)
    nh = len(heads.keys)
    return HalfResult(
        unit=res,
        files=files,
        summary=summary,
        problems=Counter(annot.counts.problems),
        first_fragments=list(annot._first_fragments),
        waited=heads.waited,
        evicted=annot.evicted,
        slow_blocks=builder.slow_blocks,
        expired_blocks=builder.expired_blocks,
        uids=table._next_uid,
        head_keys=heads.keys,
        head_code=heads.code[:nh],
        head_synack=heads.synack[:nh],
        head_inner=heads.inner[:nh],
        head_before=heads.before[:nh],
        sums=builder.head,
        head_flows=[
            (key, f, ended, builder.made_before(f.uid)) for key, (f, ended) in table.heads.items()
        ],
        syn_first=builder.syn_first,
        remade=builder.remade,
        ip_before=builder.ip_before,
        made_keys=heads.made_keys,
        made_ts=heads.made_ts,
        evictions=heads.evictions,
        time=heads.time,
    )


def _pcapng_rest(unit: Unit, run: AnnotateRun, annot: VectorAnnotator, folded: Any) -> UnitResult:
    """Label and fold a pcapng from the first block at or after ``unit.start`` on."""
    from portsniff.annotate.pipeline import VECTOR_BLOCK_BYTES
    from portsniff.capture.reader import open_capture

    with open_capture(unit.path, block_bytes=VECTOR_BLOCK_BYTES) as reader:
        start = reader.resume_at(unit.start)
        res = UnitResult(start=start, next_start=start, state=reader.state())
        _fold(annot, run.decode_blocks(reader, res), folded)
        res.next_start = reader.next_start
        res.problems = reader.problem_counts()
        if reader.damage is not None:
            res.damage = (reader.damage.offset, reader.damage.problem)
    return res


# -- the child process ------------------------------------------------------------------


class Half:
    """The parent's end of the child summarising the second half."""

    def __init__(self, process: Any, conn: Any) -> None:
        self._process = process
        self._conn = conn
        self.error = ""  # why the child failed, when it did

    def result(self) -> HalfResult | None:
        """The child's result; None when it failed (the parent then reads the half)."""
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            kind, value = "error", f"it died (exit status {self._process.exitcode})"
        finally:
            self._conn.close()
            self._process.join()
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        self.error = str(value)
        return None

    def abort(self) -> None:
        """Stop the child now."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._conn.close()


def start_half(
    part: Part, run: AnnotateRun, index: RegistryIndex, meta: list[dict[str, Any]]
) -> Half | None:
    """Fork a child summarising ``part``; None where ``fork`` is not available."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    # Forked: the arguments are the parent's objects, not pickled.
    process = ctx.Process(target=_serve, args=(child, part, run, index, meta), daemon=True)
    process.start()
    child.close()
    return Half(process, parent)


def _serve(
    conn: Any, part: Part, run: AnnotateRun, index: RegistryIndex, meta: list[dict[str, Any]]
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides on Ctrl-C
    run.progress = None  # the parent's bar counts the child's bytes at the join
    answer: tuple[str, object]
    try:
        answer = ("ok", summarise_half(part, run, index, meta))
    except Exception as exc:  # any failure: the parent reads the half itself
        answer = ("error", f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(BrokenPipeError, OSError):
        conn.send(answer)
    conn.close()
    os._exit(0)


# -- the join -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """What the join does with the child's head flows, decided before anything changes."""

    merge: list[tuple[FlowKey, _Flow, bool]] = field(default_factory=list)
    new: list[_Flow] = field(default_factory=list)
    close_first: list[FlowKey] = field(default_factory=list)  # first-half flows a SYN ends
    codes: list[int] = field(default_factory=list)  # per head slot: the decision to count


def _ends_key(key: bytes) -> FlowKey:
    """The FlowTable key (outer flow) of a labeller flow key."""
    misc, a_hi, a_lo, b_hi, b_lo = _WORDS.unpack(key)
    a = (_word_address((misc >> 40) & 0xFF, a_hi, a_lo), (misc >> 16) & 0xFFFF)
    b = (_word_address((misc >> 32) & 0xFF, b_hi, b_lo), misc & 0xFFFF)
    return table_key(None, PROTOS[misc >> 48], a, b)


def _word_address(version: int, hi: int, lo: int) -> str:
    """An address column value given as two big-endian words, as text (address_text's;
    IPv4 written from the word: a join with many flows makes thousands)."""
    if version == 4:
        return f"{hi >> 56}.{(hi >> 48) & 0xFF}.{(hi >> 40) & 0xFF}.{(hi >> 32) & 0xFF}"
    return address_text(version, hi.to_bytes(8, "big") + lo.to_bytes(8, "big"))


def _forgotten(annot: VectorAnnotator, half: HalfResult) -> set[bytes] | str:
    """The first half's remembered flows that one process would have forgotten before
    the half met them again; why the join is refused, when the child forgot flows
    where one process would not have.

    Flows are forgotten (idle) when a flow the side memory does not know is met; with
    timestamps that never go back, the least recently used flows are the idle ones, so
    a flow is forgotten at the first such meeting more than ``idle_timeout`` after its
    last packet, and the flows the child forgot are those one process forgets when the
    meeting is new to both. The child's new flows are replayed in order."""
    state = annot._flows
    last = annot._last
    idle = annot.idle_timeout
    evicting = set(half.evictions)
    latest = -np.inf  # when the latest flow new to one process was met
    met: set[bytes] = set()
    out: set[bytes] = set()
    for c, (key, ts) in enumerate(zip(half.made_keys, half.made_ts, strict=True)):
        slot = state.get(key)
        # Made again in the half: forgotten there, as in one process (checked here).
        again = key in met
        met.add(key)
        if not (again or slot is None or latest - float(last[slot]) > idle):
            if c in evicting:
                return "the child forgot flows where one process would not have"
            continue  # met again while remembered
        if slot is not None and not again:
            out.add(key)
        latest = ts
    return out


def _plan(annot: VectorAnnotator, table: FlowTable, half: HalfResult, steady: bool) -> _Plan | str:
    """How to join ``half`` to the first half's state; why not, when it cannot be.
    ``steady``: no timestamp of the capture went back, in either half or between them
    (then expiry is followed exactly; otherwise nothing may have been idle long enough
    to expire)."""
    if (half.evicted or half.slow_blocks or half.expired_blocks) and not steady:
        return "the child forgot idle flows while time went back"
    if len(annot._flows) + len(half.made_keys) > annot.max_flows:
        return "more flows than the side memory keeps"
    if len(table._live) + half.uids > table.max_flows:
        return "more flows than the flow table keeps"
    if annot._waiting or any(r.waiting for r in annot._unresolved):
        return "a fragment of the first half waits for its first"
    ff = annot._first_fragments
    # One process remembers the first half's first fragments too. If it forgets none
    # in the child's half, it finds what the child finds (a key in both takes the
    # child's ports); if it forgets some, they are first-half keys, older than the
    # child's, unless a child's key is a first-half key too. The child never found
    # first-half keys: it waited for them (checked here).
    childs = half.first_fragments
    if (
        len(childs) >= _MAX_FRAGMENT_KEYS
        or any(k in ff for k in half.waited)
        or (len(ff) + len(childs) > _MAX_FRAGMENT_KEYS and any(k in ff for k in childs))
    ):
        return "a fragment of the child's half may belong to the first half's"
    forgotten = _forgotten(annot, half) if steady else set()
    if isinstance(forgotten, str):
        return forgotten
    plan = _Plan()
    wrong_fields: set[FlowKey] = set()  # keys whose first flow the child made on a guess
    state = annot._flows
    for j, key in enumerate(half.head_keys):
        code = int(half.head_code[j])
        slot = None if key in forgotten else state.get(key)
        if slot is not None:
            late = float(half.head_before[j]) - float(annot._last[slot]) > annot.idle_timeout
            if late and not steady:
                return "a decision may have been forgotten while time went back"
            known = int(annot._code[slot])
            synack = int(half.head_synack[j])
            if synack >= 0 and (known >> 1) & 7 <= 1 and (synack & 0x11) != (known & 0x11):
                return "a SYN-ACK that the first half's handshake outranks"
            if (known & 0x11) != (code & 0x11) and half.head_inner[j]:
                return "a tunnelled header labelled on the child's guess"
            if known != code:
                wrong_fields.add(_ends_key(key))
            code = known
        plan.codes.append(code)
    live = table._live
    closing = FIN | RST
    for fkey, f, ended, before in half.head_flows:
        mine = live.get(fkey)
        if mine is not None:
            prev = half.ip_before.get(fkey)
            if steady and prev is not None:
                # Idle flows expire at the first IP packet that finds them idle.
                if prev - mine.last > table.idle_timeout:
                    plan.close_first.append(fkey)
                    mine = None
            elif before - mine.last > table.idle_timeout:
                return "a flow may have expired before the half met it again"
        if fkey in wrong_fields and fkey in half.remade:
            return "a later flow whose service fields may come from the child's guess"
        if mine is None:
            if fkey in wrong_fields:
                return "a new flow whose service fields came from the child's guess"
            plan.new.append(f)
            continue
        if (mine.flags_orig | mine.flags_resp) & closing:
            if fkey in half.syn_first:
                plan.close_first.append(fkey)
                plan.new.append(f)
                continue
            if (f.flags_orig | f.flags_resp) & SYN:
                return "a SYN that may restart a connection the first half closed"
        plan.merge.append((fkey, f, ended))
    return plan


def join(
    builder: VectorSummaryBuilder, annot: VectorAnnotator, half: HalfResult, steady: bool
) -> str | None:
    """Join the child's ``half`` into ``builder`` (which has the first half); None, or
    why it cannot be joined exactly (then nothing changed). ``steady``: as for
    :func:`_plan`."""
    table = builder.flow_table
    plan = _plan(annot, table, half, steady)
    if isinstance(plan, str):
        return plan
    s = builder.summary
    # The child's flows take numbers after the first half's; merged ones take none.
    base = table._next_uid
    merged = sorted(uid_number(f.uid) for _, f, _ in plan.merge)

    def renumber(uid: str) -> str:
        n = uid_number(uid)
        return f"F{base + n - bisect.bisect_left(merged, n)}"

    # (FlowRecord's fields in order, the uid first: faster than dataclasses.replace.)
    half.summary.flows = [
        _new_record((renumber(r.uid), *_stored_values(r)[1:])) for r in half.summary.flows
    ]
    s.merge(half.summary)
    s.problems.update(half.problems)
    _add_heads(s, half, plan.codes, annot)
    builder._count_flows(half.summary.flows)  # now that every row is there
    for key in plan.close_first:
        table._finish(key)
    for key, f, ended in plan.merge:
        mine = table._live[key]
        _merge_flow(mine, f)
        if ended:
            table._finish(key)
    fresh: list[FlowRecord] = []
    for f in plan.new:
        f.uid = renumber(f.uid)
        fresh.append(flow_record(f))
    builder._collect(fresh)
    builder._collect(table.drain())
    table._next_uid = base + half.uids - len(merged)
    return None


def _merge_flow(mine: _Flow, theirs: _Flow) -> None:
    """Add the child's part of a conversation to the first half's."""
    mine.first = min(mine.first, theirs.first)
    mine.last = max(mine.last, theirs.last)
    same = theirs.orig == mine.orig
    # (packets, bytes, flags) each way: the child's orig is ours when it names the same end.
    o_pkts, o_bytes, o_flags = (theirs.orig_pkts, theirs.orig_bytes, theirs.flags_orig)
    r_pkts, r_bytes, r_flags = (theirs.resp_pkts, theirs.resp_bytes, theirs.flags_resp)
    if not same:
        (o_pkts, o_bytes, o_flags), (r_pkts, r_bytes, r_flags) = (
            (r_pkts, r_bytes, r_flags),
            (o_pkts, o_bytes, o_flags),
        )
    mine.orig_pkts += o_pkts
    mine.orig_bytes += o_bytes
    mine.flags_orig |= o_flags
    mine.resp_pkts += r_pkts
    mine.resp_bytes += r_bytes
    mine.flags_resp |= r_flags


def _add_heads(s: Summary, half: HalfResult, codes: list[int], annot: VectorAnnotator) -> None:
    """Count the head rows into the services their flows' decisions name."""
    sums = half.sums
    by_service: dict[tuple[str | None, str, int], list[int]] = {}
    for j, key in enumerate(half.head_keys):
        if j >= sums.packets.size or not sums.packets[j]:
            continue
        code = codes[j]
        misc = _WORDS.unpack(key)[0]
        proto = misc >> 48
        port = (misc >> 16) & 0xFFFF if code & 1 else misc & 0xFFFF
        row = service_row(s, annot.labels, proto << 16 | port)
        skey = (row.service, row.proto, row.port)
        packets = int(sums.packets[j])
        row.packets += packets
        row.bytes += int(sums.bytes[j])
        first, last = seconds(int(sums.first[j])), seconds(int(sums.last[j]))
        row.first_seen = first if row.first_seen is None else min(row.first_seen, first)
        row.last_seen = last if row.last_seen is None else max(row.last_seen, last)
        if (code >> 4) & 1:
            row.ambiguous += packets
        if sums.vlan[j]:
            row.vlan = True
        by_service.setdefault(skey, []).append(j)
    keys = list(by_service)
    for skey, tl in zip(keys, sums.timelines([by_service[k] for k in keys]), strict=True):
        if tl is not None:
            s.services[skey].timeline.merge(tl)


# -- the whole ----------------------------------------------------------------------------

#: The first half's share of the file, where the two processes finish together: the
#: child's heads and result cost about what the parent's join does (on the yardstick
#: 0.51-0.53 was best; 0.57, 3 % slower).
FIRST_SHARE = 0.53
#: Rows the first half labels after its first batch before it judges the child: the
#: flows they make per row say whether two halves pay. (A first batch makes every flow it
#: meets; later ones make few where conversations are long, many where they are short.)
PROBE_ROWS = 1 << 15
#: New flows per row above which the child is stopped and this process reads on: the
#: join costs ~15 us per flow the child meets first, the child saves ~1.5 us per row (at
#: 0.05 two halves took as long as one process; at 0.23, 15 % longer).
MANY_FLOWS = 0.05
#: Share of tunnelled rows above which the child is stopped too: its guesses of the
#: inner flows' services (begun in the first half) are seldom all right, and the join
#: then falls back to this process reading the child's half after all (~10 % slower).
MANY_TUNNELLED = 0.05


class _Probe:
    """Judges the child on the first half's first rows (see PROBE_ROWS): the child runs
    from the start (it costs this process nothing) and is stopped when it cannot pay."""

    def __init__(self, child: Half | None) -> None:
        self.child = child
        self._first = True
        self.rows = 0
        self.made = 0
        self.tunnelled = 0
        self.done = child is None
        self.why = ""  # why the child was stopped

    def see(self, lb: LabelledBatch) -> None:
        """Count a labelled batch of the first half (the first batch is not counted)."""
        if self.done:
            return
        if self._first:
            self._first = False
            return
        self.rows += len(lb)
        self.made += int(lb.new_flows.size)
        self.tunnelled += 0 if lb.tunnels is None else len(lb.tunnels)
        if self.rows >= PROBE_ROWS:
            self.done = True
            rate = self.made / self.rows
            share = self.tunnelled / self.rows
            if rate > MANY_FLOWS:
                self._stop(
                    f"many short flows ({rate:.2f} new flows per packet): joining them "
                    "would cost more than the child saves"
                )
            elif share > MANY_TUNNELLED:
                self._stop(
                    f"tunnelled traffic ({share:.0%} of packets): the child's guesses of "
                    "the inner flows' services seldom join"
                )

    def _stop(self, why: str) -> None:
        if self.child is not None:
            self.child.abort()
            self.child = None
            self.why = why


#: Bytes from a file's start or end within which the halves meet at that file boundary
#: rather than inside the file (a boundary is simpler to join at, and as good).
NEAR_BOUNDARY = 4 << 20


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reported when it is read


def split_kind(path: str) -> str | None:
    """The format of an uncompressed file the halves can meet inside: "pcap" or "pcapng"
    (else None)."""
    from portsniff.capture.pcap import PCAP_MAGICS
    from portsniff.capture.reader import PCAPNG_MAGIC

    if path == "-":
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return None
    return "pcap" if head in PCAP_MAGICS else "pcapng" if head == PCAPNG_MAGIC else None


def split_point(paths: list[str], at: int | None = None) -> tuple[int, int | None] | None:
    """Where the child's half begins: the file's number and a byte offset inside it (an
    uncompressed pcap or pcapng), or None for the file's start; None when no split
    leaves each process something. ``at`` is a byte offset into the files laid end to end
    (default: the first half's share of them)."""
    from portsniff.capture.pcap import GLOBAL_HEADER_LEN

    sizes = [_size(p) for p in paths]
    target = at if at is not None else int(sum(sizes) * FIRST_SHARE)
    k = before = 0
    while k < len(sizes) and target >= before + sizes[k]:
        before += sizes[k]
        k += 1
    if k == len(sizes):
        return None
    size = sizes[k]
    offset = target - before
    # (One file has no boundary to meet at; small files, a small margin.)
    near = 0 if at is not None or len(paths) == 1 else min(NEAR_BOUNDARY, sum(sizes) // 16)
    if offset > GLOBAL_HEADER_LEN and min(offset, size - offset) >= near and split_kind(paths[k]):
        return k, offset
    k = k if offset <= size - offset else k + 1
    return (k, None) if 0 < k < len(paths) else None


def splittable(run: AnnotateRun) -> bool:
    """Whether two processes may summarise ``run``: one big uncompressed pcap or pcapng,
    or files that are big together."""
    from portsniff.annotate import parallel

    if not (
        run.workers >= 2
        and run.vector
        and run.engine != "pyshark"
        and "-" not in run.paths
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        return False
    big = sum(map(_size, run.paths)) >= 2 * parallel.CHUNK_BYTES
    return big and split_point(run.paths) is not None


def summarise(
    run: AnnotateRun,
    meta: list[dict[str, Any]],
    fold: Callable[[], Any],
    at: int | None = None,
) -> tuple[Summary, str | None]:
    """The summary of ``run``'s captures, their second half (from byte ``at`` of the
    files laid end to end, default :func:`split_point`'s) summarised by a child and
    joined (module docstring), and None if the child's half was joined, else why this
    process read it. ``fold`` makes the consumer (a FoldedSummary over a
    VectorSummaryBuilder) this process uses. Without ``at``, the child is stopped when
    the first rows say it cannot pay (``_Probe``)."""
    annot = run.annotator
    assert isinstance(annot, VectorAnnotator)
    consumer = fold()
    time = TimeOrder()  # the first half's timestamps
    where = split_point(run.paths, at)
    inside: _Inside | None = None
    if where is not None and where[1] is not None:
        try:
            inside = _Inside.open(run, run.paths[where[0]], where[1])
        except CaptureError:
            where = None  # read (and reported) in this process
    if where is None:  # nothing for a child: all in this process
        for path in run.paths:
            _feed_file(run, path, consumer)
        return _finished(annot, consumer), "nothing to split"
    k, mid = where
    path = run.paths[k]
    size = _size(path)
    part = Part(
        None if mid is None else Unit(path, mid, size, False, run.engine, run.bpf),
        run.paths[k + (mid is not None) :],
    )
    probe = _Probe(start_half(part, run, annot.index, meta))
    if at is not None:
        probe.done = True  # told where: not judged
    try:
        for before in run.paths[:k]:
            _feed_file(run, before, consumer, time, probe.see)
        if inside is not None:
            run.files.append(inside.report)
            inside.read(consumer, time, probe.see)
        child = probe.child
        half = child.result() if child is not None else None
    except BaseException:
        if probe.child is not None:
            probe.child.abort()
        if inside is not None:
            inside.close()
        raise
    # What is left of the split file (none once damaged: one process stops there too).
    rest = inside is not None and inside.first.damage is None and inside.first.next_start < size
    why: str | None
    if inside is not None and inside.first.damage is not None:
        why = "the first half is damaged"
    elif inside is not None and not rest and not part.paths:
        why = "the first half is the whole capture"
    elif half is None:
        if child is not None:
            why = f"the child failed: {child.error}"
        else:
            why = probe.why or "no fork here"
    elif inside is not None and not inside.meets(half.unit):
        why = "the halves do not meet at one record"
    else:
        consumer.flush()
        why = join(consumer.builder, annot, half, time.then(half.time))
        if why is None:
            if inside is not None and half.unit is not None:
                inside.add(half.unit)
            run.files.extend(half.files)
            if run.progress is not None:
                first_end = inside.first.next_start if inside is not None else size
                run.progress((size - first_end if rest else 0) + sum(map(_size, part.paths)))
            rest = False
            part = Part(None, [])
    if inside is not None:
        if rest:
            inside.read_rest(consumer)
        inside.close()
    for later in part.paths:
        _feed_file(run, later, consumer)
    return _finished(annot, consumer), why


class _Inside:
    """This process's part of the file the halves meet in (up to byte ``mid``), and the
    rest of it when the child's half is not joined; its report. A classic pcap is read as
    units (chunks), a pcapng by one reader that stops at ``mid`` and goes on."""

    def __init__(self, run: AnnotateRun, path: str, mid: int, kind: str) -> None:
        from portsniff.annotate.pipeline import FileReport

        self.run = run
        self.path = path
        self.mid = mid
        self.report = FileReport(file=path, format=kind)
        self.first = UnitResult(start=0, next_start=0)
        self._problems: Counter[str] = Counter()

    @staticmethod
    def open(run: AnnotateRun, path: str, mid: int) -> _Inside:
        """The reading of ``path``'s first part (CaptureError when it cannot be read)."""
        if split_kind(path) == "pcapng":
            return _PcapngInside(run, path, mid)
        return _Inside(run, path, mid, "pcap")

    def read(self, consumer: Any, time: TimeOrder, seen: Callable[[LabelledBatch], None]) -> None:
        """Label and fold the records before ``mid``."""
        from portsniff.capture.pcap import GLOBAL_HEADER_LEN

        run = self.run
        self.first = UnitResult(start=GLOBAL_HEADER_LEN, next_start=GLOBAL_HEADER_LEN)
        unit = Unit(self.path, GLOBAL_HEADER_LEN, self.mid, True, run.engine, run.bpf)
        _feed(run, unit, self.first, consumer, time, seen)
        self.report.add_unit(self.first, self._problems)

    def meets(self, unit: UnitResult | None) -> bool:
        """Whether the child's part starts where this one stopped."""
        return unit is not None and unit.start == self.first.next_start

    def add(self, unit: UnitResult) -> None:
        """Count the child's part (joined) into the report."""
        self.report.add_unit(unit, self._problems)

    def read_rest(self, consumer: Any) -> None:
        """Label and fold the file from where the first part stopped."""
        run = self.run
        at = self.first.next_start
        second = UnitResult(start=at, next_start=at)
        size = _size(self.path)
        _feed(run, Unit(self.path, at, size, True, run.engine, run.bpf), second, consumer)
        self.report.add_unit(second, self._problems)

    def close(self) -> None:
        """Finish the report."""
        from portsniff.capture.pcap import count_problems

        self.report.problems.extend(count_problems(self._problems))


class _PcapngInside(_Inside):
    """A pcapng's first part, read by a reader that stops at the first block from
    ``mid`` on; the child must start there, with the same interfaces."""

    def __init__(self, run: AnnotateRun, path: str, mid: int) -> None:
        from portsniff.annotate.pipeline import VECTOR_BLOCK_BYTES
        from portsniff.capture.reader import open_capture

        super().__init__(run, path, mid, "pcapng")
        self._reader = open_capture(path, block_bytes=VECTOR_BLOCK_BYTES)
        self._state: tuple[object, ...] = ()
        self._child: UnitResult | None = None

    def _read(
        self,
        res: UnitResult,
        consumer: Any,
        stop: int | None,
        time: TimeOrder | None = None,
        seen: Callable[[LabelledBatch], None] | None = None,
    ) -> None:
        reader = self._reader
        res.start = res.next_start = reader.next_start
        _fold(
            self.run.annotator,
            self.run.decode_blocks(reader, res, None, stop),
            consumer,
            time,
            seen,
        )
        res.next_start = reader.next_start
        if reader.damage is not None:
            res.damage = (reader.damage.offset, reader.damage.problem)
        self.report.add_unit(res, Counter())  # problems: the reader counts them all

    def read(self, consumer: Any, time: TimeOrder, seen: Callable[[LabelledBatch], None]) -> None:
        if self.run.progress is not None:
            self.run.progress(self._reader.bytes_read)  # the section header
        self._read(self.first, consumer, self.mid, time, seen)
        self._state = self._reader.state()

    def meets(self, unit: UnitResult | None) -> bool:
        return super().meets(unit) and unit is not None and unit.state == self._state

    def add(self, unit: UnitResult) -> None:
        self.report.add_unit(unit, Counter())
        self._child = unit

    def read_rest(self, consumer: Any) -> None:
        self._read(UnitResult(start=0, next_start=0), consumer, None)

    def close(self) -> None:
        from portsniff.capture.pcap import count_problems

        reader = self._reader
        problems = reader.problem_counts()  # in the order one reader meets them
        if self._child is not None:
            problems.update(self._child.problems)
        self.report.problems.extend(count_problems(problems))
        self.report.section_comments.extend(reader.section_comments)
        reader.close()


def _finished(annot: VectorAnnotator, consumer: Any) -> Summary:
    for lb in annot.finish():
        consumer.add_batch(lb)
    result: Summary = consumer.finish()
    return result


def _feed_file(
    run: AnnotateRun,
    path: str,
    consumer: Any,
    time: TimeOrder | None = None,
    seen: Callable[[LabelledBatch], None] | None = None,
) -> None:
    """Label and fold a whole file in this process (reported in ``run.files``)."""
    from portsniff.annotate.pipeline import VECTOR_BLOCK_BYTES, FileReport

    report = FileReport(file=path)
    run.files.append(report)
    _fold(
        run.annotator, run.read_file(path, report, None, VECTOR_BLOCK_BYTES), consumer, time, seen
    )


def _fold(
    annot: Any,
    batches: Iterable[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]],
    consumer: Any,
    time: TimeOrder | None = None,
    seen: Callable[[LabelledBatch], None] | None = None,
) -> None:
    """Label ``batches`` and fold them into ``consumer`` (``time`` sees their timestamps,
    ``seen`` every labelled batch)."""
    assert isinstance(annot, VectorAnnotator)
    for batch, mask in batches:
        if time is not None:
            time.see(batch.ts_ns)
        for lb in annot.feed(batch, mask):
            consumer.add_batch(lb)
            if seen is not None:
                seen(lb)


def _feed(
    run: AnnotateRun,
    unit: Unit,
    res: UnitResult,
    consumer: Any,
    time: TimeOrder | None = None,
    seen: Callable[[LabelledBatch], None] | None = None,
) -> None:
    """Label and fold ``unit`` in this process (``seen`` is told of every batch)."""
    sent = 0

    def counted() -> Iterator[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]]:
        nonlocal sent
        for batch, mask in iter_unit(unit, res, bytearray()):
            yield batch, mask
            if run.progress is not None:
                # About the bytes read (record headers and data); made exact at the end.
                step = int(batch.caplen.sum()) + 16 * len(batch)
                run.progress(step)
                sent += step

    _fold(run.annotator, counted(), consumer, time, seen)
    if run.progress is not None and res.next_start - res.start > sent:
        run.progress(res.next_start - res.start - sent)
