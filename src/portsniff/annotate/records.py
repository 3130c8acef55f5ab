"""The annotate vocabulary: one labelled packet. Field names are the JSON keys, the CSV
columns and the ``--fields`` names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portsniff.registry.record import PortLabel


@dataclass(frozen=True, slots=True)
class EndpointLabel:
    """A transport header inside a packet (tunnelled, or quoted by an ICMP error), labelled."""

    proto: str
    src_ip: str | None
    dst_ip: str | None
    src_port: int | None
    dst_port: int | None
    service: str | None
    service_port: int | None
    tunnel: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ENDPOINT_FIELDS}

    def brief(self) -> str:
        """``ntp/123``, ``udp/50000`` or ``icmp``: the service name and number together."""
        if self.service and self.service_port is not None:
            return f"{self.service}/{self.service_port}"
        if self.src_port is None:
            return self.proto
        port = self.service_port if self.service_port is not None else self.dst_port
        return f"{self.proto}/{port}"


@dataclass(frozen=True, slots=True)
class DnssdLabel:
    """A DNS-SD service type seen in a packet, with the registry's record for it."""

    type: str  # "_airplay._tcp"
    service: str | None  # the registry's name ("airplay"), None when not registered
    description: str | None
    instances: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "service": self.service,
            "description": self.description,
            "instances": list(self.instances),
        }


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """One packet with its registry label."""

    frame: int
    file: str
    ts: float
    len: int
    caplen: int
    src_ip: str | None
    dst_ip: str | None
    proto: str
    src_port: int | None
    dst_port: int | None
    service: str | None
    service_port: int | None
    service_side: str | None  # "src" / "dst"
    description: str | None
    status: str | None  # assigned / reserved / unassigned (None when the packet has no ports)
    port_class: str | None
    aliases: tuple[str, ...]
    unauthorized_use: str | None
    basis: str | None
    ambiguous: bool
    dnssd: tuple[DnssdLabel, ...]
    inner: tuple[EndpointLabel, ...]
    quoted: EndpointLabel | None
    fragment: bool
    vlan: tuple[int, ...]
    source: str | None = None  # the registry source of the label ("kind:path")
    # Not output fields: kept for the text line, flows and the pcapng writer.
    ts_ns: int = 0
    problem: str | None = None
    tcp_flags: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The packet's output fields, JSON-ready."""
        out = {name: getattr(self, name) for name in PACKET_FIELDS}
        # Only these hold tuples or labels; every other field is a JSON scalar.
        for name in _NESTED_FIELDS:
            out[name] = _jsonable(out[name])
        return out


PACKET_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(PacketRecord) if f.name not in ("ts_ns", "problem", "tcp_flags")
)
_NESTED_FIELDS = ("aliases", "dnssd", "inner", "quoted", "vlan")
_ENDPOINT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EndpointLabel))


def label_fields(label: PortLabel | None) -> dict[str, Any]:
    """The PacketRecord fields that a registry label fills (all empty for no label)."""
    if label is None:
        return _NO_LABEL
    return {
        "service": label.service,
        "service_port": label.port,
        "description": label.description,
        "status": label.status,
        "port_class": label.port_class,
        "aliases": label.aliases,
        "unauthorized_use": label.unauthorized_use,
        "source": label.source,
    }


_NO_LABEL: dict[str, Any] = {
    "service": None,
    "service_port": None,
    "description": None,
    "status": None,
    "port_class": None,
    "aliases": (),
    "unauthorized_use": None,
    "source": None,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, EndpointLabel | DnssdLabel):
        return value.as_dict()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
