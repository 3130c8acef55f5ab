"""The registry's record vocabulary: one record type with IANA's 12 columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: IANA's CSV header, in order; ``FIELDS`` are their snake_case names (our JSON keys).
IANA_HEADER: tuple[str, ...] = (
    "Service Name",
    "Port Number",
    "Transport Protocol",
    "Description",
    "Assignee",
    "Contact",
    "Registration Date",
    "Modification Date",
    "Reference",
    "Service Code",
    "Unauthorized Use Reported",
    "Assignment Notes",
)
FIELDS: tuple[str, ...] = tuple(h.lower().replace(" ", "_") for h in IANA_HEADER)

TRANSPORTS: tuple[str, ...] = ("tcp", "udp", "sctp", "dccp")

#: "unlisted": no loaded source lists the port, and none of them is complete enough to
#: say it is unassigned (only /etc/services or the bundled excerpt were loaded).
Status = Literal["assigned", "reserved", "unassigned", "unlisted"]
PortClass = Literal["system", "user", "dynamic"]


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One row of the registry, with IANA's 12 columns as they are written.

    Empty cells are empty strings. ``port_number`` is ``"80"``, ``"6000-6063"`` or ``""``
    (DNS-SD names have no port); ``transport_protocol`` is ``""`` when the row has none.
    """

    service_name: str
    port_number: str
    transport_protocol: str
    description: str
    assignee: str
    contact: str
    registration_date: str
    modification_date: str
    reference: str
    service_code: str
    unauthorized_use_reported: str
    assignment_notes: str

    @property
    def port_range(self) -> tuple[int, int] | None:
        """``(lo, hi)`` of the port number (``lo == hi`` for one port), or None."""
        return parse_port_range(self.port_number)

    def as_dict(self) -> dict[str, str]:
        """The 12 fields by their snake_case names."""
        return {name: getattr(self, name) for name in FIELDS}


def parse_port_range(text: str) -> tuple[int, int] | None:
    """``"80"`` -> (80, 80); ``"6000-6063"`` -> (6000, 6063); ``""`` -> None.

    Raises ValueError for anything else (callers turn it into a RegistryError).
    """
    text = text.strip()
    if not text:
        return None
    lo, sep, hi = text.partition("-")
    a = int(lo)
    b = int(hi) if sep else a
    if not (0 <= a <= b <= 65535):
        raise ValueError(f"port number out of range: {text!r}")
    return a, b


def port_class(port: int) -> PortClass:
    """RFC 6335 section 6: system 0-1023, user 1024-49151, dynamic 49152-65535."""
    if port < 1024:
        return "system"
    if port < 49152:
        return "user"
    return "dynamic"


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """Provenance of registry data: where it came from and what it held."""

    kind: str  # "iana-xml", "iana-csv", "iana-text", "services", "wireshark-services"
    path: str  # file path or URL
    updated: str | None  # the registry's own "last updated" date, when it says one
    sha256: str
    records: int

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": self.path,
            "updated": self.updated,
            "sha256": self.sha256,
            "records": self.records,
        }


@dataclass(frozen=True, slots=True)
class ParsedRegistry:
    """What a parser returns: the records in file order, their source, and IANA's caveat
    as the file states it (None when the format carries none)."""

    records: tuple[ServiceRecord, ...]
    source: RegistrySource
    caveat: str | None = None


@dataclass(frozen=True, slots=True)
class PortLabel:
    """What the registry says about one (transport, port) pair.

    ``service`` is the first primary name in registry order (None when unassigned or
    reserved); ``names`` all primary names; ``aliases`` the historic alias names that
    point at them. ``unauthorized_use`` is IANA's note when it concerns this port.
    """

    transport: str
    port: int
    service: str | None
    names: tuple[str, ...]
    description: str | None
    status: Status
    port_class: PortClass
    aliases: tuple[str, ...] = ()
    unauthorized_use: str | None = None
    source: str | None = None  # RegistrySource.kind + ":" + path of the record that won
    records: tuple[ServiceRecord, ...] = field(default=(), repr=False, compare=False)

    def describe(self) -> str:
        """``"udp/47808 bacnet"`` or ``"udp/50000 (dynamic, unassigned)"``."""
        if self.service:
            return f"{self.service}/{self.port}"
        return f"{self.transport}/{self.port} ({self.port_class}, {self.status})"
