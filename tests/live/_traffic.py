"""Test traffic inside a test network namespace (run with ``ip netns exec``).

``serve ADDR``: listen on UDP 47808, 53, 50000 and TCP 44818 (a real listening socket,
so that the handshake completes), print ``ready``, then wait for stdin to close.
``send ADDR``: send one BACnet datagram, one DNS query, one datagram to UDP 50000 and
open one TCP connection to 44818 (SYN, SYN-ACK, ACK), print ``sent``, then keep the
connection open until stdin closes (so that no FIN is sent while capturing).
"""

from __future__ import annotations

import socket
import struct
import sys
import time

UDP_PORTS = (47808, 53, 50000)
TCP_PORT = 44818
SOURCE_PORT = 60001


def dns_query(name: str) -> bytes:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return header + labels + struct.pack("!HH", 1, 1)


def serve(addr: str) -> None:
    socks = []
    for port in UDP_PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, port))
        socks.append(s)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, TCP_PORT))
    listener.listen(4)
    print("ready", flush=True)
    sys.stdin.read()


def send(addr: str) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A fixed source port above 50000: between two unassigned ports the lower one is the
    # service side, so the datagram to 50000 is labelled udp/50000 whatever the kernel
    # would have picked.
    udp.bind(("", SOURCE_PORT))
    # BACnet/IP BVLC header + a Who-Is APDU.
    udp.sendto(bytes.fromhex("810b000c0120ffff00ff1008"), (addr, 47808))
    udp.sendto(dns_query("example.test"), (addr, 53))
    udp.sendto(b"unassigned port", (addr, 50000))
    tcp = socket.create_connection((addr, TCP_PORT), timeout=5)
    time.sleep(0.2)  # let the final ACK of the handshake leave
    print("sent", flush=True)
    sys.stdin.read()
    tcp.close()


if __name__ == "__main__":
    {"serve": serve, "send": send}[sys.argv[1]](sys.argv[2])
