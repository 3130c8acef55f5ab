"""What the human summary formats (text, markdown, html) show, as plain tables of strings.

One view feeds all three renderers, so they never say different things: the same
sections, rows, numbering (S1, U1, C1 link a row to its drill-down filters) and
formatting of bytes, times and shares. Strings that come from packets or the registry
are passed through :func:`clean` (control characters made visible); each renderer adds
its own escaping on top.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portsniff.flows import FlowRecord
from portsniff.report.summaries import DEFAULT_TOP, ReportOptions
from portsniff.summary import TRANSPORT_KEYS, ServiceRow, Summary

#: tcpdump.org LINKTYPE_ names of the link types the decoders understand.
LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL",
    1: "ETHERNET",
    9: "PPP",
    12: "RAW",
    14: "RAW",
    50: "PPP_HDLC",
    51: "PPP_ETHER",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    108: "LOOP",
    113: "LINUX_SLL",
    127: "IEEE802_11_RADIOTAP",
    192: "PPI",
    228: "IPV4",
    229: "IPV6",
    239: "NFLOG",
    258: "PKTAP",
    276: "LINUX_SLL2",
}

PORT_CLASSES = ("system", "user", "dynamic")
MAX_INSTANCES_SHOWN = 10  # DNS-SD instances listed per type in text/markdown
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE = re.compile(r"[\t\n\r]+")


def clean(value: object) -> str:
    """``value`` as one printable line: None is "", whitespace runs are one space, other
    control characters become ``\\xNN`` (so packet data cannot drive a terminal)."""
    if value is None:
        return ""
    text = _SPACE.sub(" ", str(value))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``; below 1 KiB the exact count."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def count(n: int) -> str:
    """``1234567`` -> ``1,234,567``."""
    return f"{n:,}"


def percent(part: int, whole: int) -> str:
    """A share as ``12.3%`` (``<0.1%`` for a sliver, ``-`` when there is no whole)."""
    if whole <= 0:
        return "-"
    if part and part * 1000 < whole:
        return "<0.1%"
    return f"{100 * part / whole:.1f}%"


def duration(seconds: float | None) -> str:
    """``0.25`` -> ``0.250 s``; ``125`` -> ``2 min 5 s``; ``7300`` -> ``2 h 1 min``."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.3f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def utc(ts: float | None, date: bool = True) -> str:
    """``2024-05-01 12:00:00.123`` (UTC, milliseconds); without the date when ``date`` is
    false."""
    if ts is None or not math.isfinite(ts):
        return "-"
    whole = math.floor(ts)
    millis = round((ts - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    try:
        t = time.gmtime(whole)
    except (OverflowError, OSError, ValueError):
        return f"{ts:.3f}"
    fmt = "%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S"
    return time.strftime(fmt, t) + f".{millis:03d}"


class Clock:
    """Formats times in tables as briefly as the capture allows: ``12:00:01.000`` when it
    is all on one UTC day, ``05-01 12:00:01.000`` within one year, else the full date
    (``note`` says which day or days)."""

    def __init__(self, first: float | None, last: float | None) -> None:
        self.day: str | None = None
        self.days: tuple[str, str] | None = None
        if first is not None and last is not None:
            a, b = utc(first)[:10], utc(last)[:10]
            if a[:1].isdigit() and b[:1].isdigit():
                if a == b:
                    self.day = a
                elif a[:4] == b[:4]:
                    self.days = (a, b)

    def __call__(self, ts: float | None) -> str:
        text = utc(ts, date=self.day is None)
        return text[5:] if self.days and text[:1].isdigit() and len(text) > 19 else text

    @property
    def note(self) -> str:
        """How times in the tables read."""
        if self.day:
            return f"Times are UTC on {self.day}."
        if self.days:
            return f"Times are UTC, month-day, {self.days[0]} to {self.days[1]}."
        return "Times are UTC."


def linktype_name(linktype: int | str) -> str:
    """``1`` -> ``ETHERNET (1)``."""
    try:
        n = int(linktype)
    except ValueError:
        return clean(linktype)
    name = LINKTYPE_NAMES.get(n)
    return f"{name} ({n})" if name else f"link type {n}"


def endpoint(ip: str | None, port: int | None) -> str:
    """``10.0.0.1:443``, ``[2001:db8::1]:443`` or the address alone."""
    if ip is None:
        return "-"
    if port is None:
        return clean(ip)
    return f"[{clean(ip)}]:{port}" if ":" in ip else f"{clean(ip)}:{port}"


def service_label(row: ServiceRow) -> str:
    """``https`` or, for unassigned/reserved ports, ``(unassigned)``."""
    return clean(row.service) if row.service else f"({row.status or 'unlabelled'})"


def flow_service(f: FlowRecord) -> str:
    """``https``, ``(unassigned)`` or ``-`` (no ports); ``https/8443``-style when the
    service port is not the responder's (the proto and ports are in other columns)."""
    if f.service_port is None:
        return "-"
    name = clean(f.service) if f.service else f"({f.status or 'unlabelled'})"
    return name if f.service_port == f.resp_port else f"{name} on {f.service_port}"


def flow_notes(f: FlowRecord) -> str:
    """What else a user should know about a flow: tunnel, VLANs, ambiguous side."""
    notes = []
    if f.tunnel:
        notes.append(f"in {clean(f.tunnel)}")
    if f.vlan:
        notes.append("vlan " + ".".join(str(v) for v in f.vlan))
    if f.ambiguous:
        notes.append("ambiguous side")
    return ", ".join(notes)


FLAG_TEXT = {
    "iana-unauthorized-use-note": "IANA notes unauthorized use",
    "ambiguous-side": "service side ambiguous",
}


def flags_text(flags: Iterable[str]) -> str:
    """ServiceRow flags in words (the JSON/CSV keep the flag names)."""
    return ", ".join(FLAG_TEXT.get(f, f) for f in flags)


# -- tables ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: its text, a sort key (for sortable HTML tables) and whether it is code."""

    text: str
    sort: float | str | None = None
    code: bool = False

    @property
    def key(self) -> float | str:
        return self.text if self.sort is None else self.sort


def num(n: int, text: str | None = None) -> Cell:
    """A numeric cell sorting by ``n``."""
    return Cell(count(n) if text is None else text, n)


def when(ts: float | None, clock: Clock) -> Cell:
    return Cell(clock(ts), ts if ts is not None else -1.0)


@dataclass(frozen=True, slots=True)
class Column:
    """A column heading; numeric columns are right-aligned."""

    name: str
    numeric: bool = False


@dataclass(slots=True)
class Table:
    """A titled table of cells, with a note (e.g. how many rows were left out) and what
    to say when it has no rows."""

    key: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str | None = None
    empty: str = "none"
    wide: set[str] = field(default_factory=set)  # columns worth wrapping (descriptions)


@dataclass(frozen=True, slots=True)
class DrillRow:
    """A row's id, what it is, and its two filters."""

    ref: str
    what: str
    bpf: str
    display_filter: str


@dataclass(slots=True)
class View:
    """Everything the human formats show, in section order."""

    caveat: str
    caveat_source: str
    overview: list[tuple[str, str]]
    files: Table
    registry: Table
    services: Table
    unknown: Table
    flows: Table
    dnssd: Table
    transports: Table
    drill: list[DrillRow]
    top: int
    clock: Clock

    def tables(self) -> list[Table]:
        return [
            self.files,
            self.registry,
            self.services,
            self.unknown,
            self.flows,
            self.dnssd,
            self.transports,
        ]


def _note(shown: int, total: int, what: str) -> str | None:
    if total > shown:
        return f"top {shown} of {total} {what} by bytes (--top N shows more)"
    return None


def _status_of(report: Mapping[str, Any]) -> str:
    """``ok``, ``damaged`` or ``unreadable``; the reasons are listed in the overview."""
    if report.get("error"):
        return "unreadable"
    if report.get("damage"):
        return "damaged"
    return "ok"


def file_problems(summary: Summary) -> list[tuple[str, str]]:
    """(file, why) for each file that could not be read, or only up to its damage."""
    out = []
    for f in summary.files:
        for key, what in (("error", "unreadable: "), ("damage", "")):
            message = str(f.get(key) or "")
            if message:
                why = what + message.removeprefix(f"{f.get('file')}: ")
                out.append((clean(f.get("file")), clean(why)))
    return out


def file_table(summary: Summary, clock: Clock) -> Table:
    t = Table(
        "files",
        "Files",
        [
            Column("File"),
            Column("Format"),
            Column("Link types"),
            Column("Packets", True),
            Column("Bytes", True),
            Column("First packet"),
            Column("Last packet"),
            Column("Status"),
        ],
        empty="no capture files",
        wide={"File"},
    )
    for f in summary.files:
        fmt = clean(f.get("format") or "-")
        if f.get("compression"):
            fmt += f" ({clean(f['compression'])})"
        links = ", ".join(linktype_name(k) for k in (f.get("linktypes") or {}))
        status = _status_of(f)
        packets = int(f.get("packets") or 0)
        nbytes = int(f.get("bytes") or 0)
        t.rows.append(
            [
                Cell(clean(f.get("file"))),
                Cell(fmt),
                Cell(links or "-"),
                num(packets),
                num(nbytes, human_bytes(nbytes)),
                when(f.get("first_ts"), clock),
                when(f.get("last_ts"), clock),
                Cell(status),
            ]
        )
    return t


def overview(summary: Summary) -> list[tuple[str, str]]:
    """The capture section's key/value lines."""
    cap = summary.capture_dict()
    files = summary.files
    readable = [f for f in files if not f.get("error")]
    items = [
        (
            "Files",
            f"{len(files)} ({len(files) - len(readable)} unreadable, "
            f"{len(cap['damaged'])} damaged)",
        ),
        (
            "Link types",
            ", ".join(
                f"{linktype_name(k)}: {count(v)} packets"
                for k, v in sorted(summary.linktypes.items())
            )
            or "-",
        ),
        ("First packet", f"{utc(summary.first_ts)} UTC" if summary.first_ts is not None else "-"),
        ("Last packet", f"{utc(summary.last_ts)} UTC" if summary.last_ts is not None else "-"),
        ("Duration", duration(cap["duration"])),
        ("Packets", count(summary.packets)),
        ("Bytes", f"{count(summary.bytes)} ({human_bytes(summary.bytes)})"),
        ("Malformed packets", count(summary.malformed)),
        ("Truncated packets", f"{count(summary.truncated)} (captured shorter than on the wire)"),
    ]
    items.extend((f"Problem: {name}", why) for name, why in file_problems(summary))
    notes = sorted({clean(p) for f in files for p in (f.get("problems") or [])})
    if notes:
        items.append(("Reader notes", "; ".join(notes)))
    if summary.problems:
        items.append(
            (
                "Problems",
                "; ".join(f"{clean(k)}: {count(v)}" for k, v in sorted(summary.problems.items())),
            )
        )
    return items


def registry_table(summary: Summary) -> Table:
    t = Table(
        "registry",
        "Registry",
        [
            Column("Source"),
            Column("Path or URL"),
            Column("Updated"),
            Column("Records", True),
            Column("SHA-256"),
        ],
        empty="no registry source recorded",
        wide={"Path or URL", "SHA-256"},
    )
    for i, s in enumerate(summary.registry):
        kind = clean(s.get("kind"))
        origin = s.get("origin")
        if origin and origin != "file":
            kind += f" ({clean(origin)})"
        if i == 0 and len(summary.registry) > 1:
            kind += ", preferred"
        records = s.get("records")
        t.rows.append(
            [
                Cell(kind),
                Cell(clean(s.get("path"))),
                Cell(clean(s.get("updated")) or "not stated"),
                num(int(records)) if isinstance(records, int) else Cell("-"),
                Cell(clean(s.get("sha256")), code=True),
            ]
        )
    return t


def _row_filters(row: ServiceRow) -> list[Cell]:
    bpf, display = row.filters()
    return [Cell(bpf, code=True), Cell(display, code=True)]


def services_table(summary: Summary, top: int, clock: Clock, filters: bool) -> Table:
    rows = summary.service_rows()
    t = Table(
        "services",
        "Services",
        [
            Column("#"),
            Column("Service"),
            Column("Port"),
            Column("Description"),
            Column("Class"),
            Column("Flows", True),
            Column("Packets", True),
            Column("Bytes", True),
            Column("Share", True),
            Column("First seen"),
            Column("Last seen"),
            Column("Flags"),
        ],
        note=_note(min(top, len(rows)), len(rows), "services"),
        empty="no traffic on assigned ports",
        wide={"Description", "Flags"},
    )
    if filters:
        t.columns += [Column("BPF"), Column("Display filter")]
    for i, r in enumerate(rows[:top], 1):
        cells = [
            Cell(f"S{i}", i),
            Cell(service_label(r)),
            Cell(f"{r.proto}/{r.port}", r.port),
            Cell(clean(r.description)),
            Cell(clean(r.port_class)),
            num(r.flows),
            num(r.packets),
            num(r.bytes, human_bytes(r.bytes)),
            Cell(percent(r.bytes, summary.bytes), r.bytes),
            when(r.first_seen, clock),
            when(r.last_seen, clock),
            Cell(flags_text(r.flags)),
        ]
        t.rows.append(cells + (_row_filters(r) if filters else []))
    return t


def unknown_table(summary: Summary, top: int, clock: Clock, filters: bool) -> Table:
    rows = summary.unknown_rows()
    t = Table(
        "unknown_ports",
        "Unknown ports",
        [
            Column("#"),
            Column("Port"),
            Column("Status"),
            Column("Class"),
            Column("Flows", True),
            Column("Packets", True),
            Column("Bytes", True),
            Column("Share", True),
            Column("First seen"),
            Column("Last seen"),
            Column("Flags"),
        ],
        note=_note(min(top, len(rows)), len(rows), "ports"),
        empty="no traffic on unassigned, reserved or dynamic ports",
        wide={"Flags"},
    )
    if filters:
        t.columns += [Column("BPF"), Column("Display filter")]
    for i, r in enumerate(rows[:top], 1):
        cells = [
            Cell(f"U{i}", i),
            Cell(f"{r.proto}/{r.port}", r.port),
            Cell(clean(r.status)),
            Cell(clean(r.port_class)),
            num(r.flows),
            num(r.packets),
            num(r.bytes, human_bytes(r.bytes)),
            Cell(percent(r.bytes, summary.bytes), r.bytes),
            when(r.first_seen, clock),
            when(r.last_seen, clock),
            Cell(flags_text([f for f in r.flags if f != r.status])),
        ]
        t.rows.append(cells + (_row_filters(r) if filters else []))
    return t


def flows_table(summary: Summary, top: int, clock: Clock, filters: bool) -> Table:
    flows = summary.top_flows(top)
    t = Table(
        "flows",
        "Conversations",
        [
            Column("#"),
            Column("Proto"),
            Column("Originator"),
            Column("Responder"),
            Column("Service"),
            Column("Packets", True),
            Column("Bytes", True),
            Column("Start"),
            Column("Duration", True),
            Column("State"),
            Column("Notes"),
        ],
        note=_note(len(flows), summary.flow_total, "conversations"),
        empty="no conversations (no IP packets)",
        wide={"Originator", "Responder", "Notes"},
    )
    if filters:
        t.columns += [Column("BPF"), Column("Display filter")]
    for i, f in enumerate(flows, 1):
        nbytes = f.orig_bytes + f.resp_bytes
        cells = [
            Cell(f"C{i}", i),
            Cell(clean(f.proto)),
            Cell(endpoint(f.orig_ip, f.orig_port)),
            Cell(endpoint(f.resp_ip, f.resp_port)),
            Cell(flow_service(f)),
            num(f.orig_pkts + f.resp_pkts, f"{count(f.orig_pkts)} / {count(f.resp_pkts)}"),
            num(nbytes, human_bytes(nbytes)),
            when(f.ts, clock),
            Cell(duration(f.duration), f.duration),
            Cell(clean(f.conn_state) or "-"),
            Cell(flow_notes(f)),
        ]
        if filters:
            cells += [Cell(f.bpf, code=True), Cell(f.display_filter, code=True)]
        t.rows.append(cells)
    return t


def dnssd_table(summary: Summary, max_instances: int | None) -> Table:
    t = Table(
        "dnssd",
        "DNS-SD service types",
        [
            Column("Type"),
            Column("Registry name"),
            Column("Description"),
            Column("Packets", True),
            Column("Instances"),
        ],
        empty="no DNS-SD (mDNS/DNS service discovery) names seen",
        wide={"Description", "Instances"},
    )
    for d in sorted(summary.dnssd.values(), key=lambda d: d.type.lower()):
        inst = sorted(d.instances)
        shown = inst if max_instances is None else inst[:max_instances]
        lines = [clean(x) for x in shown]
        if len(inst) > len(shown):
            lines.append(f"... and {len(inst) - len(shown)} more")
        t.rows.append(
            [
                Cell(clean(d.type)),
                Cell(clean(d.service) or "(not registered)"),
                Cell(clean(d.description)),
                num(d.packets),
                Cell("\n".join(lines), len(inst)),
            ]
        )
    return t


def transports_table(summary: Summary) -> Table:
    t = Table(
        "transports",
        "Transport mix",
        [
            Column("Transport"),
            Column("Packets", True),
            Column("Share of packets", True),
            Column("Bytes", True),
            Column("Share of bytes", True),
        ],
        empty="no packets",
    )
    names = {"other_ip": "other IP", "non_ip": "non-IP"}
    for key in TRANSPORT_KEYS:
        p, b = summary.transports.get(key, [0, 0])
        if not p:
            continue
        t.rows.append(
            [
                Cell(names.get(key, key)),
                num(p),
                Cell(percent(p, summary.packets), p),
                num(b, human_bytes(b)),
                Cell(percent(b, summary.bytes), b),
            ]
        )
    return t


def drill_rows(
    view_services: Iterable[tuple[str, ServiceRow]], flows: Iterable[tuple[str, FlowRecord]]
) -> list[DrillRow]:
    out = []
    for ref, r in view_services:
        bpf, display = r.filters()
        out.append(DrillRow(ref, f"{service_label(r)} {r.proto}/{r.port}", bpf, display))
    for ref, f in flows:
        what = f"{f.proto} {endpoint(f.orig_ip, f.orig_port)} > {endpoint(f.resp_ip, f.resp_port)}"
        out.append(DrillRow(ref, what, f.bpf, f.display_filter))
    return out


def build(
    summary: Summary,
    options: ReportOptions,
    *,
    filters: bool = False,
    max_instances: int | None = MAX_INSTANCES_SHOWN,
) -> View:
    """The view of ``summary``; ``filters`` puts BPF/display filter columns in the
    ranked tables (the drill-down list is built either way)."""
    from portsniff.caveat import CAVEAT_SOURCE

    top = options.top or DEFAULT_TOP
    clock = Clock(summary.first_ts, summary.last_ts)
    services = summary.service_rows()[:top]
    unknown = summary.unknown_rows()[:top]
    flows = summary.top_flows(top)
    drill = drill_rows(
        [
            *((f"S{i}", r) for i, r in enumerate(services, 1)),
            *((f"U{i}", r) for i, r in enumerate(unknown, 1)),
        ],
        ((f"C{i}", f) for i, f in enumerate(flows, 1)),
    )
    return View(
        caveat=summary.caveat,
        caveat_source=CAVEAT_SOURCE,
        overview=overview(summary),
        files=file_table(summary, clock),
        registry=registry_table(summary),
        services=services_table(summary, top, clock, filters),
        unknown=unknown_table(summary, top, clock, filters),
        flows=flows_table(summary, top, clock, filters),
        dnssd=dnssd_table(summary, max_instances),
        transports=transports_table(summary),
        drill=drill,
        top=top,
        clock=clock,
    )


def times_note(view: View) -> str:
    """How times in the tables read."""
    return view.clock.note


def port_class_bytes(summary: Summary) -> dict[str, int]:
    """Bytes on ports of each class (system, user, dynamic), every service row counted."""
    out = dict.fromkeys(PORT_CLASSES, 0)
    for r in summary.services.values():
        if r.port_class in out:
            out[r.port_class] += r.bytes
    return out


def sources_line(sources: Sequence[Mapping[str, Any]]) -> list[str]:
    """One provenance line per registry source (CSV ``#`` lines use these)."""
    return [
        f"registry: {clean(s.get('kind'))} {clean(s.get('path'))} "
        f"updated={clean(s.get('updated')) or '-'} records={s.get('records')} "
        f"sha256={clean(s.get('sha256'))}"
        for s in sources
    ]
