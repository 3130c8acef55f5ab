"""Hand-built summaries for the summary format tests: labelled packets folded by the real
SummaryBuilder, so every format is tested on what the pipeline would give it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from portsniff.annotate.records import DnssdLabel, EndpointLabel, PacketRecord
from portsniff.caveat import CAVEAT
from portsniff.summary import Summary, SummaryBuilder

T0 = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC

HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><!-- x | y ` * _ [a](b) #",
    "[bold]markup[/bold] :smile: \x1b[31mred\x07",
    '=HYPERLINK("http://x")',
)

REGISTRY: list[dict[str, Any]] = [
    {
        "kind": "iana-text",
        "path": "src/portsniff/data/iana-registry-excerpt.txt",
        "updated": "2026-03-27",
        "sha256": "3f" * 32,
        "records": 1234,
        "origin": "bundled",
    }
]

SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08


def packet(
    ts: float,
    src: tuple[str | None, int | None],
    dst: tuple[str | None, int | None],
    *,
    proto: str = "tcp",
    length: int = 100,
    caplen: int | None = None,
    service: str | None = None,
    service_port: int | None = None,
    side: str | None = "dst",
    description: str | None = None,
    status: str | None = None,
    port_class: str | None = None,
    unauthorized_use: str | None = None,
    ambiguous: bool = False,
    dnssd: tuple[DnssdLabel, ...] = (),
    inner: tuple[EndpointLabel, ...] = (),
    vlan: tuple[int, ...] = (),
    problem: str | None = None,
    flags: int | None = None,
    frame: int = 1,
) -> PacketRecord:
    """One labelled packet; unset labels follow the given service port."""
    return PacketRecord(
        frame=frame,
        file="sample.pcap",
        ts=ts,
        len=length,
        caplen=length if caplen is None else caplen,
        src_ip=src[0],
        dst_ip=dst[0],
        proto=proto,
        src_port=src[1],
        dst_port=dst[1],
        service=service,
        service_port=service_port,
        service_side=side if service_port is not None else None,
        description=description,
        status=status,
        port_class=port_class,
        aliases=(),
        unauthorized_use=unauthorized_use,
        basis="registry" if service_port is not None else None,
        ambiguous=ambiguous,
        dnssd=dnssd,
        inner=inner,
        quoted=None,
        fragment=False,
        vlan=vlan,
        ts_ns=int(ts * 1e9),
        problem=problem,
        tcp_flags=flags,
    )


def _tcp_session(
    b: SummaryBuilder,
    t: float,
    client: tuple[str, int],
    server: tuple[str, int],
    label: dict[str, Any],
    payload: int,
    n: int = 4,
    **kw: Any,
) -> None:
    b.add(packet(t, client, server, flags=SYN, length=74, **label, **kw))
    b.add(
        packet(
            t + 0.01, server, client, flags=SYN | ACK, length=74, **{**label, "side": "src"}, **kw
        )
    )
    for i in range(n):
        b.add(
            packet(
                t + 0.02 + i * 0.5,
                server,
                client,
                flags=ACK | PSH,
                length=payload,
                **{**label, "side": "src"},
                **kw,
            )
        )
        b.add(packet(t + 0.03 + i * 0.5, client, server, flags=ACK, length=66, **label, **kw))
    b.add(packet(t + 0.05 + n * 0.5, client, server, flags=FIN | ACK, length=66, **label, **kw))
    b.add(
        packet(
            t + 0.06 + n * 0.5,
            server,
            client,
            flags=FIN | ACK,
            length=66,
            **{**label, "side": "src"},
            **kw,
        )
    )


def file_report(
    name: str,
    packets: int,
    nbytes: int,
    first: float | None,
    last: float | None,
    *,
    damage: str | None = None,
    error: str | None = None,
    linktypes: dict[str, int] | None = None,
) -> dict[str, Any]:
    """What AnnotateRun's FileReport.as_dict gives for one file."""
    return {
        "file": name,
        "format": None if error else "pcap",
        "compression": None,
        "linktypes": linktypes if linktypes is not None else ({"1": packets} if packets else {}),
        "packets": packets,
        "bytes": nbytes,
        "first_ts": first,
        "last_ts": last,
        "damage": damage,
        "error": error,
        "problems": [],
    }


def sample_summary(*, hostile: str | None = None, unicode: bool = False) -> Summary:
    """A small but complete summary: services, unknown ports, flows (v4, v6, tunnelled,
    VLAN), DNS-SD, ICMP, non-IP, a malformed and a truncated packet, and three files
    (one damaged, one unreadable). ``hostile`` is put in every packet/registry string."""
    name = hostile or ("Küche — 客厅 📺" if unicode else "Living Room")
    desc = hostile or "HTTP protocol over TLS/SSL"
    b = SummaryBuilder(CAVEAT, [dict(s) for s in REGISTRY])
    https = {
        "service": "https",
        "service_port": 443,
        "description": desc,
        "status": "assigned",
        "port_class": "system",
    }
    _tcp_session(b, T0, ("10.0.0.5", 51000), ("93.184.216.34", 443), https, 1400, n=6)
    _tcp_session(b, T0 + 20, ("10.0.0.6", 51001), ("93.184.216.34", 443), https, 900, n=3)
    dns = {
        "service": "domain",
        "service_port": 53,
        "description": "Domain Name Server",
        "status": "assigned",
        "port_class": "system",
        "proto": "udp",
    }
    for i in range(3):
        b.add(
            packet(
                T0 + 1 + i * 10, ("2001:db8::5", 40000 + i), ("2001:db8::53", 53), length=80, **dns
            )
        )
        b.add(
            packet(
                T0 + 1.02 + i * 10,
                ("2001:db8::53", 53),
                ("2001:db8::5", 40000 + i),
                length=160,
                **{**dns, "side": "src"},
            )
        )
    bacnet = {
        "service": "bacnet",
        "service_port": 47808,
        "description": "Building Automation and Control Networks",
        "status": "assigned",
        "port_class": "user",
        "proto": "udp",
        "unauthorized_use": "Known unauthorized use on port 47808",
    }
    for i in range(5):
        b.add(
            packet(
                T0 + 5 + i,
                ("192.168.1.20", 47808),
                ("192.168.1.255", 47808),
                length=60,
                vlan=(100,),
                ambiguous=True,
                **bacnet,
            )
        )
    unassigned = {
        "service": None,
        "service_port": 50000,
        "status": "unassigned",
        "port_class": "dynamic",
        "proto": "udp",
    }
    for i in range(4):
        b.add(
            packet(T0 + 30 + i, ("10.0.0.7", 41000), ("10.0.0.8", 50000), length=300, **unassigned)
        )
    reserved = {
        "service": None,
        "service_port": 1023,
        "status": "reserved",
        "port_class": "system",
        "description": "Reserved",
    }
    b.add(
        packet(T0 + 31, ("10.0.0.9", 33000), ("10.0.0.10", 1023), length=60, flags=SYN, **reserved)
    )
    # VXLAN carrying an inner HTTP flow.
    vx = {
        "service": "vxlan",
        "service_port": 4789,
        "description": "Virtual eXtensible LAN",
        "status": "assigned",
        "port_class": "user",
        "proto": "udp",
    }
    inner = (EndpointLabel("tcp", "172.16.0.1", "172.16.0.2", 40001, 80, "http", 80, "vxlan"),)
    for i in range(2):
        b.add(
            packet(
                T0 + 40 + i, ("10.1.0.1", 60000), ("10.1.0.2", 4789), length=150, inner=inner, **vx
            )
        )
    mdns = {
        "service": "mdns",
        "service_port": 5353,
        "description": "Multicast DNS",
        "status": "assigned",
        "port_class": "user",
        "proto": "udp",
    }
    airplay = DnssdLabel("_airplay._tcp", "airplay", hostile or "Apple AirPlay", (name, "Bedroom"))
    unregistered = DnssdLabel("_xyzzy._udp", None, None, ())
    b.add(
        packet(
            T0 + 2,
            ("192.168.1.30", 5353),
            ("224.0.0.251", 5353),
            length=200,
            dnssd=(airplay, unregistered),
            **mdns,
        )
    )
    b.add(
        packet(
            T0 + 3,
            ("192.168.1.31", 5353),
            ("224.0.0.251", 5353),
            length=180,
            dnssd=(airplay,),
            **mdns,
        )
    )
    # ICMP (no ports), a non-IP frame, a malformed and a truncated packet.
    b.add(packet(T0 + 4, ("10.0.0.5", None), ("10.0.0.1", None), proto="icmp", length=98))
    b.add(packet(T0 + 4.5, (None, None), (None, None), proto="arp", length=42))
    b.add(
        packet(
            T0 + 6,
            ("10.0.0.5", None),
            ("10.0.0.1", None),
            proto="other",
            length=34,
            problem="truncated IPv4 header",
        )
    )
    b.add(
        packet(
            T0 + 7,
            ("10.0.0.5", 51002),
            ("93.184.216.34", 443),
            length=1500,
            caplen=96,
            flags=ACK,
            **https,
        )
    )
    s = b.finish()
    pk, nb = s.packets, s.bytes
    b.add_file(file_report("captures/sample.pcap", pk, nb, s.first_ts, s.last_ts), Counter({1: pk}))
    b.add_file(
        file_report(
            "captures/cut.pcap",
            0,
            0,
            None,
            None,
            damage="captures/cut.pcap: truncated record at byte 1314",
        ),
        Counter(),
    )
    b.add_file(
        file_report(
            "captures/" + (hostile or "notes.txt"),
            0,
            0,
            None,
            None,
            error="captures/notes.txt: not a pcap or pcapng file",
        ),
        Counter(),
    )
    return s


def empty_summary() -> Summary:
    """No packets at all (an empty capture file)."""
    b = SummaryBuilder(CAVEAT, [dict(s) for s in REGISTRY])
    s = b.finish()
    b.add_file(file_report("captures/empty.pcap", 0, 0, None, None), Counter())
    return s
