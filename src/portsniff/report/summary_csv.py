"""The summary as CSV: one table per file, columns named as the JSON keys.

Every table starts with ``#`` lines: IANA's caveat (in IANA's words) and the registry's
provenance (``pandas.read_csv(..., comment="#")`` skips them). Lists are ``;``-joined,
booleans ``true``/``false``, missing values empty. ``render`` writes the services table
alone; ``write_tables`` writes every table into a directory. Text cells that a
spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, tab or CR) get a
leading ``'``, because packet and registry strings are attacker-controlled.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from portsniff.errors import UsageError
from portsniff.flows import FLOW_FIELDS
from portsniff.report.summaries import ReportOptions
from portsniff.report.summary_view import sources_line
from portsniff.summary import TRANSPORT_KEYS, Summary

SERVICE_FIELDS: tuple[str, ...] = (
    "service",
    "proto",
    "port",
    "description",
    "status",
    "port_class",
    "flows",
    "packets",
    "bytes",
    "share",
    "first_seen",
    "last_seen",
    "flags",
    "unauthorized_use",
    "bpf",
    "display_filter",
)
FILE_FIELDS: tuple[str, ...] = (
    "scope",
    "file",
    "format",
    "compression",
    "linktypes",
    "packets",
    "bytes",
    "first_ts",
    "last_ts",
    "duration",
    "malformed",
    "truncated",
    "damage",
    "error",
    "problems",
)
DNSSD_FIELDS: tuple[str, ...] = ("type", "service", "description", "packets", "instance")
TRANSPORT_FIELDS: tuple[str, ...] = ("transport", "packets", "bytes")

#: The files ``write_tables`` writes, in order.
TABLE_FILES: tuple[str, ...] = (
    "capture.csv",
    "services.csv",
    "unknown_ports.csv",
    "flows.csv",
    "dnssd.csv",
    "transports.csv",
)

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One CSV cell (see module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA) else value
    return str(value)


def header_lines(summary: Summary) -> list[str]:
    """The leading ``#`` lines: caveat and provenance."""
    from portsniff.caveat import CAVEAT_SOURCE

    lines = [f"{CAVEAT_SOURCE}: {summary.caveat}", *sources_line(summary.registry)]
    return ["# " + " ".join(line.split()) for line in lines]


def write_table(
    summary: Summary, stream: TextIO, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    """``#`` lines, header, rows."""
    for line in header_lines(summary):
        stream.write(line + "\n")
    w = csv.writer(stream, lineterminator="\n")
    w.writerow(fields)
    for row in rows:
        w.writerow([cell(row.get(f)) for f in fields])


def capture_rows(summary: Summary) -> list[dict[str, Any]]:
    """One row per file, then the totals (``scope`` "total"; malformed and truncated
    packets are only counted in all)."""
    cap = summary.capture_dict()
    rows: list[dict[str, Any]] = []
    for f in summary.files:
        first, last = f.get("first_ts"), f.get("last_ts")
        rows.append(
            {
                **f,
                "scope": "file",
                "duration": round(last - first, 9)
                if first is not None and last is not None
                else None,
            }
        )
    rows.append(
        {
            **cap,
            "scope": "total",
            "file": None,
            "format": None,
            "compression": None,
            "damage": ";".join(cap["damaged"]) or None,
            "error": ";".join(cap["unreadable"]) or None,
            "problems": [f"{k}={v}" for k, v in cap["problems"].items()],
        }
    )
    return rows


def service_rows(summary: Summary, top: int | None) -> list[dict[str, Any]]:
    """The JSON ``services`` list (without building the rest of the document)."""
    return [r.as_dict(summary.bytes) for r in summary.service_rows()[:top]]


def unknown_rows(summary: Summary, top: int | None) -> list[dict[str, Any]]:
    """The JSON ``unknown_ports`` list."""
    return [r.as_dict(summary.bytes) for r in summary.unknown_rows()[:top]]


def dnssd_rows(summary: Summary) -> list[dict[str, Any]]:
    """One row per (type, instance); a type without instances has one row, instance
    empty."""
    rows: list[dict[str, Any]] = []
    for d in sorted(summary.dnssd.values(), key=lambda d: d.type):
        base = d.as_dict()
        for inst in base.pop("instances") or [None]:
            rows.append({**base, "instance": inst})
    return rows


def transport_rows(summary: Summary) -> list[dict[str, Any]]:
    return [
        {
            "transport": k,
            "packets": summary.transports.get(k, [0, 0])[0],
            "bytes": summary.transports.get(k, [0, 0])[1],
        }
        for k in TRANSPORT_KEYS
    ]


def render(summary: Summary, stream: TextIO, options: ReportOptions) -> None:
    """The services table (``--top`` limits it; all services otherwise)."""
    write_table(summary, stream, SERVICE_FIELDS, service_rows(summary, options.top))


def write_tables(summary: Summary, directory: Path, options: ReportOptions) -> list[Path]:
    """Write every table as ``directory/<table>.csv`` (creating the directory); returns
    the paths. ``--top`` limits services, unknown ports and flows."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{directory}: cannot create the output directory ({e.strerror})") from e
    top = options.top
    tables: list[tuple[str, Sequence[str], list[dict[str, Any]]]] = [
        ("capture.csv", FILE_FIELDS, capture_rows(summary)),
        ("services.csv", SERVICE_FIELDS, service_rows(summary, top)),
        ("unknown_ports.csv", SERVICE_FIELDS, unknown_rows(summary, top)),
        ("flows.csv", FLOW_FIELDS, [f.as_dict() for f in summary.top_flows(top)]),
        ("dnssd.csv", DNSSD_FIELDS, dnssd_rows(summary)),
        ("transports.csv", TRANSPORT_FIELDS, transport_rows(summary)),
    ]
    paths = []
    for name, fields, rows in tables:
        path = directory / name
        try:
            with path.open("w", encoding="utf-8", newline="") as fh:
                write_table(summary, fh, fields, rows)
        except OSError as e:
            raise UsageError(f"{path}: cannot write ({e.strerror})") from e
        paths.append(path)
    return paths
