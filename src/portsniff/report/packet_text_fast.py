"""Annotate's text format for whole LabelledBatches: the same bytes as
:func:`portsniff.report.packet_text.packet_line`, a block at a time.

Timestamps are split with numpy (one ``strftime`` per distinct second), addresses are
turned into text once per distinct address, label texts once per (transport, port,
ambiguous), and a block's lines are joined and written with one call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

import numpy as np
import numpy.typing as npt

from portsniff.annotate.records import PacketRecord
from portsniff.annotate.vector import (
    SIDE_DST,
    SIDE_SRC,
    LabelledBatch,
    _group,
    address_text,
    address_texts,
)
from portsniff.decode.packet import PROTOS
from portsniff.report.packet_text import TextWriter, label_text, packet_line
from portsniff.report.rowtext import TAIL_CACHE, tunnel_tails, utf8_buffer
from portsniff.timestamps import seconds_array

#: ".000" to ".999" and "000 " to "999 " as 4-byte words (the stamp's last 8 bytes).
_DOT_DIGITS = np.frombuffer("".join(f".{k:03d}" for k in range(1000)).encode(), np.uint32)
_DIGITS_SPACE = np.frombuffer("".join(f"{k:03d} " for k in range(1000)).encode(), np.uint32)


def _label_record(proto: str, label: object, ambiguous: bool, fragment: bool) -> PacketRecord:
    """A record carrying only a label (what ``label_text`` reads)."""
    from portsniff.registry.record import PortLabel

    assert isinstance(label, PortLabel)
    return PacketRecord(
        frame=0,
        file="",
        ts=0.0,
        len=0,
        caplen=0,
        src_ip=None,
        dst_ip=None,
        proto=proto,
        src_port=None,
        dst_port=None,
        service=label.service,
        service_port=label.port,
        service_side=None,
        description=label.description,
        status=label.status,
        port_class=label.port_class,
        aliases=label.aliases,
        unauthorized_use=label.unauthorized_use,
        basis=None,
        ambiguous=ambiguous,
        dnssd=(),
        inner=(),
        quoted=None,
        fragment=fragment,
        vlan=(),
        source=label.source,
    )


class BatchText:
    """Formats LabelledBatches as text lines (caches live as long as this object)."""

    def __init__(self, color: bool = False) -> None:
        self.color = color
        self._seconds: dict[int, str] = {}
        # Label texts by label code (see _label_codes).
        self._labels: dict[int, str] = {}
        self._tail_cache: dict[bytes, bytes] = {}
        self._tunnel_cache: dict[bytes, bytes] = {}
        self._flow_tails = FlowTails()

    def _label(self, lb: LabelledBatch, code: int) -> str:
        """The label text (with its leading space) of label ``code`` (see _label_codes)."""
        got = self._labels.get(code)
        if got is None:
            if code == _FRAGMENT_ONLY:
                got = self._labels[code] = " fragment"  # (label_text's word, no label)
                return got
            frag, amb = bool(code & 1), bool(code & 2)
            proto, port = code >> 18, (code >> 2) & 0xFFFF
            rec = _label_record(PROTOS[proto], lb.labels.label(proto, port), amb, frag)
            got = self._labels[code] = " " + label_text(rec, self.color)
        return got

    def lines(self, lb: LabelledBatch) -> list[str]:
        """One line per row (without newlines)."""
        parts = self._parts(lb)
        return [(a + b).decode()[:-1] for a, b in zip(parts[0::2], parts[1::2], strict=True)]

    def _stamps(
        self, lb: LabelledBatch
    ) -> tuple[list[bytes], list[str], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Each row's ``HH:MM:SS.micros `` as bytes, and the parts they are made of."""
        n = len(lb)
        ts = seconds_array(lb.ts_ns)
        whole = np.floor(ts)
        micros = np.round((ts - whole) * 1e6).astype(np.int64)
        whole_i = whole.astype(np.int64)
        carry = micros == 1_000_000
        whole_i[carry] += 1
        micros[carry] = 0
        secs = self._seconds
        lo, hi = int(whole_i.min()), int(whole_i.max())
        if hi - lo < 4096:
            # Captures are (nearly) in time order: the seconds of a block are a short range.
            uniq, inv = np.arange(lo, hi + 1), whole_i - lo
        else:
            uniq, inv = np.unique(whole_i, return_inverse=True)
        sec_text = []
        for w in uniq.tolist():
            got = secs.get(w)
            if got is None:
                if len(secs) > 100_000:
                    secs.clear()
                got = secs[w] = time.strftime("%H:%M:%S", time.gmtime(w))
            sec_text.append(got)
        inv = inv.reshape(-1)
        # The stamp is fixed-width ASCII when every second is "HH:MM:SS": built as bytes.
        if all(len(t) == 8 and t.isascii() for t in sec_text):
            # "HH:MM:SS" ".hhh" "lll " as one 8-byte and two 4-byte gathers a row.
            mat = np.empty(n, "V16")
            words = mat.view(np.uint32).reshape(n, 4)
            words.view(np.uint64)[:, 0] = np.frombuffer("".join(sec_text).encode(), np.uint64)[inv]
            high, low = np.divmod(micros, 1000)
            words[:, 2] = _DOT_DIGITS[high]
            words[:, 3] = _DIGITS_SPACE[low]
            stamps: list[bytes] = mat.view("S16").tolist()
        else:
            stamps = [
                f"{sec_text[s]}.{us:06d} ".encode()
                for s, us in zip(inv.tolist(), micros.tolist(), strict=True)
            ]
        return stamps, sec_text, inv, micros

    def text(self, lb: LabelledBatch) -> str:
        """Every row's line, each ending in a newline ("" for no rows).

        Rows are grouped by everything after the timestamp (addresses, ports, transport,
        label), so that the text after the stamp is made once per group; a row costs a
        join of two byte strings.
        """
        return b"".join(self._parts(lb)).decode() if len(lb) else ""

    def _parts(self, lb: LabelledBatch) -> list[bytes]:
        """Stamp and rest of each row, alternating (the rest ends in a newline)."""
        n = len(lb)
        if n == 0:
            return []
        stamps, sec_text, secs_l, us_l = self._stamps(lb)
        # Label text per row: one look-up per distinct label code.
        combo = _label_codes(lb, slice(None))
        version = lb.ip_version
        sport = lb.src_port.astype(np.int64)
        dport = lb.dst_port.astype(np.int64)
        proto = lb.proto.astype(np.int64)
        # Ports are 16-bit or -1 and the combo 25 bits or -1; a non-IP row's text carries
        # its length (rows with a length out of range go one by one below).
        nonip = version == 0
        wirelen = lb.wirelen.astype(np.int64)
        odd_len = nonip & ((wirelen < 0) | (wirelen >= 1 << 36))
        w1 = (
            (sport + 1) | ((dport + 1) << 17) | (proto << 34) | (version.astype(np.int64) << 42)
        ).astype(np.uint64)
        w2 = ((combo + 1) | np.where(nonip & ~odd_len, wirelen + 1, 0) << 26).astype(np.uint64)
        src_w = lb.src_addr.view(np.uint64).reshape(n, 2)
        dst_w = lb.dst_addr.view(np.uint64).reshape(n, 2)
        # One or two VLAN tags are part of the group's text; more go one by one.
        vw, odd_vlan = lb.vlan_words()
        # Rows of flows whose text is known (the labeller's flow and direction, with the
        # label and VLAN the text was made for) take it; the rest are grouped by their
        # text's every input and their groups' text is kept by key (groups recur from
        # block to block).
        flow_tails = self._flow_tails
        flow_tails.start(lb)
        row_tail, hit = flow_tails.look(lb.flow, combo, vw)
        inputs = (src_w[:, 0], src_w[:, 1], dst_w[:, 0], dst_w[:, 1], w1, w2, vw)
        stamp_of = _Stamps(sec_text, secs_l, us_l)
        tunnelled = np.zeros(0, np.int64) if lb.tunnels is None else lb.tunnels.rows()
        if tunnelled.size:
            # Their text has the inner header too: grouped apart, never a flow's text.
            hit[tunnelled] = True

            def tail(i: int, rec: PacketRecord) -> bytes:
                # The line after its clock (which has no space): the row has its stamp.
                return (packet_line(rec, self.color).split(" ", 1)[1] + "\n").encode()

            row_tail[tunnelled] = tunnel_tails(lb, tunnelled, inputs, self._tunnel_cache, tail)
        rest = np.flatnonzero(~hit)
        if rest.size:
            keys = tuple(k[rest] for k in inputs)
            _, first, inverse = _group(*keys)
            key_bytes = np.stack([k[first] for k in keys], axis=1).view("V56").reshape(-1).tolist()
            cache = self._tail_cache
            tails = [cache.get(k) for k in key_bytes]
            miss = [j for j, t in enumerate(tails) if t is None]
            if miss:
                if len(cache) + len(miss) > TAIL_CACHE:
                    cache.clear()
                made = self._tails(lb, rest[first[miss]], combo, vw)
                for j, t in zip(miss, made, strict=True):
                    tails[j] = cache[key_bytes[j]] = t
            row_tail[rest] = np.array(tails, dtype=object)[inverse]
            flow_tails.keep(lb.flow, rest, combo, vw, row_tail)
        parts: list[bytes] = [b""] * (2 * n)
        parts[0::2] = stamps
        parts[1::2] = row_tail.tolist()
        # Rows whose text is not their group's: one by one.
        special = set(odd_vlan) | set(lb.records) | set(np.flatnonzero(odd_len).tolist())
        if special:
            for i in sorted(special):
                parts[2 * i] = b""
                parts[2 * i + 1] = (self._row_line(lb, i, stamp_of) + "\n").encode()
        return parts

    def _tails(
        self,
        lb: LabelledBatch,
        first: npt.NDArray[np.int64],
        combo: npt.NDArray[np.int64],
        vlan: npt.NDArray[np.uint64],
    ) -> list[bytes]:
        """The text after the stamp (with the newline) of each group's first row."""
        version = lb.ip_version[first]
        # Address texts for all rows at once (a look-up each; traffic of many flows makes
        # a group, and a text, per flow and direction).
        srcs = address_texts(version, lb.src_addr[first])
        dsts = address_texts(version, lb.dst_addr[first])
        sps = lb.src_port[first].tolist()
        dps = lb.dst_port[first].tolist()
        protos = lb.proto[first].tolist()
        combos = combo[first].tolist()
        wirelens = lb.wirelen[first].tolist()
        tags = vlan[first].tolist()
        names = PROTOS
        labels = self._labels
        out: list[bytes] = []
        for a, b, sp, dp, p, c, wl, tag in zip(
            srcs, dsts, sps, dps, protos, combos, wirelens, tags, strict=True
        ):
            lab = "" if c < 0 else labels.get(c) or self._label(lb, c)
            if a is None or b is None:  # not IP
                head = f"{names[p]} (non-IP frame, {int(wl)} bytes)"
            else:
                if sp >= 0:
                    a = f"{a}.{sp}"
                if dp >= 0:
                    b = f"{b}.{dp}"
                head = f"{a} > {b} {names[p]}"
            if tag:
                second = tag >> 32
                head = f"{head} vlan {(tag & 0xFFFFFFFF) - 1}"
                if second:
                    head = f"{head}.{second - 1}"
            out.append(f"{head}{lab}\n".encode())
        return out

    def _row_line(self, lb: LabelledBatch, i: int, stamps: _Stamps) -> str:
        """Row ``i``'s line (for rows with a VLAN tag, a record of their own, or odd)."""
        rec = lb.records.get(i)
        if rec is not None:
            return packet_line(rec, self.color)
        v = int(lb.ip_version[i])
        p = PROTOS[int(lb.proto[i])]
        if not v:
            head = f"{stamps[i]}{p} (non-IP frame, {int(lb.wirelen[i])} bytes)"
        else:
            sp, dp = int(lb.src_port[i]), int(lb.dst_port[i])
            a = address_text(v, lb.src_addr[i].tobytes())
            b = address_text(v, lb.dst_addr[i].tobytes())
            a = a if sp < 0 else f"{a}.{sp}"
            b = b if dp < 0 else f"{b}.{dp}"
            head = f"{stamps[i]}{a} > {b} {p}"
        tags = lb.tags(i)
        if tags:
            head += " vlan " + ".".join(str(t) for t in tags)
        code = int(_label_codes(lb, slice(i, i + 1))[0])
        return head if code < 0 else head + self._label(lb, code)


_SLICE = 65536

#: The label code of an IP fragment without a label (labelled rows' codes are below).
_FRAGMENT_ONLY = 1 << 22


def _label_codes(lb: LabelledBatch, rows: slice) -> npt.NDArray[np.int64]:
    """The label code of each of ``rows``: (transport, service port, ambiguous, IP
    fragment) of labelled rows, _FRAGMENT_ONLY for other fragments, -1 for rows without
    label text."""
    side = lb.side[rows]
    port = np.where(
        side == SIDE_DST, lb.dst_port[rows], np.where(side == SIDE_SRC, lb.src_port[rows], -1)
    )
    frag = lb.fragment[rows]
    labelled = ((lb.proto[rows].astype(np.int64) * 65536 + port) * 2 + lb.ambiguous[rows]) * 2
    return np.where(side > 0, labelled + frag, np.where(frag, _FRAGMENT_ONLY, -1))


class FlowTails:
    """The text made last for each flow and direction of a labeller (LabelledBatch.flow),
    with the label and VLAN word it was made for: rows of known flows take it without
    grouping or hashing. At most TAIL_CACHE texts are kept."""

    def __init__(self) -> None:
        self.space = 0
        self.kept = 0
        self._reset(0)

    def _reset(self, size: int) -> None:
        self.combo = np.full(size, -2, np.int64)  # -2: nothing kept (a combo is >= -1)
        self.vw = np.zeros(size, np.uint64)
        self.tail = np.empty(size, object)
        self.kept = 0

    def start(self, lb: LabelledBatch) -> None:
        """Get ready for ``lb``: forget the flows its labeller gave new slots to."""
        if lb.flow_space != self.space:
            self.space = lb.flow_space
            self._reset(self.combo.size)
        top = int(lb.flow.max()) + 1 if len(lb) else 0
        if top > self.combo.size:
            grow = max(top, 2 * self.combo.size)
            self.combo = np.concatenate([self.combo, np.full(grow - self.combo.size, -2)])
            self.vw = np.concatenate([self.vw, np.zeros(grow - self.vw.size, np.uint64)])
            self.tail = np.concatenate([self.tail, np.empty(grow - self.tail.size, object)])
        new = lb.new_flows.astype(np.int64) * 2
        new = np.concatenate([new, new + 1])
        self.combo[new[new < self.combo.size]] = -2

    def look(
        self,
        flow: npt.NDArray[np.int32],
        combo: npt.NDArray[np.int64],
        vw: npt.NDArray[np.uint64],
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
        """Each row's kept text (None where there is none), and which rows have one."""
        if not self.kept or not self.combo.size:
            return np.empty(flow.size, object), np.zeros(flow.size, np.bool_)
        f = np.maximum(flow, 0)
        hit = (flow >= 0) & (self.combo[f] == combo) & (self.vw[f] == vw)
        # One gather of every row's text (misses are filled in by the caller).
        return self.tail[f], hit

    def keep(
        self,
        flow: npt.NDArray[np.int32],
        rows: npt.NDArray[np.int64],
        combo: npt.NDArray[np.int64],
        vw: npt.NDArray[np.uint64],
        texts: npt.NDArray[np.object_],
    ) -> None:
        """Remember the texts of ``rows`` (one row per flow and direction)."""
        rows = rows[flow[rows] >= 0]
        if not rows.size:
            return
        slots, first = np.unique(flow[rows], return_index=True)
        if self.kept + slots.size > TAIL_CACHE:
            self._reset(self.combo.size)
        rows = rows[first]
        self.kept += int(np.count_nonzero(self.combo[slots] == -2))
        self.combo[slots] = combo[rows]
        self.vw[slots] = vw[rows]
        self.tail[slots] = texts[rows]


class _Stamps:
    """``HH:MM:SS.micros `` of a row, made on demand (for the rare rows)."""

    def __init__(
        self, text: list[str], secs: npt.NDArray[np.int64], micros: npt.NDArray[np.int64]
    ) -> None:
        self.text, self.secs, self.micros = text, secs, micros

    def __getitem__(self, i: int) -> str:
        return f"{self.text[int(self.secs[i])]}.{int(self.micros[i]):06d} "


class FastTextWriter(TextWriter):
    """TextWriter that also takes whole LabelledBatches (``write_batch``)."""

    def __init__(self, stream: TextIO, fields: Sequence[str] | None = None, color: bool = False):
        super().__init__(stream, fields, color)
        self._text = BatchText(color)

    def write_batch(self, lb: LabelledBatch) -> None:
        """Write every row of ``lb`` (one write call)."""
        if self.fields:
            for record in lb.iter_records():
                self.write(record)
            return
        raw = utf8_buffer(self.stream)
        # In slices, so that the lines of a big block never all exist at once.
        for a in range(0, len(lb), _SLICE):
            part = lb if len(lb) <= _SLICE else lb.slice(a, a + _SLICE)
            if raw is not None:
                # The lines are UTF-8 bytes already: no decoding and encoding again.
                raw.write(b"".join(self._text._parts(part)))
                continue
            text = self._text.text(part)
            if text:
                self.stream.write(text)
