"""Annotate's CSV format: caveat and provenance as leading ``#`` lines, then a header row."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import TextIO

from portsniff.annotate.records import PACKET_FIELDS, PacketRecord
from portsniff.report.packet_text import _plain
from portsniff.report.packets import StreamEnd, StreamMeta


class CsvWriter:
    """One row per packet; lists are ``;``-joined, nested objects ``key=value`` pairs."""

    def __init__(self, stream: TextIO, fields: Sequence[str] | None = None, color: bool = False):
        self.stream = stream
        self.fields = tuple(fields) if fields else PACKET_FIELDS
        self._csv = csv.writer(stream, lineterminator="\n")

    def begin(self, meta: StreamMeta) -> None:
        self.stream.write(f"# IANA: {meta.caveat}\n")
        for src in meta.registry:
            self.stream.write(
                f"# registry: {src['kind']} {src['path']} updated={src['updated']} "
                f"records={src['records']} sha256={src['sha256']}\n"
            )
        self._csv.writerow(self.fields)

    def write(self, record: PacketRecord) -> None:
        values = record.as_dict()
        self._csv.writerow([_plain(values[f]) for f in self.fields])

    def end(self, end: StreamEnd) -> None:
        self.stream.flush()
