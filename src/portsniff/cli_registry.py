"""``portsniff registry``: look up, describe, update, import and compare the registry.

Every output, text or JSON, carries IANA's caveat and says which registry files it used.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from portsniff.caveat import CAVEAT, CAVEAT_SOURCE
from portsniff.errors import UsageError
from portsniff.registry.record import FIELDS, TRANSPORTS, ServiceRecord, port_class

if TYPE_CHECKING:
    from portsniff.registry.index import RegistryIndex
    from portsniff.registry.record import PortLabel

#: Lookups of port ranges stop here, so that a typo cannot ask for millions of rows.
MAX_RANGE_PORTS = 65536

# After the port, ``/tcp`` or Wireshark's ``/tcp/udp``; whatever follows a slash is
# read as transports (no service name starts with digits and a slash).
_PORT_QUERY = re.compile(r"(?P<lo>\d+)(?:-(?P<hi>\d+))?(?:/(?P<transport>.*))?", re.ASCII)
_TRANSPORT_FIRST = re.compile(r"(?P<transport>[A-Za-z]+)/(?P<lo>\d+)(?:-(?P<hi>\d+))?", re.ASCII)
# Service names: IANA's rules plus the historic characters (``EtherNet/IP-2``,
# ``z39.50``, ``sql*net``) and DNS-SD service types (``_airplay._tcp``).
_NAME_QUERY = re.compile(r"[A-Za-z0-9_.+*/:-]{1,80}")


@dataclass(frozen=True, slots=True)
class Query:
    """One parsed lookup query: a port (range) on some transports, or a service name."""

    text: str
    name: str | None = None
    lo: int = 0
    hi: int = 0
    transports: tuple[str, ...] = ()


def parse_query(text: str) -> Query:
    """``47808/udp``, ``udp/47808``, ``47808``, ``6000-6010/tcp``, ``bacnet``,
    ``_airplay._tcp``. Raises UsageError for anything else."""
    raw = text.strip()
    m = _PORT_QUERY.fullmatch(raw) or _TRANSPORT_FIRST.fullmatch(raw)
    if m is None:
        if _NAME_QUERY.fullmatch(raw) and not raw.isdigit():
            return Query(text=text, name=raw)
        raise UsageError(
            f"bad query {text!r}: expected a port (47808/udp, 47808), a port range "
            "(6000-6010/tcp) or a service name (bacnet, _airplay._tcp)"
        )
    lo = int(m["lo"])
    hi = int(m["hi"]) if m["hi"] is not None else lo
    for port in (lo, hi):
        if port > 65535:
            raise UsageError(f"bad query {text!r}: port {port} is out of range 0-65535")
    if hi < lo:
        raise UsageError(f"bad query {text!r}: the range {lo}-{hi} runs backwards")
    if hi - lo + 1 > MAX_RANGE_PORTS:
        raise UsageError(f"bad query {text!r}: ranges are limited to {MAX_RANGE_PORTS} ports")
    spec = m["transport"]
    if spec is None:
        return Query(text=text, lo=lo, hi=hi, transports=TRANSPORTS)
    transports: list[str] = []
    for transport in spec.split("/"):
        if transport.lower() not in TRANSPORTS:
            raise UsageError(
                f"bad query {text!r}: unknown transport {transport!r} "
                f"(one of {', '.join(TRANSPORTS)})"
            )
        if transport.lower() not in transports:
            transports.append(transport.lower())
    return Query(text=text, lo=lo, hi=hi, transports=tuple(transports))


def _empty_fields() -> dict[str, str]:
    return dict.fromkeys(FIELDS, "")


def _record_status(record: ServiceRecord) -> str:
    described = record.description.strip().lower()
    if not record.service_name and described.startswith("reserved"):
        return "reserved"
    if not record.service_name and not described.startswith("reserved"):
        return "unassigned"
    return "assigned"


def _port_result(
    index: RegistryIndex, query: Query, label: PortLabel, record: ServiceRecord | None
) -> dict[str, Any]:
    """One result row for a (transport, port) lookup and one record (None: no record)."""
    from portsniff.registry.index import alias_target

    result: dict[str, Any] = record.as_dict() if record else _empty_fields()
    ranges = index.unauthorized_ports(record) if record else ()
    note = (record.unauthorized_use_reported or None) if record else None
    if record is None and label.unauthorized_use:
        # An unassigned port that IANA's note on its Unassigned range names (796/tcp).
        note = label.unauthorized_use
        ranges = tuple(
            span
            for r in label.records
            if r.unauthorized_use_reported == note
            for span in index.unauthorized_ports(r)
        ) or ((label.port, label.port),)
    here = any(lo <= label.port <= hi for lo, hi in ranges)
    aliases = [a for a in label.aliases if not record or a != record.service_name]
    result.update(
        query=query.text,
        alias_of=alias_target(record) if record else None,
        transport=label.transport,
        port=label.port,
        ports=[label.port, label.port],
        status=label.status,
        port_class=label.port_class,
        aliases=aliases,
        unauthorized_ports=[[lo, hi] for lo, hi in ranges],
        unauthorized_use=note,
        unauthorized_use_here=bool(here),
        source=label.source,
    )
    return result


def _lookup_port(
    index: RegistryIndex, query: Query, transport: str, port: int
) -> list[dict[str, Any]]:
    label = index.lookup(transport, port)
    alias_names = set(label.aliases)
    primaries = [
        r
        for r in label.records
        if not (r.service_name and r.service_name in alias_names) and not _plain_unassigned(r)
    ]
    if not primaries:
        return [_port_result(index, query, label, None)]
    return [_port_result(index, query, label, r) for r in primaries]


def _plain_unassigned(record: ServiceRecord) -> bool:
    """IANA's nameless "Unassigned" range rows: an unassigned port shows empty fields.

    (Nameless rows that say more, "Reserved" or "De-registered", are shown.)
    """
    return not record.service_name and record.description.strip().lower() == "unassigned"


def _run_key(result: dict[str, Any]) -> tuple[object, ...]:
    """Everything in a result but its port, hashable (lists become tuples)."""
    return tuple(
        tuple(map(repr, v)) if isinstance(v, list) else v
        for k, v in result.items()
        if k not in ("port", "ports")
    )


def _merge_runs(rows: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Collapse consecutive ports whose results are the same into one ``ports`` range."""
    out: list[dict[str, Any]] = []
    previous_key: object = None
    group: list[dict[str, Any]] = []
    for results in rows:
        key = tuple(_run_key(r) for r in results)
        if key == previous_key and group:
            for kept, new in zip(group, results, strict=True):
                kept["ports"][1] = new["port"]
            continue
        previous_key = key
        group = results
        out.extend(results)
    return out


def _lookup_name(index: RegistryIndex, query: Query) -> list[dict[str, Any]]:
    from portsniff.registry.index import alias_target

    assert query.name is not None
    name = query.name
    records = index.by_name(name)
    transport_filter: str | None = None
    if not records and "/" in name:
        # ``bacnet/udp``: a name and a transport.
        base, _, transport = name.rpartition("/")
        if transport.lower() in TRANSPORTS:
            records = tuple(
                r for r in index.by_name(base) if r.transport_protocol.lower() == transport.lower()
            )
            transport_filter = transport.lower()
    results: list[dict[str, Any]] = []
    for record in records:
        result: dict[str, Any] = record.as_dict()
        rng = record.port_range
        proto = record.transport_protocol.lower() or None
        label = index.lookup(proto, rng[0]) if rng and proto and rng[0] == rng[1] else None
        ranges = index.unauthorized_ports(record)
        note = record.unauthorized_use_reported or None
        result.update(
            query=query.text,
            alias_of=alias_target(record),
            transport=proto,
            port=rng[0] if rng and rng[0] == rng[1] else None,
            ports=list(rng) if rng else None,
            status=_record_status(record),
            port_class=port_class(rng[0]) if rng else None,
            aliases=[a for a in label.aliases if a != record.service_name] if label else [],
            unauthorized_ports=[[lo, hi] for lo, hi in ranges],
            unauthorized_use=note,
            unauthorized_use_here=bool(
                note and rng and ranges and any(lo <= rng[0] and rng[1] <= hi for lo, hi in ranges)
            ),
            source=label.source if label else None,
        )
        results.append(result)
    if not results:
        # Unknowns are values: say the name is not in the registry.
        missing: dict[str, Any] = _empty_fields()
        missing.update(
            query=query.text,
            alias_of=None,
            transport=transport_filter,
            port=None,
            ports=None,
            status="unassigned",
            port_class=None,
            aliases=[],
            unauthorized_ports=[],
            unauthorized_use=None,
            unauthorized_use_here=False,
            source=None,
        )
        results.append(missing)
    return results


def lookup(index: RegistryIndex, queries: Sequence[Query]) -> list[dict[str, Any]]:
    """The result rows of ``queries`` (see ``registry lookup -h``), in query order."""
    results: list[dict[str, Any]] = []
    for query in queries:
        if query.name is not None:
            results.extend(_lookup_name(index, query))
            continue
        by_transport: list[list[dict[str, Any]]] = []
        for transport in query.transports:
            rows = [
                _lookup_port(index, query, transport, port)
                for port in range(query.lo, query.hi + 1)
            ]
            if len(query.transports) > 1:
                # All transports asked: leave out the ones that know nothing of the port.
                rows = [
                    r for r in rows if r[0]["status"] != "unassigned" or r[0]["unauthorized_use"]
                ]
            by_transport.append(_merge_runs(rows))
        found = [r for rows in by_transport for r in rows]
        if not found:
            # Nothing on any transport: one row per port run, without a transport.
            rows = [_lookup_port(index, query, "tcp", p) for p in range(query.lo, query.hi + 1)]
            found = _merge_runs(rows)
            for r in found:
                r["transport"] = None
        results.extend(found)
    return results


def _open(args: argparse.Namespace) -> tuple[RegistryIndex, dict[str, object]]:
    from portsniff.cli import registry_files
    from portsniff.registry.sources import open_registry, registry_provenance

    index = open_registry(registry_files(args))
    return index, registry_provenance(index)


def _write_json(stdout: TextIO, payload: dict[str, Any]) -> None:
    json.dump(payload, stdout, indent=2, ensure_ascii=False)
    stdout.write("\n")


def _cmd_lookup(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.report.registry_text import render_lookup

    queries = [parse_query(q) for q in args.query]
    index, registry = _open(args)
    results = lookup(index, queries)
    if args.format == "json":
        _write_json(stdout, {"caveat": CAVEAT, "registry": registry, "results": results})
    else:
        stdout.write(render_lookup(results, registry))
    return 0


def _cmd_info(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.report.registry_text import render_info

    index, registry = _open(args)
    stats = index.stats()
    payload: dict[str, Any] = {
        **{k: stats[k] for k in sorted(stats)},
        "sources": registry["sources"],
        "skipped": registry["skipped"],
        "caveat": CAVEAT,
        "caveat_source": CAVEAT_SOURCE,
    }
    if args.format == "json":
        _write_json(stdout, payload)
    else:
        stdout.write(render_info(payload))
    return 0


def _cmd_update(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.registry.update import update_registry

    result = update_registry(args.url, timeout=args.timeout)
    return _write_update(args, stdout, result.as_dict())


def _cmd_import(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.registry.update import import_registry

    result = import_registry(args.file)
    return _write_update(args, stdout, result.as_dict())


def _write_update(args: argparse.Namespace, stdout: TextIO, payload: dict[str, Any]) -> int:
    from portsniff.report.registry_text import render_update

    payload = {**payload, "caveat": CAVEAT}
    if args.format == "json":
        _write_json(stdout, payload)
    else:
        stdout.write(render_update(payload))
    return 0


def _cmd_diff(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.registry.diff import diff_registries
    from portsniff.registry.sources import load_explicit, source_origin
    from portsniff.report.registry_text import render_diff

    old = load_explicit(args.old)
    new = load_explicit(args.new)
    diff = diff_registries(old.records, new.records)
    payload: dict[str, Any] = {
        "caveat": CAVEAT,
        "old": {**old.source.as_dict(), "origin": source_origin(old.source.path)},
        "new": {**new.source.as_dict(), "origin": source_origin(new.source.path)},
        **diff.as_dict(),
    }
    if args.format == "json":
        _write_json(stdout, payload)
    else:
        stdout.write(render_diff(payload))
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``registry`` and its subcommands to the ``portsniff`` parser."""
    from portsniff.registry.sources import DEFAULT_URL

    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    group = subparsers.add_parser(
        "registry",
        parents=[common],
        help="look up, describe, update and compare the IANA port registry",
        description="Look up, describe, update and compare the IANA Service Name and "
        "Transport Protocol Port Number Registry.",
    )
    sub = group.add_subparsers(dest="registry_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser(
        "lookup",
        parents=[common, fmt],
        help="what the registry says about ports or service names",
        description="What the registry says about ports or service names. A QUERY is a "
        "port on one transport (47808/udp), a port on every transport (47808), a port "
        "range (6000-6010/tcp), a service name (bacnet) or a DNS-SD service type "
        "(_airplay._tcp).",
    )
    p.add_argument("query", nargs="+", metavar="QUERY")
    p.set_defaults(handler=_cmd_lookup)

    p = sub.add_parser(
        "info",
        parents=[common, fmt],
        help="which registry files are used and what they hold",
        description="Which registry files are used, in order of preference, and what they hold.",
    )
    p.set_defaults(handler=_cmd_info)

    p = sub.add_parser(
        "update",
        parents=[common, fmt],
        help="download the registry from IANA into the cache",
        description="Download the registry (IANA CSV or XML) into the user cache. The "
        "download is checked before it replaces the cached copy; on failure the cached "
        "copy stays.",
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"where to download (default {DEFAULT_URL})")
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="network timeout in seconds (default 30)",
    )
    p.set_defaults(handler=_cmd_update)

    p = sub.add_parser(
        "import",
        parents=[common, fmt],
        help="copy a registry file into the cache",
        description="Check a registry file (IANA CSV/XML/text, a services file) and copy "
        "it into the user cache, where later commands find it.",
    )
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=_cmd_import)

    p = sub.add_parser(
        "diff",
        parents=[common, fmt],
        help="compare two versions of the registry",
        description="Records added, removed and changed between two registry files "
        "(a record is identified by service name, port number and transport protocol).",
    )
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.set_defaults(handler=_cmd_diff)
