"""The reference per-packet decoder: the spec every other engine must match exactly.

``decode_packet(linktype, data, wirelen)`` never raises; what stopped decoding early is
in ``Decoded.problem``. The layer rules live in the modules it uses: :mod:`.link`
(link types, VLAN, MPLS), :mod:`.ip` (IPv4/IPv6, extension headers, fragments),
:mod:`.transport` (ports, flags), :mod:`.icmp` (quoted endpoints), :mod:`.tunnels`
and :mod:`.dnssd`. The rules that tie them together:

- Non-IP frames: ARP/RARP are proto "arp", everything else "other"; both have null
  addresses and ports (ARP's protocol addresses are not copied into ``src_ip``).
  A link type this decoder does not know is "other" with problem
  "unsupported link type N"; a non-IP EtherType is not a problem.
- ``src_ip``/``dst_ip`` are always the outermost IP header's.
- Ports, ``tcp_flags`` and ``proto`` belong to the first TCP/UDP/SCTP/DCCP header in
  the packet, which is what tshark shows as the first occurrence of ``tcp.srcport``
  etc.: for UDP tunnels (VXLAN, Geneve, Teredo) the outer UDP header; for tunnels
  without ports (IP-in-IP, 6in4, 4in6, GRE, ERSPAN) the header found inside: the
  packet's ``proto``, ``ip_proto``, ports, flags, ICMP quote and DNS-SD names are those
  of the carried IP packet (recursively), while the addresses stay the outer ones.
  A portless tunnel carrying a non-IP frame (or nothing decodable) leaves the packet
  at the outer protocol ("other", ``ip_proto`` 47 for GRE).
- ``inner`` has one entry per tunnel, outermost first: the carried packet's
  ``Endpoints`` as this same rule reports it (its own addresses, its proto and ports)
  with ``tunnel`` naming the tunnel; a carried non-IP frame is ``Endpoints("other",
  None, None, None, None, tunnel)``. At most 8 tunnels are followed; a ninth is
  "tunnels nested deeper than 8".
- ``fragment`` describes the outermost fragmented IP header on the way to the
  packet's transport header; non-first fragments decode nothing above IP.
- ICMP/ICMPv6 errors keep ``proto`` icmp/icmpv6 with null ports and put the quoted
  endpoints in ``quoted`` (tshark shows the quoted ports as the packet's: a deliberate
  difference).
- ``dnssd``/``dnssd_instances`` come from the DNS message carried by the transport
  header whose ports the packet reports (UDP 53/5353, TCP 53).
- A problem inside a tunnel is prefixed with the tunnel's name ("vxlan: truncated
  IPv4 header"). When ``wirelen`` says the frame was cut by the snapshot length, a
  "truncated ..." problem gets the suffix " (snaplen)".
"""

from __future__ import annotations

from portsniff.decode.dnssd import dns_payload, service_names
from portsniff.decode.icmp import quoted as icmp_quoted
from portsniff.decode.ip import parse_ip
from portsniff.decode.link import Net, decode_link
from portsniff.decode.packet import Decoded, Endpoints, IpLayer
from portsniff.decode.transport import PORT_PROTOS, parse_ports, proto_name
from portsniff.decode.tunnels import IPIP_NAMES, gre, udp_tunnel

MAX_TUNNEL_DEPTH = 8
INTERNAL_ERROR = "internal decoder error"


def decode_packet(linktype: int, data: bytes, wirelen: int | None = None) -> Decoded:
    """Decode one captured frame of ``linktype``; never raises (see the module rules)."""
    try:
        decoded = _decode(linktype, bytes(data))
    except Exception as exc:  # a bug here must not stop a capture; it is reported
        return Decoded(linktype=linktype, problem=f"{INTERNAL_ERROR}: {type(exc).__name__}")
    problem = decoded.problem
    if (
        problem is not None
        and wirelen is not None
        and wirelen > len(data)
        and "truncated" in problem
    ):
        return _replace_problem(decoded, f"{problem} (snaplen)")
    return decoded


def _replace_problem(d: Decoded, problem: str) -> Decoded:
    return Decoded(
        linktype=d.linktype,
        src_ip=d.src_ip,
        dst_ip=d.dst_ip,
        proto=d.proto,
        ip_proto=d.ip_proto,
        src_port=d.src_port,
        dst_port=d.dst_port,
        tcp_flags=d.tcp_flags,
        vlan=d.vlan,
        fragment=d.fragment,
        inner=d.inner,
        quoted=d.quoted,
        dnssd=d.dnssd,
        dnssd_instances=d.dnssd_instances,
        problem=problem,
    )


def _decode(linktype: int, data: bytes) -> Decoded:
    net = decode_link(linktype, data)
    if net.kind == "arp":
        return Decoded(linktype=linktype, proto="arp", vlan=net.vlan, problem=net.problem)
    if net.kind == "other":
        return Decoded(linktype=linktype, vlan=net.vlan, problem=net.problem)
    layer = _decode_ip(data[net.offset :], net.kind, 0)
    if isinstance(layer, str):
        return Decoded(linktype=linktype, vlan=net.vlan, problem=layer)
    return layer.decoded(linktype, net.vlan)


def _decode_ip(pkt: bytes, kind: str, depth: int) -> IpLayer | str:
    """The IP packet at the start of ``pkt``, or the problem when it has no IP header."""
    hdr = parse_ip(pkt, kind)
    if isinstance(hdr, str):
        return hdr
    layer = IpLayer(
        hdr.src,
        hdr.dst,
        proto_name(hdr.ip_proto),
        hdr.ip_proto,
        fragment=hdr.fragment,
        problem=hdr.problem,
    )
    if hdr.problem is not None or not hdr.first:
        return layer
    number, seg = hdr.ip_proto, hdr.payload
    if number in PORT_PROTOS:
        ports = parse_ports(number, seg)
        layer.src_port, layer.dst_port = ports.src_port, ports.dst_port
        layer.tcp_flags = ports.tcp_flags
        layer.problem = ports.problem
        if ports.src_port is None or ports.dst_port is None or ports.problem is not None:
            return layer
        message = dns_payload(layer.proto, ports.src_port, ports.dst_port, ports.payload)
        if message is not None:
            layer.dnssd, layer.instances = service_names(message)
        if number == 17:
            found = udp_tunnel(ports.src_port, ports.dst_port, ports.payload)
            if found is not None:
                _tunnel(layer, *found, depth, descend=False)
    elif number in (1, 58):
        layer.quoted = icmp_quoted(number, seg)
    elif number in (4, 41):
        name = IPIP_NAMES[(hdr.version, number)]
        _tunnel(layer, name, seg, Net("ip" if number == 4 else "ipv6", 0), depth, descend=True)
    elif number == 47:
        found = gre(seg)
        if found is not None:
            _tunnel(layer, *found, depth, descend=True)
    return layer


def _tunnel(
    layer: IpLayer, name: str, inner: bytes, net: Net, depth: int, *, descend: bool
) -> None:
    """Record the tunnel ``name`` carrying ``inner`` in ``layer`` (see the module rules)."""
    if depth >= MAX_TUNNEL_DEPTH:
        layer.problem = f"tunnels nested deeper than {MAX_TUNNEL_DEPTH}"
        return
    problem = net.problem
    sub: IpLayer | str | None = None
    if net.kind in ("ip", "ipv6"):
        sub = _decode_ip(inner[net.offset :], net.kind, depth + 1)
    if isinstance(sub, IpLayer):
        entry = Endpoints(sub.proto, sub.src_ip, sub.dst_ip, sub.src_port, sub.dst_port, name)
        problem = sub.problem
    else:
        entry = Endpoints("other", None, None, None, None, name)
        if isinstance(sub, str):
            problem = sub
    layer.inner = [entry, *(sub.inner if isinstance(sub, IpLayer) else ())]
    if problem is not None and layer.problem is None:
        layer.problem = f"{name}: {problem}"
    if descend and isinstance(sub, IpLayer):
        layer.proto, layer.ip_proto = sub.proto, sub.ip_proto
        layer.src_port, layer.dst_port = sub.src_port, sub.dst_port
        layer.tcp_flags, layer.quoted = sub.tcp_flags, sub.quoted
        layer.dnssd, layer.instances = sub.dnssd, sub.instances
        if layer.fragment is None:
            layer.fragment = sub.fragment
