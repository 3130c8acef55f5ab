"""Annotate's text format: one tcpdump-like line per packet, the service name and number
always together."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TextIO

from portsniff.annotate.records import PacketRecord
from portsniff.report.packets import StreamEnd, StreamMeta

_GREEN = "\033[32m"
_YELLOW = "\033[33m"
_DIM = "\033[2m"
_RESET = "\033[0m"


def color_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def clock(ts: float) -> str:
    """``12:00:01.000123`` (UTC, microseconds; the date is in the header)."""
    whole = int(ts // 1)
    micros = round((ts - whole) * 1e6)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}"


def _endpoint(ip: str | None, port: int | None) -> str:
    if ip is None:
        return "-"
    return ip if port is None else f"{ip}.{port}"


def label_text(r: PacketRecord, color: bool = False) -> str:
    """The label part of a line: ``bacnet/47808 "Building ..." [user, assigned]``."""
    parts: list[str] = []
    if r.service_port is not None:
        if r.service:
            name = f"{r.service}/{r.service_port}"
            parts.append(f"{_GREEN}{name}{_RESET}" if color else name)
            if r.description:
                parts.append(f'"{r.description}"')
            parts.append(f"[{r.port_class}, {r.status}]")
        else:
            name = f"{r.proto}/{r.service_port} ({r.port_class}, {r.status})"
            parts.append(f"{_YELLOW}{name}{_RESET}" if color else name)
        if r.aliases:
            parts.append("aliases: " + ", ".join(r.aliases))
        if r.ambiguous:
            parts.append("(ambiguous side)")
    if r.quoted is not None:
        parts.append(f"quotes {r.quoted.proto}/{_qport(r)} {r.quoted.service or '(unassigned)'}")
    if r.inner:
        parts.append(inner_text(r))
    if r.dnssd:
        parts.append(
            "dnssd: " + ", ".join(f"{d.type} ({d.service or 'unregistered'})" for d in r.dnssd)
        )
    if r.fragment:
        parts.append("fragment")
    if r.unauthorized_use:
        parts.append(f"IANA note: {r.unauthorized_use}")
    if r.problem:
        parts.append(f"[malformed: {r.problem}]")
    return " ".join(parts)


#: Tunnels carried in UDP: the packet's own label is the tunnel's port.
_UDP_TUNNELS = ("vxlan", "geneve", "teredo")


def inner_text(r: PacketRecord) -> str:
    """``inner: vxlan/4789 > ntp/123``, or ``inner (gre): domain/53`` for IP-level tunnels."""
    briefs = [e.brief() for e in r.inner]
    first = r.inner[0].tunnel
    if first in _UDP_TUNNELS and r.service_port is not None:
        outer = f"{r.service or r.proto}/{r.service_port}"
        return "inner: " + " > ".join([outer, *briefs])
    return f"inner ({first}): " + " > ".join(briefs)


def _qport(r: PacketRecord) -> str:
    q = r.quoted
    assert q is not None
    if q.service_port is not None:
        return str(q.service_port)
    return str(q.dst_port) if q.dst_port is not None else "-"


def packet_line(r: PacketRecord, color: bool = False) -> str:
    """One packet as a line of text."""
    head = f"{clock(r.ts)} "
    if r.src_ip is None:
        head += f"{r.proto} (non-IP frame, {r.len} bytes)"
    else:
        head += f"{_endpoint(r.src_ip, r.src_port)} > {_endpoint(r.dst_ip, r.dst_port)} {r.proto}"
    if r.vlan:
        head += " vlan " + ".".join(str(v) for v in r.vlan)
    label = label_text(r, color)
    return f"{head} {label}" if label else head


class TextWriter:
    """Writes ``# `` header lines (caveat, registry), packet lines, a ``# `` footer."""

    def __init__(self, stream: TextIO, fields: Sequence[str] | None = None, color: bool = False):
        self.stream = stream
        self.fields = tuple(fields) if fields else None
        self.color = color

    def begin(self, meta: StreamMeta) -> None:
        w = self.stream.write
        w(f"# IANA: {meta.caveat}\n")
        for src in meta.registry:
            w(
                f"# registry: {src['kind']} {src['path']} (updated {src['updated'] or 'unknown'}, "
                f"{src['records']} records, sha256 {str(src['sha256'])[:16]}…)\n"
            )
        if self.fields:
            w("# " + "\t".join(self.fields) + "\n")

    def write(self, record: PacketRecord) -> None:
        if self.fields:
            values = record.as_dict()
            self.stream.write("\t".join(_plain(values[f]) for f in self.fields) + "\n")
        else:
            self.stream.write(packet_line(record, self.color) + "\n")

    def end(self, end: StreamEnd) -> None:
        c = end.counts
        self.stream.write(
            f"# packets: {c.get('packets', 0)}, labelled: {c.get('labelled', 0)}, "
            f"unlabelled: {c.get('unlabelled', 0)}, malformed: {c.get('malformed', 0)}\n"
        )
        for problem in end.problems:
            self.stream.write(f"# problem: {problem}\n")
        self.stream.flush()


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_plain(v)}" for k, v in value.items() if v not in (None, [], ""))
    return str(value)
