"""The decoder's output: what one packet's headers say, before any registry lookup."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Values of ``Decoded.proto``.
PROTOS = ("tcp", "udp", "sctp", "dccp", "icmp", "icmpv6", "arp", "other")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A transport header seen inside the packet (tunnelled or quoted by ICMP)."""

    proto: str  # tcp/udp/sctp/dccp/icmp/icmpv6/other
    src_ip: str | None
    dst_ip: str | None
    src_port: int | None
    dst_port: int | None
    # For inner headers: "vxlan", "geneve", "teredo", "gre", "erspan", "ipip", "6in4", ...
    tunnel: str | None = None


@dataclass(frozen=True, slots=True)
class Fragment:
    """IP fragmentation facts: key identifies the datagram (src, dst, id, protocol)."""

    key: tuple[str, str, int, int]
    offset: int  # in bytes
    more: bool


@dataclass(frozen=True, slots=True)
class Decoded:
    """One packet's outermost headers.

    ``proto`` is the outermost transport (see PROTOS; non-IP frames are "arp" or "other"
    with null addresses). Ports are the outermost TCP/UDP/SCTP/DCCP header's, or None
    (non-first fragments have None here; the annotator fills them from the first).
    ``problem`` says why decoding stopped early (truncated, malformed), else None.
    """

    linktype: int
    src_ip: str | None = None
    dst_ip: str | None = None
    proto: str = "other"
    ip_proto: int | None = None
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int | None = None
    vlan: tuple[int, ...] = ()
    fragment: Fragment | None = None
    inner: tuple[Endpoints, ...] = ()
    quoted: Endpoints | None = None
    dnssd: tuple[str, ...] = ()  # DNS-SD service types seen, e.g. "_airplay._tcp"
    dnssd_instances: tuple[str, ...] = ()  # e.g. "Kitchen._airplay._tcp.local"
    problem: str | None = None


@dataclass(slots=True)
class IpLayer:
    """What one IP packet and everything it carries says: the engines' working record,
    filled while walking the headers, then turned into a ``Decoded``."""

    src_ip: str
    dst_ip: str
    proto: str
    ip_proto: int
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int | None = None
    fragment: Fragment | None = None
    quoted: Endpoints | None = None
    dnssd: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    inner: list[Endpoints] = field(default_factory=list)
    problem: str | None = None

    def decoded(self, linktype: int, vlan: tuple[int, ...]) -> Decoded:
        """The packet's ``Decoded`` (link type and VLAN tags come from below IP)."""
        return Decoded(
            linktype=linktype,
            src_ip=self.src_ip,
            dst_ip=self.dst_ip,
            proto=self.proto,
            ip_proto=self.ip_proto,
            src_port=self.src_port,
            dst_port=self.dst_port,
            tcp_flags=self.tcp_flags,
            vlan=vlan,
            fragment=self.fragment,
            inner=tuple(self.inner),
            quoted=self.quoted,
            dnssd=self.dnssd,
            dnssd_instances=self.instances,
            problem=self.problem,
        )
