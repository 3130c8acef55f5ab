"""Packet-stream writers (annotate's and live's output), registered by format name.

Every writer gets the same three calls: ``begin(meta)``, ``write(record)`` per packet and
``end(end)``; ``meta`` carries IANA's caveat and the registry's provenance, which every
format prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from portsniff.annotate.records import PACKET_FIELDS, PacketRecord
from portsniff.errors import UsageError


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """What a packet stream starts with."""

    caveat: str
    registry: list[dict[str, Any]]
    files: list[str]
    fields: tuple[str, ...] = PACKET_FIELDS


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What a packet stream ends with: counts and problems."""

    counts: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class PacketWriter(Protocol):
    def begin(self, meta: StreamMeta) -> None: ...

    def write(self, record: PacketRecord) -> None: ...

    def end(self, end: StreamEnd) -> None: ...


WriterFactory = Callable[[TextIO, Sequence[str] | None, bool], PacketWriter]

_FORMATS: dict[str, str] = {
    "text": "portsniff.report.packet_text:TextWriter",
    "jsonl": "portsniff.report.packet_jsonl:JsonlWriter",
    "csv": "portsniff.report.packet_csv:CsvWriter",
}

PACKET_FORMATS: tuple[str, ...] = tuple(_FORMATS)


def parse_fields(spec: str | None) -> tuple[str, ...] | None:
    """``"frame,service,ts"`` -> those names, checked against the packet vocabulary."""
    if spec is None:
        return None
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in PACKET_FIELDS]
    if unknown or not names:
        raise UsageError(
            f"unknown field(s) {', '.join(unknown) or '(none given)'}; "
            f"fields are: {', '.join(PACKET_FIELDS)}"
        )
    return names


def packet_writer(
    name: str, stream: TextIO, fields: Sequence[str] | None = None, color: bool = False
) -> PacketWriter:
    """The writer for format ``name``."""
    import importlib

    try:
        target = _FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r} (choose from {', '.join(_FORMATS)})") from None
    module_name, _, cls = target.partition(":")
    factory: WriterFactory = getattr(importlib.import_module(module_name), cls)
    return factory(stream, fields, color)
