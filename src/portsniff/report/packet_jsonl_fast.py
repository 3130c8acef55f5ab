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
import numpy.typing as npt

from portsniff.annotate.records import PacketRecord, label_fields
from portsniff.annotate.vector import (
    BASES,
    SIDE_DST,
    SIDE_NAME,
    SIDE_SRC,
    LabelledBatch,
    _group,
    address_texts,
)
from portsniff.decode.packet import PROTOS
from portsniff.report.packet_jsonl import JsonlWriter
from portsniff.report.rowtext import TAIL_CACHE, Part, decimal_rows, tunnel_tails, utf8_buffer
from portsniff.timestamps import repr_parts, repr_texts

# Placeholders, in the order of the per-row values.
_SLOTS = ("frame", "ts", "len", "caplen", "src_ip", "dst_ip", "src_port", "dst_port", "vlan")
#: The label's fields, filled in per label.
_LABEL_SLOTS = tuple(label_fields(None))
_MARK = "\ue000{}\ue001"  # private-use characters: never in a record's own text
_TS_MARK = "\ue002"


#: JsonlWriter's encoding (json.dumps with these options), made once.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: Each label field's mark as it stands in a skeleton's text.
_LABEL_MARKS = tuple((name, _dumps(_MARK.format(name))) for name in _LABEL_SLOTS)


class BatchJsonl:
    """Formats LabelledBatches as packet lines (caches live as long as this object)."""

    def __init__(self) -> None:
        self._skeletons: dict[tuple[str, int, int, int, bool, bool], str] = {}
        self._tails: dict[str, dict[bytes, bytes]] = {}  # one file's at a time
        self._tunnel_tails: dict[str, dict[bytes, bytes]] = {}  # (tunnelled rows')
        self._head: dict[str, tuple[bytes, bytes]] = {}
        # Line templates after the lengths, by file and label code (see _suffix).
        self._suffixes: dict[str, dict[int, str]] = {}

    def _template(
        self,
        lb: LabelledBatch,
        file: str,
        proto: int,
        side: int,
        port: int,
        basis: int,
        amb: bool,
        frag: bool,
    ) -> str:
        """A whole line's template for one label (kept as its _suffix)."""
        text = self._skeleton(file, proto, side, basis, amb, frag)
        if side:
            # The label's fields, each as json.dumps writes it inside the record.
            values = label_fields(lb.labels.label(proto, port))
            for name, mark in _LABEL_MARKS:
                value = values[name]
                if value is None:
                    json_value = "null"
                else:
                    json_value = _dumps(list(value) if isinstance(value, tuple) else value)
                    json_value = json_value.replace("%", "%%")
                text = text.replace(mark, json_value)
        return text

    def _skeleton(self, file: str, proto: int, side: int, basis: int, amb: bool, frag: bool) -> str:
        """A line template of every label on (transport, side, basis, ambiguous, IP
        fragment): the record's JSON with ``%s`` for the row's values and marks for the
        label's."""
        key = (file, proto, side, basis, amb, frag)
        got = self._skeletons.get(key)
        if got is not None:
            return got
        marks: dict[str, Any] = {name: _MARK.format(name) for name in _SLOTS + _LABEL_SLOTS}
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
            fragment=frag,
            vlan=marks["vlan"],
            **({name: marks[name] for name in _LABEL_SLOTS} if side else label_fields(None)),
        )
        text = _dumps({"type": "packet", **rec.as_dict()}).replace("%", "%%")
        for name in _SLOTS:
            text = text.replace(_dumps(marks[name]), "%s")
        got = self._skeletons[key] = text
        return got

    def lines(self, lb: LabelledBatch) -> list[str]:
        """One line per row (without newlines)."""
        return b"".join(self.parts(lb)).decode().split("\n")[:-1]

    def parts(self, lb: LabelledBatch) -> list[bytes]:
        """Each row's line as UTF-8 in two parts (joined: the lines, each ending in a
        newline).

        Rows are grouped by everything but their frame number, timestamp and lengths
        (the label, addresses, ports, VLAN tag); a group's text after those is made
        once and kept by key (groups recur from block to block: flows). The text before
        it is numbers in a fixed frame, laid out for the whole block by numpy.
        """
        n = len(lb)
        if n == 0:
            return []
        side = lb.side
        port = np.where(side == SIDE_DST, lb.dst_port, np.where(side == SIDE_SRC, lb.src_port, 0))
        combo = (
            (((lb.proto.astype(np.int64) * 3 + side) * 65536 + port) * 6 + (lb.basis + 1)) * 2
            + lb.ambiguous
        ) * 2 + lb.fragment
        # One or two VLAN tags are part of the group's text; more go one by one below.
        vw, odd_vlan = lb.vlan_words()
        odd: set[int] = set(lb.records)
        odd.update(odd_vlan)
        src_w = lb.src_addr.view(np.uint64).reshape(n, 2)
        dst_w = lb.dst_addr.view(np.uint64).reshape(n, 2)
        ports = (
            (lb.src_port.astype(np.int64) + 1)
            | ((lb.dst_port.astype(np.int64) + 1) << 17)
            | (lb.ip_version.astype(np.int64) << 34)
        ).astype(np.uint64)
        keys = (
            src_w[:, 0],
            src_w[:, 1],
            dst_w[:, 0],
            dst_w[:, 1],
            ports,
            combo.astype(np.uint64),
            vw,
        )
        # Tunnelled rows' text has the inner header too: they are grouped apart.
        tunnelled = np.zeros(0, np.int64) if lb.tunnels is None else lb.tunnels.rows()
        plain: npt.NDArray[np.int64] | slice = slice(None)
        if tunnelled.size:
            mask = np.ones(n, np.bool_)
            mask[tunnelled] = False
            plain = np.flatnonzero(mask)
        _, first, inverse = _group(*(k[plain] for k in keys))
        firsts = np.arange(n)[plain][first]
        key_bytes = np.stack([k[firsts] for k in keys], axis=1).view("V56").reshape(-1).tolist()
        cache = self._tails.get(lb.file)
        if cache is None:
            self._tails.clear()  # another file: its rows have other tails
            cache = self._tails[lb.file] = {}
        tails = list(map(cache.get, key_bytes))
        miss = [j for j, t in enumerate(tails) if t is None] if None in tails else []
        if miss:
            if len(cache) + len(miss) > TAIL_CACHE:
                cache.clear()
            for j, t in zip(miss, self._group_tails(lb, firsts[miss], combo), strict=True):
                tails[j] = cache[key_bytes[j]] = t
        out: list[bytes] = [b""] * (2 * n)
        fronts = self._fronts(lb)
        out[0::2] = fronts
        row_tail = np.empty(n, object)
        row_tail[plain] = np.array(tails, dtype=object)[inverse]
        if tunnelled.size:

            def tail(i: int, rec: PacketRecord) -> bytes:
                # The line after its lengths (the row has its front); the file name is
                # escaped in JSON and cannot hold this text.
                line = _dumps({"type": "packet", **rec.as_dict()}) + "\n"
                lengths = f',"caplen":{rec.caplen}'
                return line[line.index(lengths) + len(lengths) :].encode()

            cache_t = self._tunnel_tails.get(lb.file)
            if cache_t is None:
                self._tunnel_tails.clear()  # another file
                cache_t = self._tunnel_tails[lb.file] = {}
            row_tail[tunnelled] = tunnel_tails(lb, tunnelled, keys, cache_t, tail)
        out[1::2] = row_tail.tolist()
        recs = lb.records_at(sorted(odd))
        for i, rec in recs.items():
            out[2 * i] = b""
            out[2 * i + 1] = (_dumps({"type": "packet", **rec.as_dict()}) + "\n").encode()
        return out

    def _fronts(self, lb: LabelledBatch) -> list[bytes]:
        """Each row's text up to its group's text: frame, file, ts, len and caplen."""
        n = len(lb)
        head, mid = self._heads(lb)
        lengths: list[Part] = [b',"len":', lb.wirelen, b',"caplen":', lb.caplen]
        stamps = repr_parts(lb.ts_ns)
        if stamps is not None:
            sec, frac, width = stamps
            return decimal_rows([head, lb.frame, mid, sec, b".", (frac, width), *lengths], n)
        # Not whole microseconds (nanosecond captures): repr() writes the stamps.
        before = decimal_rows([head, lb.frame, mid], n)
        after = decimal_rows(lengths, n)
        return [
            b"".join((a, t.encode(), c))
            for a, t, c in zip(before, repr_texts(lb.ts_ns), after, strict=True)
        ]

    def _heads(self, lb: LabelledBatch) -> tuple[bytes, bytes]:
        """The text before a row's frame number, and between it and the timestamp."""
        got = self._head.get(lb.file)
        if got is None:
            got = self._head[lb.file] = (
                b'{"type":"packet","frame":',
                f',"file":{_dumps(lb.file)},"ts":'.encode(),
            )
        return got

    def _group_tails(
        self, lb: LabelledBatch, first: npt.NDArray[np.int64], combo: npt.NDArray[np.int64]
    ) -> list[bytes]:
        """Each group's text after the lengths, from its first row (UTF-8, with the
        line's newline)."""
        # Address texts need no JSON escaping (digits, hex letters, dots and colons).
        srcs = address_texts(lb.ip_version[first], lb.src_addr[first])
        dsts = address_texts(lb.ip_version[first], lb.dst_addr[first])
        suffixes = self._suffixes.get(lb.file)
        if suffixes is None or len(suffixes) > TAIL_CACHE:
            self._suffixes.clear()  # another file (or a scan: a label per port)
            suffixes = self._suffixes[lb.file] = {}
        out = []
        for c, a, b, sp, dp, i in zip(
            combo[first].tolist(),
            srcs,
            dsts,
            lb.src_port[first].tolist(),
            lb.dst_port[first].tolist(),
            first.tolist(),
            strict=True,
        ):
            suffix = suffixes.get(c)
            if suffix is None:
                suffix = suffixes[c] = self._suffix(lb, c)
            tags = lb.tags(i)
            line = suffix % (
                "null" if a is None else f'"{a}"',
                "null" if b is None else f'"{b}"',
                "null" if sp < 0 else sp,
                "null" if dp < 0 else dp,
                _dumps(list(tags)) if tags else "[]",
            )
            out.append(line.encode())
        return out

    def _suffix(self, lb: LabelledBatch, combo: int) -> str:
        """The template of a line's text after its lengths (with the newline), for the
        label ``combo`` codes: ``%s`` for the addresses, ports and VLAN tags."""
        frag = bool(combo & 1)
        amb = bool(combo & 2)
        c = combo >> 2
        basis = c % 6 - 1
        c //= 6
        port = c % 65536
        c //= 65536
        template = self._template(lb, lb.file, c // 3, c % 3, port, basis, amb, frag)
        lead = b"".join(self._heads(lb)).decode() + _TS_MARK + ',"len":,"caplen":'
        line = template % ("", _TS_MARK, "", "", *_SUFFIX_MARKS)
        assert line.startswith(lead)  # the record's fields come in JsonlWriter's order
        rest = line[len(lead) :].replace("%", "%%")
        for mark in _SUFFIX_MARKS:
            rest = rest.replace(mark, "%s")
        return rest + "\n"


#: Stand-ins for a line's values after its lengths while its template is made (a NUL
#: never appears in JSON text: it is escaped there).
_SUFFIX_MARKS = tuple(f"\x00{k}\x00" for k in range(5))


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
        raw = utf8_buffer(self.stream)
        for a in range(0, len(lb), _SLICE):
            part = lb if len(lb) <= _SLICE else lb.slice(a, a + _SLICE)
            data = b"".join(self._json.parts(part))
            if raw is not None:
                raw.write(data)  # UTF-8 already: no decoding and encoding again
            elif data:
                self.stream.write(data.decode())
