"""Text renderings of the ``portsniff registry`` outputs.

Each function takes the same JSON-ready dict the ``--format json`` output prints, so
text and JSON never say different things. Every rendering ends with the registry's
provenance and IANA's caveat.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from portsniff.caveat import CAVEAT, CAVEAT_SOURCE

_WIDTH = 88


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


def _source_line(source: Mapping[str, Any]) -> str:
    parts = [str(source.get("kind"))]
    if source.get("updated"):
        parts.append(f"updated {source['updated']}")
    parts.append(f"{source.get('records')} records")
    origin = source.get("origin")
    if origin and origin != "file":
        parts.append(str(origin))
    return f"{source.get('path')} ({', '.join(parts)})"


def render_provenance(registry: Mapping[str, Any]) -> list[str]:
    """``registry: FILE (kind, updated, records, origin)`` lines, first preferred, and
    the files that were skipped."""
    sources: Sequence[Mapping[str, Any]] = registry.get("sources") or ()
    lines: list[str] = []
    for i, source in enumerate(sources):
        label = "registry:" if i == 0 else "        +"
        lines.append(f"{label} {_source_line(source)}")
    for problem in registry.get("skipped") or ():
        lines.append(f"skipped:  {problem['path']}: {_one_line(problem['reason'])}")
    return lines


def render_caveat() -> list[str]:
    """IANA's caveat, wrapped, with where it comes from."""
    body = textwrap.wrap(f'"{CAVEAT}"', width=_WIDTH - 2)
    return ["", f"{CAVEAT_SOURCE}:", *(f"  {line}" for line in body)]


def _where(result: Mapping[str, Any]) -> str:
    transport = result.get("transport") or "any"
    ports = result.get("ports")
    if ports is None:
        return f"{transport}/-"
    lo, hi = ports
    return f"{transport}/{lo}" if lo == hi else f"{transport}/{lo}-{hi}"


def _lookup_lines(result: Mapping[str, Any]) -> list[str]:
    name = result.get("service_name") or "-"
    description = _one_line(result.get("description"))
    tags: list[str] = []
    if result.get("port_class"):
        tags.append(str(result["port_class"]))
    tags.append(str(result.get("status")))
    number = str(result.get("port_number") or "")
    if number and "-" in number:
        tags.append(f"registered as {number}")
    if result.get("alias_of"):
        tags.append(f"historic alias of {result['alias_of']}")
    if result.get("ports") is None and result.get("service_name"):
        tags.append("DNS-SD service name, no port")
    head = f"{_where(result):<14} {name}"
    if result.get("ports") is None and not result.get("service_name"):
        # A service name the registry does not know.
        head, tags = f"{result.get('query')}", ["not in the registry"]
    if description:
        head += f'  "{description}"'
    lines = [f"{head}  [{', '.join(tags)}]"]
    for alias in result.get("aliases") or ():
        lines.append(f"    alias: {alias}")
    note = result.get("unauthorized_use")
    if note:
        ports = result.get("unauthorized_ports") or []
        where = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ports)
        scope = "this port" if result.get("unauthorized_use_here") else f"port {where}"
        if not ports:
            scope = "this entry"
        lines.append(f'    note: IANA records unauthorized use ({scope}): "{_one_line(note)}"')
    notes = _one_line(result.get("assignment_notes"))
    if notes:
        lines.append(f"    assignment notes: {notes}")
    return lines


def render_lookup(results: Sequence[Mapping[str, Any]], registry: Mapping[str, Any]) -> str:
    """One block per result, then provenance and the caveat."""
    lines: list[str] = []
    for result in results:
        lines.extend(_lookup_lines(result))
    lines.append("")
    lines.extend(render_provenance(registry))
    lines.extend(render_caveat())
    return "\n".join(lines) + "\n"


def render_info(info: Mapping[str, Any]) -> str:
    """The registry's sources and counts."""
    lines = render_provenance(info)
    lines.append("")
    by_transport = info.get("assigned_pairs_by_transport") or {}
    per = ", ".join(f"{t} {n}" for t, n in by_transport.items())
    rows = [
        ("records (all sources)", info.get("records")),
        ("assigned port pairs", f"{info.get('assigned_pairs')}" + (f" ({per})" if per else "")),
        ("port-range records", info.get("range_records")),
        ("historic alias records", info.get("alias_records")),
        ("unauthorized-use notes", info.get("unauthorized_records")),
    ]
    lines.extend(f"{label + ':':<24} {value}" for label, value in rows)
    lines.extend(render_caveat())
    return "\n".join(lines) + "\n"


def _record_line(mark: str, record: Mapping[str, Any], described: bool = True) -> str:
    name = record.get("service_name") or "-"
    where = f"{record.get('transport_protocol') or 'any'}/{record.get('port_number') or '-'}"
    line = f"{mark} {where:<18} {name}"
    if described:
        line += f'  "{_one_line(record.get("description"))}"'
    return line


def _value(text: object) -> str:
    flat = _one_line(text)
    return repr(flat) if flat else "(empty)"


def render_diff(payload: Mapping[str, Any]) -> str:
    """Counts, then the added, removed and changed records."""
    lines = [
        f"old: {_source_line(payload['old'])}",
        f"new: {_source_line(payload['new'])}",
        f"{payload['added']} added, {payload['removed']} removed, "
        f"{payload['changed']} changed, {payload['unchanged']} unchanged",
    ]
    if payload["added_records"]:
        lines += ["", "added:"]
        lines += [_record_line("+", r) for r in payload["added_records"]]
    if payload["removed_records"]:
        lines += ["", "removed:"]
        lines += [_record_line("-", r) for r in payload["removed_records"]]
    if payload["changed_records"]:
        lines += ["", "changed:"]
        for change in payload["changed_records"]:
            lines.append(_record_line("~", change, described=False))
            for field in change["fields"]:
                old, new = _value(change["old"][field]), _value(change["new"][field])
                lines.append(f"      {field}: {old} -> {new}")
    lines.extend(render_caveat())
    return "\n".join(lines) + "\n"


def render_update(payload: Mapping[str, Any]) -> str:
    """What ``registry update``/``import`` did."""
    status = payload["status"]
    origin = payload["origin"]
    if status == "not-modified":
        lines = [f"not modified: {origin} has not changed since the last download"]
    elif status == "unchanged":
        lines = [f"unchanged: {origin} holds the same registry as the cached copy"]
    elif status == "imported":
        lines = [f"imported {origin}"]
    else:
        lines = [f"updated from {origin}"]
    source = payload.get("source")
    if source:
        lines.append(f"cached copy: {_source_line(source)}")
    previous = payload.get("previous")
    diff = payload.get("diff")
    if previous and status in ("updated", "imported"):
        lines.append(f"replaced:    {_source_line(previous)}")
    if diff and status in ("updated", "imported"):
        lines.append(
            f"changes: {diff['added']} added, {diff['removed']} removed, {diff['changed']} changed"
        )
    elif status in ("updated", "imported") and not previous:
        lines.append("there was no cached copy before")
    lines.extend(render_caveat())
    return "\n".join(lines) + "\n"
