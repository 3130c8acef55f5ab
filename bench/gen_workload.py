#!/usr/bin/env python3
"""Deterministic synthetic capture for portsniff's benchmarks and equality tests.

A classic pcap (Ethernet, microsecond timestamps) of ``--packets`` packets over ``--flows``
conversations: about 80 % IPv4 and 20 % IPv6; TCP (handshake, data, FIN, and now and then a
new connection on the same ports) and UDP to well-known server ports from ephemeral client
ports, some flows with both ports registered (5353, 123, 47808 on both ends), 802.1Q tags on
a few flows (``--vlan``: their share; 1 for a trunk port's capture), a few IPv4 fragments
(``--fragments``: the share of big IPv4 UDP datagrams sent in two), ICMP echo and ARP.
``--link`` wraps every IP packet as a provider's network would: two VLAN tags (``qinq``),
two MPLS labels (``mpls``) or a PPPoE session (``pppoe``); or carries every frame in
VXLAN (``vxlan``: an overlay network, or a cloud's traffic mirror) or every IP packet in
GRE (``gre``), IP in IP (``ipip``: a Kubernetes network's IPIP mode; IPv6 in 6in4) or
Geneve with an option (``geneve``: a cloud's gateway load balancer) between two tunnel
endpoints. ``--stretch K`` makes every gap
between packets K times longer (the traffic of hours: flows go idle and are met again).
Flow popularity is heavy-tailed. Payloads are pseudo-random bytes. Same arguments, same
bytes.

    python3 bench/gen_workload.py --packets 100000 --seed 1 --out /tmp/w.pcap
"""

from __future__ import annotations

import argparse
import random
import struct
import sys

SERVERS = [  # (transport, port, weight)
    ("tcp", 443, 30),
    ("tcp", 80, 12),
    ("udp", 53, 12),
    ("tcp", 22, 3),
    ("udp", 123, 3),
    ("udp", 5353, 3),
    ("udp", 47808, 3),
    ("tcp", 44818, 2),
    ("tcp", 502, 2),
    ("tcp", 2222, 1),
    ("udp", 1900, 2),
    ("tcp", 3389, 1),
    ("udp", 161, 1),
    ("tcp", 8080, 2),
    ("udp", 443, 3),
]
BOTH_ENDS = {5353, 123, 47808}
ETH_IP4, ETH_IP6, ETH_ARP, ETH_VLAN = 0x0800, 0x86DD, 0x0806, 0x8100
ETH_QINQ, ETH_MPLS, ETH_PPPOE = 0x88A8, 0x8847, 0x8864
LINKS = ("ethernet", "qinq", "mpls", "pppoe", "vxlan", "gre", "ipip", "geneve")
VXLAN_PORT, GENEVE_PORT, IPPROTO_UDP, IPPROTO_GRE = 4789, 6081, 17, 47
TUNNEL_ENDS = (bytes((198, 51, 100, 1)), bytes((198, 51, 100, 2)))
TUNNEL_MACS = (b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02")
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Flow:
    """One conversation: endpoints, transport, and TCP state."""

    def __init__(
        self, rng: random.Random, v6: bool, vlan: float = 0.02, link: str = "ethernet"
    ) -> None:
        proto, port, _ = rng.choices(SERVERS, weights=[w for *_, w in SERVERS])[0]
        self.proto = proto
        self.v6 = v6
        if v6:
            self.client = b"\xfd\x00" + rng.randbytes(14)
            self.server = b"\x20\x01\x0d\xb8" + rng.randbytes(12)
        else:
            self.client = bytes((10, rng.randrange(4), rng.randrange(256), rng.randrange(1, 255)))
            self.server = bytes((192, 0, 2, rng.randrange(1, 255)))
        self.sport = port
        self.cport = (
            port if port in BOTH_ENDS and rng.random() < 0.5 else rng.randrange(32768, 61000)
        )
        tag = rng.randrange(1, 4095) if rng.random() < vlan else None
        self.vlan = tag
        self.mac_c = b"\x02" + rng.randbytes(5)
        self.mac_s = b"\x02" + rng.randbytes(5)
        self.link = link
        # The service tag, MPLS label or PPPoE session: from the MAC, not drawn (each
        # link wraps the same traffic).
        self.shim = 1 + int.from_bytes(self.mac_c[1:3], "big") % 4094
        self.state = 0  # TCP: 0 closed, 1 syn sent, 2 established
        self.seq = rng.getrandbits(32)


def _tunnel(to_server: bool, proto: int, payload: bytes) -> bytes:
    """An Ethernet frame from one tunnel endpoint to the other carrying ``payload``."""
    a, b = TUNNEL_ENDS if to_server else TUNNEL_ENDS[::-1]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, a, b)
    hdr = hdr[:10] + struct.pack("!H", _sum16(hdr)) + hdr[12:]
    macs = TUNNEL_MACS[1] + TUNNEL_MACS[0] if to_server else TUNNEL_MACS[0] + TUNNEL_MACS[1]
    return macs + struct.pack("!H", ETH_IP4) + hdr + payload


def _eth(f: Flow, to_server: bool, ethertype: int, payload: bytes) -> bytes:
    dst, src = (f.mac_s, f.mac_c) if to_server else (f.mac_c, f.mac_s)
    if f.link == "vxlan":  # the source port from the inner flow (RFC 7348), a VNI per flow
        frame = dst + src + struct.pack("!H", ethertype) + payload
        vx = struct.pack("!II", 0x08000000, f.shim << 8) + frame
        udp = struct.pack("!HHHH", 49152 + f.shim, VXLAN_PORT, 8 + len(vx), 0) + vx
        return _tunnel(to_server, IPPROTO_UDP, udp)
    if f.link == "geneve" and ethertype != ETH_ARP:  # an option of 8 bytes, then the packet
        option = struct.pack("!HBBQ", 0x0108, 1, 2, f.shim)
        gv = struct.pack("!BBHI", len(option) // 4, 0, ethertype, f.shim << 8) + option + payload
        udp = struct.pack("!HHHH", 49152 + f.shim, GENEVE_PORT, 8 + len(gv), 0) + gv
        return _tunnel(to_server, IPPROTO_UDP, udp)
    if f.link == "ipip" and ethertype != ETH_ARP:
        return _tunnel(to_server, 4 if ethertype == ETH_IP4 else 41, payload)
    if f.link == "gre" and ethertype != ETH_ARP:
        return _tunnel(to_server, IPPROTO_GRE, struct.pack("!HH", 0, ethertype) + payload)
    if f.link == "qinq":  # a service tag (the flow's), then a customer tag
        tags = struct.pack("!HHHH", ETH_QINQ, f.shim, ETH_VLAN, f.vlan or 1)
        return dst + src + tags + struct.pack("!H", ethertype) + payload
    if f.link == "mpls" and ethertype != ETH_ARP:  # a transport label, then a service one
        labels = struct.pack("!II", f.shim << 12 | 64, 16 << 12 | 1 << 8 | 64)
        return dst + src + struct.pack("!H", ETH_MPLS) + labels + payload
    if f.link == "pppoe" and ethertype != ETH_ARP:
        ppp = 0x0057 if ethertype == ETH_IP6 else 0x0021
        session = struct.pack("!BBHHH", 0x11, 0, f.shim, len(payload) + 2, ppp)
        return dst + src + struct.pack("!H", ETH_PPPOE) + session + payload
    if f.vlan is not None:
        return dst + src + struct.pack("!HHH", ETH_VLAN, f.vlan, ethertype) + payload
    return dst + src + struct.pack("!H", ethertype) + payload


def _ip(f: Flow, to_server: bool, proto: int, payload: bytes, ident: int, frag: int = 0) -> bytes:
    src, dst = (f.client, f.server) if to_server else (f.server, f.client)
    if f.v6:
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + src + dst + payload
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst
    )
    hdr = hdr[:10] + struct.pack("!H", _sum16(hdr)) + hdr[12:]
    return hdr + payload


def packet(
    f: Flow, rng: random.Random, pay: bytes, ident: int, fragments: float = 0.02
) -> list[bytes]:
    """The next packet(s) of flow ``f`` (two when the packet is sent in fragments)."""
    to_server = rng.random() < 0.55
    size = rng.choice((0, 40, 120, 512, 1200))
    off = rng.randrange(len(pay) - size)
    data = pay[off : off + size]
    if f.proto == "tcp":
        if f.state == 0:
            flags, to_server, data = SYN, True, b""
            f.state = 1
        elif f.state == 1:
            flags, to_server, data = SYN | ACK, False, b""
            f.state = 2
        elif rng.random() < 0.01:
            flags, data = FIN | ACK, b""
            f.state = 0  # the next packet opens a new connection on the same ports
        else:
            flags = ACK | (PSH if data else 0)
        sp, dp = (f.cport, f.sport) if to_server else (f.sport, f.cport)
        f.seq = (f.seq + len(data) + 1) & 0xFFFFFFFF
        seg = struct.pack("!HHIIBBHHH", sp, dp, f.seq, 0, 5 << 4, flags, 65535, 0, 0) + data
        return [_eth(f, to_server, ETH_IP6 if f.v6 else ETH_IP4, _ip(f, to_server, 6, seg, ident))]
    sp, dp = (f.cport, f.sport) if to_server else (f.sport, f.cport)
    dgram = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
    if not f.v6 and len(dgram) > 600 and rng.random() < fragments:
        cut = 512  # multiple of 8
        one = _ip(f, to_server, 17, dgram[:cut], ident, 0x2000)
        two = _ip(f, to_server, 17, dgram[cut:], ident, cut // 8)
        return [_eth(f, to_server, ETH_IP4, one), _eth(f, to_server, ETH_IP4, two)]
    return [_eth(f, to_server, ETH_IP6 if f.v6 else ETH_IP4, _ip(f, to_server, 17, dgram, ident))]


def extra(rng: random.Random, f: Flow, ident: int) -> bytes:
    """ICMP echo (or ICMPv6) between a flow's hosts, or an ARP request."""
    if rng.random() < 0.3:
        arp = struct.pack("!HHBBH", 1, ETH_IP4, 6, 4, 1) + f.mac_c + bytes(4) + bytes(6) + bytes(4)
        return b"\xff" * 6 + f.mac_c + struct.pack("!H", ETH_ARP) + arp
    if f.v6:
        msg = struct.pack("!BBHHH", 128, 0, 0, ident & 0xFFFF, 1) + b"ping" * 8
        return _eth(f, True, ETH_IP6, _ip(f, True, 58, msg, ident))
    msg = struct.pack("!BBHHH", 8, 0, 0, ident & 0xFFFF, 1) + b"ping" * 8
    msg = msg[:2] + struct.pack("!H", _sum16(msg)) + msg[4:]
    return _eth(f, True, ETH_IP4, _ip(f, True, 1, msg, ident))


def generate(
    packets: int,
    seed: int,
    flows: int,
    out: object,
    vlan: float = 0.02,
    fragments: float = 0.02,
    link: str = "ethernet",
    stretch: int = 1,
) -> None:
    """Write the workload as a pcap to the binary stream ``out``."""
    rng = random.Random(seed)
    pay = rng.randbytes(1 << 16)
    table = [Flow(rng, rng.random() < 0.2, vlan, link) for _ in range(flows)]
    weights = [rng.lognormvariate(0.0, 1.5) for _ in table]
    write = out.write  # type: ignore[attr-defined]
    write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    t_us = 1_700_000_000 * 1_000_000
    n = 0
    ident = 0
    while n < packets:
        for f in rng.choices(table, weights=weights, k=1024):
            t_us += rng.randrange(1, 200) * stretch
            ident = (ident + 1) & 0xFFFF
            frames = (
                [extra(rng, f, ident)]
                if rng.random() < 0.01
                else packet(f, rng, pay, ident, fragments)
            )
            for frame in frames:
                if n >= packets:
                    return
                write(
                    struct.pack(
                        "<IIII", t_us // 1_000_000, t_us % 1_000_000, len(frame), len(frame)
                    )
                )
                write(frame)
                n += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flows", type=int, default=5000)
    ap.add_argument("--vlan", type=float, default=0.02, help="share of flows with a VLAN tag")
    ap.add_argument(
        "--fragments",
        type=float,
        default=0.02,
        help="share of IPv4 UDP datagrams over 600 bytes sent in two fragments",
    )
    ap.add_argument(
        "--link",
        choices=LINKS,
        default="ethernet",
        help="what every IP packet is wrapped in: plain Ethernet, two VLAN tags, two MPLS "
        "labels or a PPPoE session",
    )
    ap.add_argument(
        "--stretch",
        type=int,
        default=1,
        help="every gap between packets this many times longer (300: 1M packets in 8 hours)",
    )
    ap.add_argument("--out", required=True, help="output pcap (- for stdout)")
    a = ap.parse_args(argv)
    args = (a.vlan, a.fragments, a.link, a.stretch)
    if a.out == "-":
        generate(a.packets, a.seed, a.flows, sys.stdout.buffer, *args)
    else:
        with open(a.out, "wb") as fh:
            generate(a.packets, a.seed, a.flows, fh, *args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
