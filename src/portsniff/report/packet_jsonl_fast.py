"""Annotate's JSON Lines for whole LabelledBatches: the same bytes as
:class:`portsniff.report.packet_jsonl.JsonlWriter`, a block at a time.

Rows that share a label (transport, side, port, basis, ambiguous) share a line template:
the record's JSON with placeholders for what differs per packet (frame, timestamp,
lengths, addresses, ports, VLAN tags), made once by ``json.dumps`` itself so that key
order and escaping are always the writer's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from portsniff.annotate.records import PacketRecord, label_fields
from portsniff.annotate.vector import BASES, SIDE_DST, SIDE_NAME, SIDE_SRC, LabelledBatch
from portsniff.decode.packet import PROTOS
from portsniff.report.packet_jsonl import JsonlWriter

# Placeholders, in the order of the per-row values.
_SLOTS = ("frame", "ts", "len", "caplen", "src_ip", "dst_ip", "src_port", "dst_port", "vlan")
_MARK = "\ue000{}\ue001"  # private-use characters: never in a record's own text


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class BatchJsonl:
    """Formats LabelledBatches as packet lines (caches live as long as this object)."""

    def __init__(self) -> None:
        self._templates: dict[tuple[str, int, int, int, int, bool], str] = {}
        self._addr: dict[str | None, str] = {None: "null"}

    def _template(self, lb: LabelledBatch, key: tuple[str, int, int, int, int, bool]) -> str:
        got = self._templates.get(key)
        if got is not None:
            return got
        file, proto, side, port, basis, amb = key
        lab = lb.labels.label(proto, port) if side else None
        marks: dict[str, Any] = {name: _MARK.format(name) for name in _SLOTS}
        rec = PacketRecord(
            frame=marks["frame"],
            file=file,
            ts=marks["ts"],
            len=marks["len"],
            caplen=marks["caplen"],
            src_ip=marks["src_ip"],
            dst_ip=marks["dst_ip"],
            proto=PROTOS[proto],
            src_port=marks["src_port"],
            dst_port=marks["dst_port"],
            service_side=SIDE_NAME[side],
            basis=BASES[basis] if basis >= 0 else None,
            ambiguous=amb,
            dnssd=(),
            inner=(),
            quoted=None,
            fragment=False,
            vlan=marks["vlan"],
            **label_fields(lab),
        )
        text = _dumps({"type": "packet", **rec.as_dict()}).replace("%", "%%")
        for name in _SLOTS:
            text = text.replace(_dumps(marks[name]), "%s")
        got = self._templates[key] = text
        return got

    def lines(self, lb: LabelledBatch) -> list[str]:
        """One line per row (without newlines)."""
        n = len(lb)
        if n == 0:
            return []
        side = lb.side
        port = np.where(side == SIDE_DST, lb.dst_port, np.where(side == SIDE_SRC, lb.src_port, 0))
        combo = (
            ((lb.proto.astype(np.int64) * 3 + side) * 65536 + port) * 6 + (lb.basis + 1)
        ) * 2 + lb.ambiguous
        cu, cinv = np.unique(combo, return_inverse=True)
        templates = []
        for c in cu.tolist():
            amb = bool(c & 1)
            c >>= 1
            basis = c % 6 - 1
            c //= 6
            p = c % 65536
            c //= 65536
            templates.append(self._template(lb, (lb.file, c // 3, c % 3, p, basis, amb)))
        addr = self._addr
        if len(addr) > 200_000:
            addr.clear()
            addr[None] = "null"

        def quoted(texts: list[str | None]) -> list[str]:
            out = []
            for t in texts:
                q = addr.get(t)
                if q is None:
                    q = addr[t] = _dumps(t)
                out.append(q)
            return out

        srcs = quoted(lb.addresses("src"))
        dsts = quoted(lb.addresses("dst"))
        ts = (lb.ts_ns / 1e9).tolist()
        sps = [str(p) if p >= 0 else "null" for p in lb.src_port.tolist()]
        dps = [str(p) if p >= 0 else "null" for p in lb.dst_port.tolist()]
        vlan = lb.vlan
        vl = ["[]"] * n
        for i, tags in vlan.items():
            vl[i] = _dumps(list(tags))
        out = [
            templates[c] % (f, repr(t), w, k, a, b, sp, dp, v)
            for c, f, t, w, k, a, b, sp, dp, v in zip(
                cinv.tolist(),
                lb.frame.tolist(),
                ts,
                lb.wirelen.tolist(),
                lb.caplen.tolist(),
                srcs,
                dsts,
                sps,
                dps,
                vl,
                strict=True,
            )
        ]
        for i, rec in lb.records.items():
            out[i] = _dumps({"type": "packet", **rec.as_dict()})
        return out


_SLICE = 16384


class FastJsonlWriter(JsonlWriter):
    """JsonlWriter that also takes whole LabelledBatches (``write_batch``)."""

    def __init__(self, stream: TextIO, fields: Sequence[str] | None = None, color: bool = False):
        super().__init__(stream, fields, color)
        self._json = BatchJsonl()

    def write_batch(self, lb: LabelledBatch) -> None:
        """Write every row of ``lb`` (one write call per slice of rows)."""
        if self.fields:
            for record in lb.iter_records():
                self.write(record)
            return
        for a in range(0, len(lb), _SLICE):
            part = lb if len(lb) <= _SLICE else lb.slice(a, a + _SLICE)
            lines = self._json.lines(part)
            if lines:
                self.stream.write("\n".join(lines) + "\n")
