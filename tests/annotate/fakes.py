"""A small stand-in registry index and batch builders for annotator tests."""

from __future__ import annotations

from portsniff.decode.batch import DecodedBatch
from portsniff.decode.packet import Decoded
from portsniff.registry.record import PortLabel, ServiceRecord, port_class

ASSIGNED = {
    ("udp", 47808): ("bacnet", "Building Automation and Control Networks"),
    ("tcp", 44818): ("EtherNet-IP-2", "EtherNet/IP messaging"),
    ("udp", 53): ("domain", "Domain Name Server"),
    ("tcp", 53): ("domain", "Domain Name Server"),
    ("udp", 123): ("ntp", "Network Time Protocol"),
    ("udp", 5353): ("mdns", "Multicast DNS"),
    ("tcp", 80): ("http", "World Wide Web HTTP"),
    ("tcp", 2000): ("cisco-sccp", "Cisco SCCP"),
    ("tcp", 3000): ("hbci", "HBCI"),
    ("udp", 4789): ("vxlan", "Virtual eXtensible Local Area Network (VXLAN)"),
    ("udp", 161): ("snmp", "SNMP"),
}


class FakeIndex:
    def lookup(self, transport: str, port: int) -> PortLabel:
        hit = ASSIGNED.get((transport, port))
        if hit:
            return PortLabel(
                transport, port, hit[0], (hit[0],), hit[1], "assigned", port_class(port)
            )
        return PortLabel(transport, port, None, (), None, "unassigned", port_class(port))

    def dnssd(self, service_type: str) -> tuple[ServiceRecord, ...]:
        if service_type.lower().lstrip("_").startswith("airplay"):
            return (
                ServiceRecord(
                    "airplay",
                    "",
                    "tcp",
                    "Protocol for streaming of audio/video content",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ),
            )
        return ()


def batch_of(*packets: tuple[Decoded, int], file: str = "t.pcap") -> DecodedBatch:
    """A DecodedBatch from (Decoded, ts_ns) pairs, frames 1..n, 100-byte packets."""
    b = DecodedBatch.empty(file, 1, len(packets))
    for i, (d, ts_ns) in enumerate(packets):
        b.set_decoded(i, d)
        b.ts_ns[i] = ts_ns
        b.wirelen[i] = b.caplen[i] = 100
    return b


def udp(src: str, sport: int, dst: str, dport: int, **kw: object) -> Decoded:
    return Decoded(1, src, dst, "udp", 17, sport, dport, None, **kw)  # type: ignore[arg-type]


def tcp(src: str, sport: int, dst: str, dport: int, flags: int, **kw: object) -> Decoded:
    return Decoded(1, src, dst, "tcp", 6, sport, dport, flags, **kw)  # type: ignore[arg-type]
