"""Annotate's JSON Lines format: a meta line, one line per packet, an end line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from portsniff.annotate.records import PacketRecord
from portsniff.report.packets import StreamEnd, StreamMeta


class JsonlWriter:
    """``{"type": "meta", ...}``, ``{"type": "packet", ...}`` per packet, ``{"type": "end"}``."""

    def __init__(self, stream: TextIO, fields: Sequence[str] | None = None, color: bool = False):
        self.stream = stream
        self.fields = tuple(fields) if fields else None

    def _line(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def begin(self, meta: StreamMeta) -> None:
        self._line(
            {
                "type": "meta",
                "caveat": meta.caveat,
                "registry": {"sources": meta.registry},
                "files": meta.files,
                "fields": list(self.fields or meta.fields),
            }
        )

    def write(self, record: PacketRecord) -> None:
        values = record.as_dict()
        if self.fields:
            values = {f: values[f] for f in self.fields}
        self._line({"type": "packet", **values})

    def end(self, end: StreamEnd) -> None:
        self._line({"type": "end", **end.counts, "files": end.files, "problems": end.problems})
        self.stream.flush()
