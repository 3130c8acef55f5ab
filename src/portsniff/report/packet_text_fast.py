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

from portsniff.annotate.records import PacketRecord
from portsniff.annotate.vector import SIDE_DST, SIDE_SRC, LabelledBatch
from portsniff.decode.packet import PROTOS
from portsniff.report.packet_text import TextWriter, label_text, packet_line


def _label_record(proto: str, label: object, ambiguous: bool) -> PacketRecord:
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
        fragment=False,
        vlan=(),
        source=label.source,
    )


class BatchText:
    """Formats LabelledBatches as text lines (caches live as long as this object)."""

    def __init__(self, color: bool = False) -> None:
        self.color = color
        self._seconds: dict[int, str] = {}
        self._labels: dict[tuple[int, int, bool], str] = {}

    def _label(self, lb: LabelledBatch, proto: int, port: int, amb: bool) -> str:
        key = (proto, port, amb)
        got = self._labels.get(key)
        if got is None:
            rec = _label_record(PROTOS[proto], lb.labels.label(proto, port), amb)
            got = self._labels[key] = " " + label_text(rec, self.color)
        return got

    def lines(self, lb: LabelledBatch) -> list[str]:
        """One line per row (without newlines)."""
        n = len(lb)
        if n == 0:
            return []
        ts = lb.ts_ns / 1e9
        whole = np.floor(ts)
        micros = np.round((ts - whole) * 1e6).astype(np.int64)
        whole_i = whole.astype(np.int64)
        carry = micros == 1_000_000
        whole_i[carry] += 1
        micros[carry] = 0
        secs = self._seconds
        uniq, inv = np.unique(whole_i, return_inverse=True)
        sec_text = []
        for w in uniq.tolist():
            got = secs.get(w)
            if got is None:
                if len(secs) > 100_000:
                    secs.clear()
                got = secs[w] = time.strftime("%H:%M:%S", time.gmtime(w))
            sec_text.append(got)
        # Label text per row: one look-up per distinct (transport, port, ambiguous).
        side = lb.side
        port = np.where(side == SIDE_DST, lb.dst_port, np.where(side == SIDE_SRC, lb.src_port, -1))
        combo = np.where(
            side > 0,
            (lb.proto.astype(np.int64) * 65536 + port) * 2 + lb.ambiguous,
            -1,
        )
        cu, cinv = np.unique(combo, return_inverse=True)
        ctext = [
            "" if c < 0 else self._label(lb, c >> 17, (c >> 1) & 0xFFFF, bool(c & 1))
            for c in cu.tolist()
        ]
        srcs = lb.addresses("src")
        dsts = lb.addresses("dst")
        names = list(PROTOS)
        secs_l = inv.tolist()
        us_l = micros.tolist()
        labels = [ctext[c] for c in cinv.tolist()]
        sps = lb.src_port.tolist()
        dps = lb.dst_port.tolist()
        protos = [names[p] for p in lb.proto.tolist()]
        # The common row (IP, both ports) in one comprehension; the rest below.
        out = [
            f"{sec_text[s]}.{us:06d} {a}.{sp} > {b}.{dp} {p}{lab}"
            for s, us, a, sp, b, dp, p, lab in zip(
                secs_l, us_l, srcs, sps, dsts, dps, protos, labels, strict=True
            )
        ]
        stamps = _Stamps(sec_text, secs_l, us_l)
        odd = np.flatnonzero((lb.ip_version == 0) | (lb.src_port < 0) | (lb.dst_port < 0))
        wirelen = lb.wirelen
        for i in odd.tolist():
            src, dst = srcs[i], dsts[i]
            if src is None:
                head = f"{stamps[i]}{protos[i]} (non-IP frame, {int(wirelen[i])} bytes)"
            else:
                a = src if sps[i] < 0 else f"{src}.{sps[i]}"
                b = dst if dps[i] < 0 else f"{dst}.{dps[i]}"
                head = f"{stamps[i]}{a} > {b} {protos[i]}"
            out[i] = head + labels[i]
        for i, tags in lb.vlan.items():
            src, dst = srcs[i], dsts[i]
            if src is None:
                head = f"{stamps[i]}{protos[i]} (non-IP frame, {int(wirelen[i])} bytes)"
            else:
                a = src if sps[i] < 0 else f"{src}.{sps[i]}"
                b = dst if dps[i] < 0 else f"{dst}.{dps[i]}"
                head = f"{stamps[i]}{a} > {b} {protos[i]}"
            out[i] = head + " vlan " + ".".join(str(v) for v in tags) + labels[i]
        for i, rec in lb.records.items():
            out[i] = packet_line(rec, self.color)
        return out


_SLICE = 16384


class _Stamps:
    """``HH:MM:SS.micros `` of a row, made on demand (for the rare rows)."""

    def __init__(self, text: list[str], secs: list[int], micros: list[int]) -> None:
        self.text, self.secs, self.micros = text, secs, micros

    def __getitem__(self, i: int) -> str:
        return f"{self.text[self.secs[i]]}.{self.micros[i]:06d} "


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
        # In slices, so that the lines of a big block never all exist at once.
        for a in range(0, len(lb), _SLICE):
            part = lb if len(lb) <= _SLICE else lb.slice(a, a + _SLICE)
            lines = self._text.lines(part)
            if lines:
                self.stream.write("\n".join(lines) + "\n")
