"""IANA's CSV format of the port registry, and the helpers every registry parser shares.

Every parser normalises each field the same way (runs of whitespace collapsed to one
space, ends stripped), so that the CSV and the XML of one registry version give equal
records even where IANA wraps a long description over several lines in one of them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence

from portsniff.errors import RegistryError
from portsniff.registry.record import (
    IANA_HEADER,
    TRANSPORTS,
    ParsedRegistry,
    RegistrySource,
    ServiceRecord,
    parse_port_range,
)

KIND = "iana-csv"

_WS = re.compile(r"\s+")
_DATE = re.compile(r"\d{4}-\d{2}(?:-\d{2})?")


def normalise(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def decode_utf8(data: bytes, path: str) -> str:
    """UTF-8 text of ``data`` (a BOM is dropped); a RegistryError naming the file otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def check_record(record: ServiceRecord, path: str, where: str) -> ServiceRecord:
    """Raise a RegistryError naming ``path`` and ``where`` if a record cannot be used."""
    try:
        parse_port_range(record.port_number)
    except ValueError:
        raise RegistryError(f"{path}: {where}: bad port number {record.port_number!r}") from None
    if record.transport_protocol and record.transport_protocol not in TRANSPORTS:
        raise RegistryError(
            f"{path}: {where}: unknown transport protocol {record.transport_protocol!r}"
        )
    for name in ("registration_date", "modification_date"):
        value: str = getattr(record, name)
        if value and not _DATE.fullmatch(value):
            raise RegistryError(f"{path}: {where}: bad {name.replace('_', ' ')} {value!r}")
    if not (record.service_name or record.port_number):
        raise RegistryError(f"{path}: {where}: record has neither a service name nor a port")
    return record


def newest_date(records: Iterable[ServiceRecord]) -> str | None:
    """The newest registration or modification date among ``records`` (None if none)."""
    newest = ""
    for r in records:
        # ISO dates (and "2004-11" month dates) sort correctly as strings.
        newest = max(newest, r.registration_date, r.modification_date)
    return newest or None


def make_parsed(
    kind: str,
    path: str,
    data: bytes,
    records: Sequence[ServiceRecord],
    updated: str | None,
    caveat: str | None = None,
) -> ParsedRegistry:
    """Wrap parsed records with their RegistrySource; an empty result is an error."""
    if not records:
        raise RegistryError(f"{path}: no registry records found ({kind})")
    source = RegistrySource(
        kind=kind,
        path=path,
        updated=updated,
        sha256=hashlib.sha256(data).hexdigest(),
        records=len(records),
    )
    return ParsedRegistry(records=tuple(records), source=source, caveat=caveat)


def parse_iana_csv(data: bytes, path: str) -> ParsedRegistry:
    """Parse IANA's ``service-names-port-numbers.csv`` (columns found by header name).

    Quoted fields may span lines; records end in CRLF (LF is accepted too). A file that
    stops inside a quoted field or in the middle of a record is rejected as truncated.
    """
    text = decode_utf8(data, path)
    if not text.strip():
        raise RegistryError(f"{path}: empty file")
    if not text.endswith("\n"):
        # IANA ends every record with CRLF; a last record without it was cut short.
        last = text.count("\n") + 1
        raise RegistryError(f"{path}: line {last}: last record has no line end; truncated")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise RegistryError(f"{path}: line 1: malformed CSV header ({exc})") from None
    names = [h.strip() for h in header]
    positions: list[int] = []
    for wanted in IANA_HEADER:
        if wanted not in names:
            raise RegistryError(f"{path}: line 1: CSV header has no {wanted!r} column")
        positions.append(names.index(wanted))
    width = len(names)
    records: list[ServiceRecord] = []
    line = reader.line_num + 1
    try:
        for row in reader:
            where = f"line {line}"
            if not row:  # a blank line between records
                line = reader.line_num + 1
                continue
            if len(row) != width:
                raise RegistryError(
                    f"{path}: {where}: record has {len(row)} fields, the header {width}"
                )
            record = ServiceRecord(*(normalise(row[i]) for i in positions))
            records.append(check_record(record, path, where))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise RegistryError(f"{path}: line {line}: malformed CSV ({exc}); truncated?") from None
    return make_parsed(KIND, path, data, records, newest_date(records))


def write_iana_csv(records: Iterable[ServiceRecord]) -> bytes:
    """Records as IANA writes its CSV: the header, CRLF after each record, LF inside fields."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(IANA_HEADER)
    for r in records:
        writer.writerow(r.as_dict().values())
    return out.getvalue().encode("utf-8")
