"""The summary of LabelledBatches, a block at a time: equal to :class:`SummaryBuilder` fed
with the same records.

Services, transports and timelines are sums over the block (bincount/unique). Flows are
grouped per block and carried in the reference's own :class:`~portsniff.flows.FlowTable`,
one update per flow and block (a SYN after a FIN or RST in the block starts a new
connection there). Live flows that go idle during a block are finished first, unless the
block touches them before (see ``_expiring``); in blocks where the expiry cannot be told
at once (a block longer than the idle timeout, too many flows, time going back among the
idle flows) the flows are fed packet by packet, so the flow table stays exactly the
reference's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from portsniff.annotate.records import EndpointLabel
from portsniff.annotate.vector import (
    BASES,
    SIDE_DST,
    SIDE_SRC,
    LabelledBatch,
    Labeller,
    _be,
    _group,
    address_texts,
)
from portsniff.decode.batch import NO_TUNNELS, TUNNELS, Tunnels, fits_columns
from portsniff.decode.packet import PROTOS
from portsniff.flows import ACK, FIN, RST, SYN, FlowTable, _Flow, table_key, uid_number
from portsniff.summary import ServiceRow, Summary, SummaryBuilder
from portsniff.timestamps import first_past, seconds, seconds_array

#: Summary transport key per proto code (non-IP rows are "non_ip" whatever their code).
_TKEYS = tuple(
    p if p in ("tcp", "udp", "sctp", "dccp", "icmp", "icmpv6") else "other_ip" for p in PROTOS
)
_TCP = PROTOS.index("tcp")


class VectorSummaryBuilder(SummaryBuilder):
    """A SummaryBuilder that also takes whole LabelledBatches (:meth:`add_batch`)."""

    def __init__(
        self,
        caveat: str,
        registry: list[dict[str, Any]],
        flows: FlowTable | None = None,
        keep: int | None = None,
    ) -> None:
        super().__init__(caveat, registry, flows, keep)
        self._keys: dict[bytes, tuple[Any, ...]] = {}
        self._ends_memo: dict[int, tuple[tuple[str, int | None], tuple[str, int | None]]] = {}
        self._rows_for: dict[Any, ServiceRow] | None = None
        self._rows_of: dict[int, ServiceRow] = {}
        self.slow_blocks = 0
        #: Blocks folded at once in which live flows expired (idle) before the block
        #: touched them.
        self.expired_blocks = 0
        # A lower bound of the live flows' ``last`` (a flow's ``last`` only grows, and a
        # flow made in a block starts at or after the block's first packet). It holds
        # while the table made no flow behind our back: ``_bound_uid`` is the table's uid
        # counter when the bound was last brought up to date.
        self._bound = float("inf")
        self._bound_uid = -1
        self._bound_table: FlowTable | None = None

    def add_batch(self, lb: LabelledBatch) -> None:
        """Fold every row of ``lb`` into the summary."""
        n = len(lb)
        if n == 0:
            return
        expiring = self._expiring(lb)
        # Margin of a second: records' own ts may round differently from the block's.
        lo_bound = seconds(int(lb.ts_ns.min())) - 1.0
        s = self.summary
        ts_ns = lb.ts_ns
        wirelen = lb.wirelen
        s.packets += n
        s.bytes += int(wirelen.sum())
        s.truncated += int(np.count_nonzero(lb.caplen < wirelen))
        lo = seconds(int(ts_ns.min()))
        hi = seconds(int(ts_ns.max()))
        s.first_ts = lo if s.first_ts is None else min(s.first_ts, lo)
        s.last_ts = hi if s.last_ts is None else max(s.last_ts, hi)
        for rec in lb.records.values():
            if rec.problem:
                s.malformed += 1
                s.problems[rec.problem] += 1
        # Transports.
        code = np.where(lb.ip_version == 0, len(PROTOS), lb.proto.astype(np.int64))
        pk = np.bincount(code, minlength=len(PROTOS) + 1)
        by = np.bincount(code, weights=wirelen, minlength=len(PROTOS) + 1)
        for c in np.flatnonzero(pk).tolist():
            key = "non_ip" if c == len(PROTOS) else _TKEYS[c]
            t = s.transports.setdefault(key, [0, 0])
            t[0] += int(pk[c])
            t[1] += round(by[c])
        self._services(lb)
        for rec in lb.records.values():
            for d in rec.dnssd:
                s.add_dnssd(d)
        if expiring is not None:
            self._flows(lb, expiring)
        else:
            self.slow_blocks += 1
            self._flows_one_by_one(lb)
        self._note_bound(lo_bound)
        self._collect(self.flow_table.drain())

    def _flows_one_by_one(self, lb: LabelledBatch) -> None:
        """Count the block's packets into their flows as the reference does, packet by
        packet (flows may expire in the block: order matters)."""
        table = self.flow_table
        for i, r in enumerate(lb.iter_records()):
            made = table._next_uid
            table.add(r)
            if table._next_uid != made and r.src_ip is not None and r.dst_ip is not None:
                key = table_key(None, r.proto, (r.src_ip, r.src_port), (r.dst_ip, r.dst_port))
                f = table._live.get(key)
                if f is not None and uid_number(f.uid) > made:
                    self._made(key, lb, i)  # the packet made its own (outer) flow
            self._collect(table.drain())

    def _note_bound(self, lo: float) -> None:
        """Keep the bound of live flows' ``last`` after a block starting at ``lo``."""
        if self._bound_table is self.flow_table:
            self._bound = min(self._bound, lo)
            self._bound_uid = self.flow_table._next_uid

    def _oldest_bound(self) -> float:
        """A lower bound of the live flows' ``last`` (exact when it was recomputed)."""
        table = self.flow_table
        if self._bound_table is not table or self._bound_uid != table._next_uid:
            self._bound_table = table
            self._bound = min((f.last for f in table._live.values()), default=float("inf"))
            self._bound_uid = table._next_uid
        return self._bound

    # -- services ------------------------------------------------------------------------

    def _services(self, lb: LabelledBatch, keep: npt.NDArray[np.bool_] | None = None) -> None:
        """Count the labelled rows (those ``keep`` keeps) into their services."""
        rows = np.flatnonzero(lb.side > 0 if keep is None else (lb.side > 0) & keep)
        if not rows.size:
            return
        s = self.summary
        side = lb.side[rows]
        port = np.where(side == SIDE_DST, lb.dst_port[rows], lb.src_port[rows]).astype(np.int64)
        combo = lb.proto[rows].astype(np.int64) * 65536 + port
        uniq, inv = _dense_unique(combo)
        m = int(uniq.size)
        wl = lb.wirelen[rows]
        ts_ns = lb.ts_ns[rows]
        packets = np.bincount(inv, minlength=m)
        nbytes = np.bincount(inv, weights=wl, minlength=m)
        amb = np.bincount(inv, weights=lb.ambiguous[rows], minlength=m)
        first = np.full(m, np.iinfo(np.int64).max, np.int64)
        last = np.full(m, np.iinfo(np.int64).min, np.int64)
        np.minimum.at(first, inv, ts_ns)
        np.maximum.at(last, inv, ts_ns)
        vlan = np.zeros(m, np.bool_)
        vlan[inv[lb.tagged()[rows]]] = True
        rows_of = self._service_rows(s)
        svc: list[ServiceRow] = []
        for c in uniq.tolist():
            row = rows_of.get(c)
            if row is None:
                row = rows_of[c] = service_row(s, lb.labels, c)
            svc.append(row)
        # Timelines: bytes per (service, bin), in bins as wide as the service's timeline
        # (bins of 2**k seconds are the seconds shifted right by k): a long block's
        # seconds would widen it row by row.
        exp = np.array([_exponent(row.timeline.width) for row in svc], np.int64)
        sec = np.floor(seconds_array(ts_ns)).astype(np.int64) >> exp[inv]
        base = int(sec.min())
        span = int(sec.max()) - base + 1
        tkey = inv.astype(np.int64) * span + (sec - base)
        tu, tinv = _dense_unique(tkey)
        tbytes = np.bincount(tinv, weights=wl, minlength=int(tu.size))
        bins: list[dict[int, int]] = [{} for _ in range(m)]
        for k, b in zip(tu.tolist(), tbytes.tolist(), strict=True):
            bins[k // span][k % span + base] = round(b)
        for row, k, opk, oby, f, la, am, vl, bn in zip(
            svc,
            exp.tolist(),
            packets.tolist(),
            np.rint(nbytes).astype(np.int64).tolist(),
            seconds_array(first).tolist(),
            seconds_array(last).tolist(),
            np.rint(amb).astype(np.int64).tolist(),
            vlan.tolist(),
            bins,
            strict=True,
        ):
            row.packets += opk
            row.bytes += oby
            if row.first_seen is None or f < row.first_seen:
                row.first_seen = f
            if row.last_seen is None or la > row.last_seen:
                row.last_seen = la
            row.ambiguous += am
            if vl:
                row.vlan = True
            row.timeline.add_bins(float(1 << k), bn)

    def _service_rows(self, s: Summary) -> dict[int, ServiceRow]:
        """The summary's service rows by (proto code << 16 | port): a scan meets tens of
        thousands of ports, each a row looked up again in every block."""
        if self._rows_for is not s.services:
            self._rows_for = s.services
            self._rows_of = {}
        return self._rows_of

    # -- flows ---------------------------------------------------------------------------

    def _made(self, key: tuple[Any, ...], lb: LabelledBatch, i: int) -> None:
        """A flow was made from row ``i`` (a hook for the summary of a capture's part)."""

    def _expiring(self, lb: LabelledBatch) -> list[tuple[tuple[Any, ...], int]] | None:
        """When the block can be folded at once: the live flows that expire (idle) during
        it unless it touches them first, each with the row after which it goes (empty
        when none may). None when the block must be folded packet by packet.

        Flows made or touched in the block cannot expire in it when it spans at most
        the idle timeout. Expiry walks from the least recently used flow and stops at
        the first one not idle: when the flows idle by the block's end are the first
        ones in that order, their ``last`` ascending, each goes at the first packet more
        than the timeout after its ``last`` (unless touched before) whatever the others
        do; idle flows behind a flow not idle stay while that flow is untouched."""
        table = self.flow_table
        live = table._live
        timeout = table.idle_timeout
        # A tunnelled row may make a flow per header.
        inner = 0 if lb.tunnels is None else len(lb.tunnels)
        inner += sum(len(rec.inner) for rec in lb.records.values())
        if len(live) + len(lb) + inner > table.max_flows:
            return None
        hi = seconds(int(lb.ts_ns.max()))
        lo = seconds(int(lb.ts_ns.min()))
        if hi - lo > timeout:
            return None
        if not live or hi - self._oldest_bound() <= timeout:
            return []
        # One walk: the idle flows at the front, then the oldest behind them (the bound,
        # which may be stale, made exact on the way).
        idle: list[tuple[tuple[Any, ...], _Flow]] = []
        before = -np.inf
        flows = iter(live.items())
        blocker: tuple[Any, ...] | None = None
        oldest = np.inf
        for key, f in flows:
            if not hi - f.last > timeout:
                blocker, oldest = key, f.last
                break
            if f.last < before or key[0] is not None:
                return None  # out of order, or not an outer flow: packet by packet
            before = f.last
            idle.append((key, f))
        rest = min((g.last for _, g in flows), default=np.inf)
        self._bound = min(oldest, rest, idle[0][1].last if idle else np.inf)
        self._bound_uid = table._next_uid
        # Idle flows behind a flow not idle stay if it does (untouched).
        if blocker is not None and hi - rest > timeout and self._touches(lb, blocker):
            return None
        rows = np.flatnonzero(lb.ip_version > 0)  # the packets whose count expires flows
        if not idle or not rows.size:
            return []
        now = np.maximum.accumulate(seconds_array(lb.ts_ns[rows]))
        at = first_past(now, np.array([f.last for _, f in idle]), timeout)
        if at is None:
            return None
        return [
            (key, int(rows[j]))
            for (key, _), j in zip(idle, at.tolist(), strict=True)
            if j < rows.size
        ]

    def _expire(
        self,
        expiring: list[tuple[tuple[Any, ...], int]],
        keys: list[tuple[Any, ...]],
        first_rows: list[int],
    ) -> None:
        """Finish the flows of ``expiring`` (see :meth:`_expiring`) that the block's
        flows (``keys``, first met at ``first_rows``) do not touch first."""
        first = dict(zip(keys, first_rows, strict=True))
        finish = self.flow_table._finish
        went = 0
        for key, at in expiring:
            met = first.get(key)
            if met is None or met > at:  # a packet counts before the expiry it makes
                finish(key)
                went += 1
        self.expired_blocks += went > 0

    def _touches(self, lb: LabelledBatch, key: tuple[Any, ...]) -> bool:
        """Whether any row of ``lb`` (or its tunnelled headers) counts into flow ``key``."""
        tunnel, proto, (a_ip, a_port), (b_ip, b_port) = key
        if tunnel is not None:
            t = lb.tunnels
            if t is not None and tunnel in TUNNELS:
                code = TUNNELS.index(tunnel)
                if np.any((t.tunnel == code) & (t.proto == PROTOS.index(proto))):
                    return True
            return any(
                e.tunnel == tunnel and e.proto == proto
                for rec in lb.records.values()
                for e in rec.inner
            )
        for ip_a, ip_b in ((a_ip, b_ip), (b_ip, a_ip)):
            hit = _rows_between(lb, ip_a, ip_b)
            if hit.size:
                sp = lb.src_port[hit]
                dp = lb.dst_port[hit]
                pa = -1 if a_port is None else a_port
                pb = -1 if b_port is None else b_port
                pr = lb.proto[hit]
                code = PROTOS.index(proto)
                if np.any((pr == code) & (((sp == pa) & (dp == pb)) | ((sp == pb) & (dp == pa)))):
                    return True
        return False

    def _flows(self, lb: LabelledBatch, expiring: list[tuple[tuple[Any, ...], int]]) -> None:
        table = self.flow_table
        live = table._live
        rows = np.flatnonzero(lb.ip_version > 0)
        n = int(rows.size)
        # Tunnelled flows are counted per flow, from the tunnels' columns and the records'
        # inner headers together (their keys never meet the outer flows'), or, where a
        # record's header does not fit the columns, packet by packet (kind 1); flows made
        # here get their uids in row order, as the reference does.
        created: list[tuple[int, int, _Flow | None]] = []
        inner: _TunnelFold | None = None
        headers = _inner_headers(lb)
        if headers is None:
            created = [
                (i, 1, None)
                for i, rec in lb.records.items()
                if any(e.src_ip is not None and e.dst_ip is not None for e in rec.inner)
            ]
        elif len(headers.table):
            inner = self._tunnelled_flows(lb, headers, created)
        touched: dict[tuple[Any, ...], tuple[int, int]] = {}
        splits: list[tuple[int, tuple[Any, ...], _Flow]] = []
        outer_keys: list[tuple[Any, ...]] = []
        outer_rows: list[int] = []
        if n:
            outer_keys, outer_rows = self._outer_flows(lb, rows, created, splits, expiring)
        created.sort(key=lambda c: (c[0], c[1]))
        for i, kind, obj in created:
            if kind != 1:
                assert obj is not None
                table._next_uid += 1
                obj.uid = f"F{table._next_uid}"
                if kind == 2:  # a tunnelled flow, in the table from its first row
                    assert inner is not None
                    live[inner.key_of[obj]] = obj
                continue
            rec = lb.records[i]
            for k, e in enumerate(rec.inner):
                if e.src_ip is not None and e.dst_ip is not None:
                    table._count(
                        e.proto,
                        e.src_ip,
                        e.src_port,
                        e.dst_ip,
                        e.dst_port,
                        rec,
                        e.tunnel,
                        e.service,
                        e.service_port,
                    )
                    touched[_inner_key(e)] = (i, 1 + k)
        if inner is not None:
            touched.update(zip(inner.keys, inner.last, strict=True))
        # A SYN after a FIN/RST finished the connection before it (in row order).
        splits.sort(key=lambda x: x[0])
        for _, key, obj in splits:
            table._finish(key)
            live[key] = obj
        # LRU order: by each flow's last packet in the block.
        if touched:
            for okey, r in zip(outer_keys, outer_rows, strict=True):
                touched[okey] = (r, 0)
            outer_keys = [key for key, _ in sorted(touched.items(), key=lambda kv: kv[1])]
        to_end = live.move_to_end
        for key in outer_keys:
            # try (not ``in`` or contextlib.suppress): one hash of the key, no extra call.
            try:  # noqa: SIM105
                to_end(key)
            except KeyError:  # a tunnelled flow the block finished
                pass

    def _outer_flows(
        self,
        lb: LabelledBatch,
        rows: npt.NDArray[np.int64],
        created: list[tuple[int, int, _Flow | None]],
        splits: list[tuple[int, tuple[Any, ...], _Flow]],
        expiring: list[tuple[tuple[Any, ...], int]],
    ) -> tuple[list[tuple[Any, ...]], list[int]]:
        """Count the block's packets into their flows, one update per flow segment (a
        segment ends where a SYN after a FIN/RST starts a new connection). Returns the
        flows' keys by their last row in the block, and those rows."""
        live = self.flow_table._live
        self._ends_memo = {}
        n = int(rows.size)
        fcol = lb.flow[rows]
        if lb.flow_space and lb.one_flow_per_slot and bool((fcol >= 0).any()):
            order, first, flow, numeric, s_lt, same = _grouped_by_slot(lb, rows, fcol)
        else:
            order, first, flow, numeric, s_lt, same = _grouped_by_key(lb, rows)
        del fcol
        fr_l = rows[first].tolist()
        found = list(map(self._keys.get, numeric))
        if None in found:
            missing = [j for j, k in enumerate(found) if k is None]
            self._make_keys(lb, [numeric[j] for j in missing], [fr_l[j] for j in missing])
            kget = self._keys.__getitem__
            for j in missing:
                found[j] = kget(numeric[j])
        keys = cast(list[tuple[Any, ...]], found)  # every key found or made
        if expiring:
            self._expire(expiring, keys, fr_l)
        lget = live.get
        known = list(map(lget, keys))
        if None in known:
            # New flows are made from their first row: its endpoints, for all at once.
            self._prefill_ends(lb, [fr_l[f] for f, o in enumerate(known) if o is None])
        closing = FIN | RST
        live_closed = np.array(
            [o is not None and bool((o.flags_orig | o.flags_resp) & closing) for o in known],
            np.bool_,
        )
        flags = np.where(lb.proto[rows] == _TCP, np.maximum(lb.tcp_flags[rows], 0), 0).astype(
            np.int64
        )
        # Segments: in each flow's rows, a pure SYN splits when a FIN/RST came since the
        # previous SYN (or, for the first SYN, since the flow began).
        fs = flow[order]
        del flow
        m = np.arange(n)
        fstart = np.ones(n, np.bool_)
        fstart[1:] = fs[1:] != fs[:-1]
        start_pos = np.maximum.accumulate(np.where(fstart, m, 0))
        fl_s = flags[order]
        syn_s = ((fl_s & SYN) > 0) & ((fl_s & ACK) == 0)
        clo_s = ((fl_s & (FIN | RST)) > 0).astype(np.int64)
        del fl_s
        before = np.cumsum(clo_s) - clo_s  # closing rows before each position
        del clo_s
        last_syn = np.maximum.accumulate(np.where(syn_s, m, -1))
        del m
        prev_syn = np.concatenate([[-1], last_syn[:-1]])
        del last_syn
        has_prev = prev_syn >= start_pos
        q = np.where(has_prev, prev_syn, start_pos)
        del prev_syn, start_pos
        closed_since = before - before[q] > 0
        del before, q
        split_s = syn_s & (closed_since | (~has_prev & live_closed[fs]))
        del syn_s, closed_since, has_prev
        seg_start = fstart | split_s
        seg_s = np.cumsum(seg_start) - 1
        nseg = int(seg_s[-1]) + 1
        seg = np.empty(n, np.int64)
        seg[order] = seg_s
        del seg_s
        seg_first = order[seg_start]  # first row (index into rows) of each segment
        # Per segment: which endpoint of the numeric key is orig, and its flow object.
        # (Python lists: indexing numpy arrays one element at a time is slow.)
        seg_rows_l = rows[seg_first].tolist()
        seg_flow_l = fs[seg_start].tolist()
        seg_split_l = split_s[seg_start].tolist()
        src_is_a_l = s_lt[seg_first].tolist()
        side_src = lb.side[rows[seg_first]] == SIDE_SRC
        side_src_l = side_src.tolist()
        orig_is_a_l: list[bool] = []
        objs: list[_Flow] = []
        # The segments that make a flow (a split, or a flow the table does not know):
        # their flows are made first, for all at once.
        unknown = np.array([o is None for o in known], np.bool_)
        makes = np.flatnonzero(split_s[seg_start] | unknown[fs[seg_start]])
        made = iter(self._new_flows(lb, rows[seg_first[makes]], side_src[makes]))
        for j in range(nseg):
            f = seg_flow_l[j]
            split = seg_split_l[j]
            obj = None if split else known[f]
            if obj is None:
                i = seg_rows_l[j]
                obj = next(made)
                oa = obj.orig_is_a = src_is_a_l[j] != side_src_l[j]
                created.append((i, 0, obj))
                self._made(keys[f], lb, i)
                if split:
                    splits.append((i, keys[f], obj))
                else:
                    live[keys[f]] = obj
            else:
                oa = obj.orig_is_a
                if oa is None:  # a flow made elsewhere (packet by packet)
                    src = self._ends(lb, seg_rows_l[j])[0]
                    oa = obj.orig_is_a = (obj.orig == src) == src_is_a_l[j]
            objs.append(obj)
            orig_is_a_l.append(oa)
        orig_is_a = np.array(orig_is_a_l, np.bool_)
        is_orig = (s_lt == orig_is_a[seg]) | same
        _fold_into(objs, seg, is_orig, lb.ts_ns[rows], lb.wirelen[rows], flags)
        # Each flow's last row: the end of its run in ``order``.
        fend = np.ones(n, np.bool_)
        fend[:-1] = fstart[1:]
        last_row = rows[order[fend]]
        by_last = np.argsort(last_row)
        return [keys[f] for f in fs[fend][by_last].tolist()], last_row[by_last].tolist()

    def _tunnelled_flows(
        self, lb: LabelledBatch, headers: _Headers, created: list[tuple[int, int, _Flow | None]]
    ) -> _TunnelFold:
        """Count the inner headers of ``headers`` into their flows, one update per flow
        (tunnelled flows have no TCP flags: no splits). Flows made here join ``created``
        (kind 2, by their first row: the caller numbers and places them). Returns the
        flows' keys and last touches."""
        live = self.flow_table._live
        t = headers.table
        at = np.arange(len(t))
        rows = t.row
        tag = t.tunnel.astype(np.int64) + 1
        *ckeys, s_lt, same = _canonical(t, at, tag)
        order, first, flow = _group(*ckeys)
        numeric = _numeric([k[first] for k in ckeys])
        del ckeys, tag
        first_at = first
        first_rows = rows[first]
        fr_l = first_rows.tolist()
        found = list(map(self._keys.get, numeric))
        version = t.ip_version[first_at]
        srcs = address_texts(version, t.src_addr[first_at])
        dsts = address_texts(version, t.dst_addr[first_at])
        sps = t.src_port[first_at].tolist()
        dps = t.dst_port[first_at].tolist()
        protos = t.proto[first_at].tolist()
        ends = [
            ((a, None if sp < 0 else sp), (b, None if dp < 0 else dp))
            for a, b, sp, dp in zip(srcs, dsts, sps, dps, strict=True)
        ]
        if None in found:
            if len(self._keys) + len(found) > 1_000_000:
                self._keys.clear()
            names = t.tunnel[first_at].tolist()
            for j, k in enumerate(found):
                if k is None:
                    src, dst = ends[j]
                    k = table_key(TUNNELS[names[j]], PROTOS[protos[j]], src, dst)  # type: ignore[arg-type]
                    found[j] = self._keys[numeric[j]] = k
        keys = cast(list[tuple[Any, ...]], found)
        known = list(map(live.get, keys))
        objs: list[_Flow] = []
        key_of: dict[_Flow, tuple[Any, ...]] = {}
        first_lt = s_lt[first].tolist()
        ts_first = seconds_array(lb.ts_ns[first_rows]).tolist()
        labels = lb.labels.label
        sides = t.side[first_at].tolist()
        for j, obj in enumerate(known):
            src, dst = ends[j]
            if obj is None:
                i = fr_l[j]
                sp, dp = src[1], dst[1]
                service = service_port = None
                given = headers.given.get(int(first_at[j]))
                if given is not None:  # a record's header: labelled there
                    service, service_port = given.service, given.service_port
                elif sides[j]:
                    port = sp if sides[j] == SIDE_SRC else dp
                    assert port is not None  # (a labelled header has both ports)
                    lab = labels(protos[j], port)
                    service, service_port = lab.service, lab.port
                # FlowTable._count: the service's end is the responder.
                flip = service_port is not None and service_port == sp and sp != dp
                orig, resp = (dst, src) if flip else (src, dst)
                obj = _Flow(PROTOS[protos[j]], orig, resp, ts_first[j], keys[j][0], "")
                obj.service, obj.service_port = service, service_port
                obj.vlan = lb.tags(i)
                obj.orig_is_a = first_lt[j] != flip
                created.append((i, 2, obj))
                key_of[obj] = keys[j]
            elif obj.orig_is_a is None:  # a flow made elsewhere (packet by packet)
                obj.orig_is_a = (obj.orig == src) == first_lt[j]
            objs.append(obj)
        orig_is_a = np.array([o.orig_is_a for o in objs], np.bool_)
        is_orig = (s_lt == orig_is_a[flow]) | same
        _fold_into(objs, flow, is_orig, lb.ts_ns[rows], lb.wirelen[rows], None)
        nflows = len(objs)
        # Each flow's last header: the end of its run in ``order`` (headers ascend in a
        # run), touched at (row, 1 + its place among the row's headers).
        end = np.ones(rows.size, np.bool_)
        end[:-1] = flow[order[1:]] != flow[order[:-1]]
        last = np.empty(nflows, np.int64)
        last[flow[order[end]]] = order[end]
        touch = list(zip(rows[last].tolist(), headers.sub[last].tolist(), strict=True))
        return _TunnelFold(keys, touch, key_of)

    def _new_flows(
        self, lb: LabelledBatch, at: npt.NDArray[np.int64], side_src: npt.NDArray[np.bool_]
    ) -> list[_Flow]:
        """The flows made from rows ``at`` (IP rows; ``side_src``: the row's service is
        its source), one per row, not yet in the table."""
        at_l = at.tolist()
        self._prefill_ends(lb, at_l)
        memo = self._ends_memo
        records = lb.records
        labels = lb.labels.label
        side = lb.side[at]
        out: list[_Flow] = []
        for i, pc, ts, ss, sd, sp, b, amb in zip(
            at_l,
            lb.proto[at].tolist(),
            seconds_array(lb.ts_ns[at]).tolist(),
            side_src.tolist(),
            side.tolist(),
            np.where(side == SIDE_DST, lb.dst_port[at], lb.src_port[at]).tolist(),
            lb.basis[at].tolist(),
            lb.ambiguous[at].tolist(),
            strict=True,
        ):
            src, dst = memo[i]
            orig, resp = (dst, src) if ss else (src, dst)
            obj = _Flow(PROTOS[pc], orig, resp, ts, None, "")
            rec = records.get(i)
            if rec is not None:
                obj.service, obj.service_port = rec.service, rec.service_port
                obj.status, obj.port_class = rec.status, rec.port_class
                obj.basis, obj.ambiguous = rec.basis, rec.ambiguous
                obj.vlan = rec.vlan
            else:
                if sd:
                    lab = labels(pc, sp)
                    obj.service, obj.service_port = lab.service, lab.port
                    obj.status, obj.port_class = lab.status, lab.port_class
                obj.basis = BASES[b] if b >= 0 else None
                obj.ambiguous = amb
                obj.vlan = lb.tags(i)
            out.append(obj)
        return out

    def _prefill_ends(self, lb: LabelledBatch, rows: list[int]) -> None:
        """Remember the endpoints of ``rows`` (IP rows), their texts made for all at once."""
        memo = self._ends_memo
        todo = [i for i in rows if i not in memo]
        if not todo:
            return
        at = np.array(todo, np.int64)
        version = lb.ip_version[at]
        for i, src, dst, sp, dp in zip(
            todo,
            address_texts(version, lb.src_addr[at]),
            address_texts(version, lb.dst_addr[at]),
            lb.src_port[at].tolist(),
            lb.dst_port[at].tolist(),
            strict=True,
        ):
            assert src is not None and dst is not None  # IP rows have addresses
            memo[i] = ((src, None if sp < 0 else sp), (dst, None if dp < 0 else dp))

    def _ends(
        self, lb: LabelledBatch, i: int
    ) -> tuple[tuple[str, int | None], tuple[str, int | None]]:
        """Row ``i``'s (src, dst) endpoints, remembered for the block (a new flow needs
        them for its key and again for itself)."""
        got = self._ends_memo.get(i)
        if got is None:
            got = self._ends_memo[i] = (
                (_ip(lb, i, "src"), _port(lb.src_port[i])),
                (_ip(lb, i, "dst"), _port(lb.dst_port[i])),
            )
        return got

    def _make_keys(self, lb: LabelledBatch, numeric: list[bytes], rows: list[int]) -> None:
        """Remember the FlowTable keys of flows by their numeric keys, each made from
        one of its rows (``rows``: IP rows)."""
        if len(self._keys) + len(rows) > 1_000_000:
            self._keys.clear()
        self._prefill_ends(lb, rows)
        memo = self._ends_memo
        keys = self._keys
        for nkey, i, pc in zip(numeric, rows, lb.proto[rows].tolist(), strict=True):
            src, dst = memo[i]
            keys[nkey] = table_key(None, PROTOS[pc], src, dst)


@dataclass(slots=True)
class _TunnelFold:
    """What :meth:`VectorSummaryBuilder._tunnelled_flows` did: each flow's key and last
    touch (row, 1 + the header's place in it), and the keys of the flows it made."""

    keys: list[tuple[Any, ...]]
    last: list[tuple[int, int]]
    key_of: dict[_Flow, tuple[Any, ...]]


@dataclass(slots=True)
class _Headers:
    """A block's tunnelled inner IP headers in row order: ``table`` (rows may repeat: a
    tunnel in a tunnel), each header's place among its row's plus one (``sub``), and the
    labelled headers of records (by position in ``table``)."""

    table: Tunnels
    sub: npt.NDArray[np.int64]
    given: dict[int, EndpointLabel]


def _inner_headers(lb: LabelledBatch) -> _Headers | None:
    """The tunnelled inner IP headers of ``lb``, from the tunnels' columns and the
    records; None when a record's header does not fit the columns (then its row goes
    packet by packet)."""
    rows: list[int] = []
    subs: list[int] = []
    ends: list[EndpointLabel] = []
    for i, rec in sorted(lb.records.items()):
        for k, e in enumerate(rec.inner):
            if e.src_ip is not None and e.dst_ip is not None:
                if not fits_columns(e):
                    return None
                rows.append(i)
                subs.append(1 + k)
                ends.append(e)
    t = lb.tunnels if lb.tunnels is not None else NO_TUNNELS
    if not ends:
        return _Headers(t, np.ones(len(t), np.int64), {})
    more = Tunnels.of(rows, ends)
    both = Tunnels.concat([t, more], [0, 0])
    assert both is not None
    sub = np.concatenate([np.ones(len(t), np.int64), np.array(subs, np.int64)])
    order = np.lexsort((sub, both.row))
    table = both.pick(order)
    at = np.empty(order.size, np.int64)
    at[order] = np.arange(order.size)
    given = {int(at[len(t) + j]): e for j, e in enumerate(ends)}
    return _Headers(table, sub[order], given)


_Grouped = tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    list[bytes],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
]


def _fold_into(
    objs: list[_Flow],
    group: npt.NDArray[np.int64],
    is_orig: npt.NDArray[np.bool_],
    ts_ns: npt.NDArray[np.int64],
    wirelen: npt.NDArray[np.int64],
    flags: npt.NDArray[np.int64] | None,
) -> None:
    """Add rows to their flows (row r to ``objs[group[r]]``, sent by the originator where
    ``is_orig``): packets and bytes each way, first and last seen, and TCP flags each way
    when given."""
    n = len(objs)
    gd = group * 2 + (~is_orig).astype(np.int64)
    pk = np.bincount(gd, minlength=2 * n)
    # Byte sums are whole numbers: rint equals round() on them.
    by = np.rint(np.bincount(gd, weights=wirelen, minlength=2 * n)).astype(np.int64)
    fl = np.zeros(2 * n, np.int64)
    if flags is not None:
        np.bitwise_or.at(fl, gd, flags)
    tmin = np.full(n, np.iinfo(np.int64).max, np.int64)
    tmax = np.full(n, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(tmin, group, ts_ns)
    np.maximum.at(tmax, group, ts_ns)
    for obj, t0, t1, opk, oby, ofl, rpk, rby, rfl in zip(
        objs,
        seconds_array(tmin).tolist(),
        seconds_array(tmax).tolist(),
        pk[0::2].tolist(),
        by[0::2].tolist(),
        fl[0::2].tolist(),
        pk[1::2].tolist(),
        by[1::2].tolist(),
        fl[1::2].tolist(),
        strict=True,
    ):
        if t0 < obj.first:
            obj.first = t0
        if t1 > obj.last:
            obj.last = t1
        obj.orig_pkts += opk
        obj.orig_bytes += oby
        obj.flags_orig |= ofl
        obj.resp_pkts += rpk
        obj.resp_bytes += rby
        obj.flags_resp |= rfl


def _canonical(
    lb: LabelledBatch | Tunnels,
    rows: npt.NDArray[np.int64],
    tag: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.uint64], ...]:
    """Each row's flow as a numeric key (misc, A's words, B's words: the endpoints in a
    canonical order), whether its source is endpoint A, and whether both ends are one.
    ``lb`` may be a batch's tunnels (their inner headers' flows: ``tag``, the tunnel
    code plus one, joins the key)."""
    n = int(rows.size)
    # Blocks are big (SUMMARY_ROWS): temporaries go as soon as they are used, which
    # keeps the peak near a third of keeping them all.
    s8 = lb.src_addr[rows].view(np.uint64).reshape(n, 2)
    d8 = lb.dst_addr[rows].view(np.uint64).reshape(n, 2)
    s_hi, s_lo, d_hi, d_lo = _be(s8[:, 0]), _be(s8[:, 1]), _be(d8[:, 0]), _be(d8[:, 1])
    del s8, d8
    sport = lb.src_port[rows].astype(np.int64)
    dport = lb.dst_port[rows].astype(np.int64)
    s_lt = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
    same = (s_hi == d_hi) & (s_lo == d_lo) & (sport == dport)
    a_port = np.where(s_lt, sport, dport) & 0x1FFFF
    b_port = np.where(s_lt, dport, sport) & 0x1FFFF
    del sport, dport
    word = (
        (lb.proto[rows].astype(np.int64) << 48)
        | (lb.ip_version[rows].astype(np.int64) << 40)
        | (a_port << 18)
        | b_port
    )
    if tag is not None:
        word |= tag << 56
    misc = word.astype(np.uint64)
    del word
    del a_port, b_port
    a_hi, a_lo = np.where(s_lt, s_hi, d_hi), np.where(s_lt, s_lo, d_lo)
    b_hi, b_lo = np.where(s_lt, d_hi, s_hi), np.where(s_lt, d_lo, s_lo)
    return misc, a_hi, a_lo, b_hi, b_lo, s_lt, same


def _numeric(keys: Sequence[npt.NDArray[np.uint64]]) -> list[bytes]:
    """The five key columns of some rows as one 40-byte key each."""
    out: list[bytes] = np.ascontiguousarray(np.stack(keys, axis=1)).view("V40").ravel().tolist()
    return out


def _numbers(
    found: list[bytes], index: dict[bytes, int], numeric: list[bytes]
) -> npt.NDArray[np.int64]:
    """The number of each key in ``index``; a key not there yet takes the next number
    and joins ``numeric`` (number -> key)."""
    if not index:
        # The usual first call: distinct keys, numbered in one go in C.
        index.update(zip(found, range(len(found)), strict=True))
        if len(index) == len(found):
            numeric.extend(found)
            return np.arange(len(found), dtype=np.int64)
        index.clear()
    out: list[int] = []
    for k in found:
        got = index.get(k)
        if got is None:
            got = index[k] = len(numeric)
            numeric.append(k)
        out.append(got)
    return np.array(out, np.int64)


def _grouped_by_key(lb: LabelledBatch, rows: npt.NDArray[np.int64]) -> _Grouped:
    """The flows of ``rows`` (their positions): an order with each flow's positions
    together and ascending, each flow's first position, each position's flow, the
    flows' numeric keys, and per position whether its source is endpoint A and whether
    both ends are one."""
    *keys, s_lt, same = _canonical(lb, rows)
    order, first, flow = _group(*keys)
    numeric = _numeric([k[first] for k in keys])
    return order, first, flow, numeric, s_lt.astype(np.bool_), same.astype(np.bool_)


def _grouped_by_slot(
    lb: LabelledBatch, rows: npt.NDArray[np.int64], fcol: npt.NDArray[np.int32]
) -> _Grouped:
    """:func:`_grouped_by_key`, the rows of the labeller's flows grouped by their slot
    (``fcol``, each slot one flow in ``lb``): canonical keys are made for one row of
    each flow, not for every row. The other rows are grouped by key and join the flow
    of the same key."""
    n = int(rows.size)
    vec = np.flatnonzero(fcol >= 0)
    slot = (fcol[vec] >> 1).astype(np.int64)
    dense = np.full(int(slot.max()) + 1, -1, np.int64)
    dense[slot] = 0
    used = np.flatnonzero(dense == 0)
    dense[used] = np.arange(used.size)
    flow = np.empty(n, np.int64)
    flow[vec] = dense[slot]
    rep = np.empty(used.size, np.int64)
    rep[flow[vec]] = vec  # any row of each flow: its key does not depend on which
    *keys, rep_lt, rep_same = _canonical(lb, rows[rep])
    # A row's source is A when it is the labeller's first endpoint exactly when the
    # flow's row above is (the labeller's order and this one are both canonical).
    first_ep = (fcol[vec] & 1) == 0
    rep_first_ep = (fcol[rep] & 1) == 0
    s_lt = np.empty(n, np.bool_)
    same = np.empty(n, np.bool_)
    fv = flow[vec]
    s_lt[vec] = first_ep == (rep_first_ep == rep_lt)[fv]
    same[vec] = rep_same[fv]
    # Flows are numbered by key: two slots of one key (a flow the labeller forgot and
    # met again) and the other rows of a key are one flow, as when grouping by key.
    index: dict[bytes, int] = {}
    numeric: list[bytes] = []
    flow[vec] = _numbers(_numeric(keys), index, numeric)[fv]
    other = np.flatnonzero(fcol < 0)
    if other.size:
        _, _, o_flow, o_numeric, o_lt, o_same = _grouped_by_key(lb, rows[other])
        s_lt[other] = o_lt
        same[other] = o_same
        flow[other] = _numbers(o_numeric, index, numeric)[o_flow]
    # Positions by flow, ascending inside each (a stable sort; radix for small numbers).
    nflows = len(numeric)
    order = np.argsort(flow.astype(np.uint16) if nflows <= 1 << 16 else flow, kind="stable")
    starts = np.ones(n, np.bool_)
    starts[1:] = flow[order[1:]] != flow[order[:-1]]
    first = order[starts]  # flows come out in number order, every number used
    return order.astype(np.int64), first, flow, numeric, s_lt, same


#: Largest key range :func:`_dense_unique` counts in an array (beyond it, it sorts).
_DENSE_MAX = 1 << 22


def _exponent(width: float) -> int:
    """``k`` for a timeline width of ``2 ** k`` seconds (k >= 0), else 0 (its bins are
    then added as seconds)."""
    mantissa, e = math.frexp(width)
    return e - 1 if mantissa == 0.5 and e >= 1 else 0


def _dense_unique(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(keys, return_inverse=True)`` for non-negative keys; small key ranges
    are counted rather than sorted (sorting a block's keys costs more). A range much
    wider than the keys are many is sorted: counting would take memory for the range."""
    top = int(keys.max()) + 1 if keys.size else 0
    sparse = top > 4 * keys.size + (1 << 16)
    if top > _DENSE_MAX or sparse or (keys.size and int(keys.min()) < 0):
        uniq, inv = np.unique(keys, return_inverse=True)
        return uniq.astype(np.int64), inv.astype(np.int64).reshape(-1)
    present = np.bincount(keys, minlength=top)
    uniq = np.flatnonzero(present)
    lut = np.empty(top, np.int64)
    lut[uniq] = np.arange(uniq.size)
    return uniq.astype(np.int64), lut[keys]


def service_row(s: Summary, labels: Labeller, c: int) -> ServiceRow:
    """The service row of proto code and port ``c`` (``proto << 16 | port``) in ``s``,
    made when new, with the label's unauthorized-use note."""
    proto, p = c >> 16, c & 0xFFFF
    lab = labels.label(proto, p)
    key = (lab.service, PROTOS[proto], lab.port)
    row = s.services.get(key)
    if row is None:
        row = s.services[key] = ServiceRow(
            lab.service, PROTOS[proto], lab.port, lab.description, lab.status, lab.port_class
        )
    if lab.unauthorized_use:
        row.unauthorized_use = lab.unauthorized_use
    return row


def _rows_between(lb: LabelledBatch, src: str, dst: str) -> npt.NDArray[np.int64]:
    """Rows sent from address ``src`` to ``dst``."""
    import ipaddress

    a = ipaddress.ip_address(src)
    b = ipaddress.ip_address(dst)
    sa = np.frombuffer(a.packed.ljust(16, b"\0"), "V16")[0]
    db = np.frombuffer(b.packed.ljust(16, b"\0"), "V16")[0]
    ok = (lb.ip_version == a.version) & (lb.src_addr == sa) & (lb.dst_addr == db)
    return np.flatnonzero(ok)


def _inner_key(e: EndpointLabel) -> tuple[Any, ...]:
    """FlowTable's key of a tunnelled header's flow."""
    assert e.src_ip is not None and e.dst_ip is not None  # counted headers have both
    return table_key(e.tunnel, e.proto, (e.src_ip, e.src_port), (e.dst_ip, e.dst_port))


def _ip(lb: LabelledBatch, i: int, which: str) -> str:
    from portsniff.annotate.vector import address_text

    col = lb.src_addr if which == "src" else lb.dst_addr
    return address_text(int(lb.ip_version[i]), bytes(col[i]))


def _port(v: np.integer[Any]) -> int | None:
    p = int(v)
    return None if p < 0 else p
