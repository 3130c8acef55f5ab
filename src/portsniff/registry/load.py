"""Read a registry file of any supported format, chosen by its content (never its name)."""

from __future__ import annotations

import re
from pathlib import Path

from portsniff.errors import RegistryError
from portsniff.registry.record import IANA_HEADER, ParsedRegistry

#: What ``sniff_kind`` can answer besides the parseable kinds.
NOT_REGISTRY = ("empty", "html", "unknown")

_SERVICES_LINE = re.compile(
    rb"^[^\s#]+[ \t]+\d+(?:-\d+)?/[A-Za-z0-9]+(?:/[A-Za-z0-9]+)*(?:[ \t#]|$)"
)


def sniff_kind(data: bytes) -> str:
    """The format of registry bytes: "iana-xml", "iana-csv", "iana-text", "services",
    "wireshark-services", or one of "empty", "html", "unknown"."""
    head = data[:65536].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        return "empty"
    lower = head[:4096].lower()
    if head.startswith(b"<"):
        if b"<html" in lower or b"<!doctype html" in lower:
            return "html"
        if b"http://www.iana.org/assignments" in lower and b"<registry" in lower:
            return "iana-xml"
        return "unknown"
    first = head.split(b"\n", 1)[0].strip()
    columns = [c.strip(b' "') for c in first.split(b",")]
    if b"Service Name" in columns and b"Port Number" in columns:
        return "iana-csv"
    if re.search(rb"^\s*\|\s*Service Name\s*\|\s*Port Number\s*\|", head, re.M):
        return "iana-text"
    lines = [ln.strip() for ln in head.splitlines()]
    entries = [ln for ln in lines if ln and not ln.startswith(b"#")]
    if entries and sum(1 for ln in entries[:200] if _SERVICES_LINE.match(ln)) * 2 > len(
        entries[:200]
    ):
        comments = b"\n".join(ln for ln in lines[:40] if ln.startswith(b"#")).lower()
        return "wireshark-services" if b"wireshark" in comments else "services"
    return "unknown"


def parse_registry_bytes(data: bytes, path: str) -> ParsedRegistry:
    """Parse registry bytes with the parser their content calls for."""
    kind = sniff_kind(data)
    if kind == "iana-xml":
        from portsniff.registry.parse_xml import parse_iana_xml

        return parse_iana_xml(data, path)
    if kind == "iana-csv":
        from portsniff.registry.parse_csv import parse_iana_csv

        return parse_iana_csv(data, path)
    if kind == "iana-text":
        from portsniff.registry.parse_text import parse_iana_text

        return parse_iana_text(data, path)
    if kind in ("services", "wireshark-services"):
        from portsniff.registry.parse_services import parse_services

        return parse_services(data, path)
    if kind == "empty":
        raise RegistryError(f"{path}: empty file, not a registry")
    if kind == "html":
        raise RegistryError(f"{path}: an HTML page, not a registry file (use IANA's XML or CSV)")
    expected = ", ".join(IANA_HEADER[:2])
    raise RegistryError(
        f"{path}: unknown registry format (expected IANA XML, IANA CSV with '{expected}', "
        "IANA's text table, or a services file)"
    )


def load_registry_file(path: str | Path) -> ParsedRegistry:
    """Read and parse one registry file; RegistryError naming the file if that fails."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise RegistryError(f"{p}: no such registry file") from None
    except IsADirectoryError:
        raise RegistryError(f"{p}: is a directory, not a registry file") from None
    except OSError as exc:
        raise RegistryError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return parse_registry_bytes(data, str(p))
