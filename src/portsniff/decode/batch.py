"""Columnar decoded packets: what every engine hands to the annotator, a block at a time.

Columns are numpy arrays of one length; "none" is -1 for integer columns. Addresses are
16 bytes (IPv4 in the first 4, rest zero) with ``ip_version`` saying which. VLAN tags
are columns too (``vlan_tag`` and ``vlan_tag2``, outermost first: trunk captures tag every
packet, provider networks twice). Packets that needed more than the columns (fragments,
tunnels, ICMP quotes, DNS-SD, problems, three VLAN tags or more) have their full
``Decoded`` in ``details`` instead (their tag columns are -1: the tags are in the
Decoded).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from portsniff.decode.packet import PROTOS, Decoded

PROTO_CODE: dict[str, int] = {name: i for i, name in enumerate(PROTOS)}

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]


def packed_address(text: str) -> tuple[int, bytes]:
    """An address's version and its 16-byte column value (IPv4 zero-padded)."""
    try:
        if ":" in text:
            return 6, socket.inet_pton(socket.AF_INET6, text)
        return 4, socket.inet_pton(socket.AF_INET, text) + bytes(12)
    except OSError:  # a spelling inet_pton refuses (zone ids): ipaddress decides
        a = ipaddress.ip_address(text)
        return a.version, a.packed.ljust(16, b"\0")


def has_details(d: Decoded) -> bool:
    """Whether a packet needs its ``Decoded`` beside the columns (two VLAN tags do not)."""
    return bool(
        len(d.vlan) > 2
        or d.fragment
        or d.inner
        or d.quoted
        or d.dnssd
        or d.dnssd_instances
        or d.problem
    )


def vlan_tuple(tag: int, tag2: int) -> tuple[int, ...]:
    """Decoded.vlan of a row whose first and second VLAN tags are ``tag`` and ``tag2``
    (-1: none)."""
    return () if tag < 0 else (tag,) if tag2 < 0 else (tag, tag2)


def vlan_tuples(tags: I32, tags2: I32) -> list[tuple[int, ...]]:
    """:func:`vlan_tuple` of every row."""
    return list(map(vlan_tuple, tags.tolist(), tags2.tolist()))


@dataclass(slots=True)
class DecodedBatch:
    """A block of decoded packets (see module docstring)."""

    file: str
    first_frame: int
    ts_ns: I64
    wirelen: I64
    caplen: I64
    linktype: I32
    ip_version: U8  # 0 (not IP), 4 or 6
    src_addr: npt.NDArray[np.void]  # dtype "V16"
    dst_addr: npt.NDArray[np.void]
    proto: U8  # index into PROTOS
    ip_proto: I32
    src_port: I32
    dst_port: I32
    tcp_flags: I32
    vlan_tag: I32  # the first VLAN tag of a row without details, else -1
    vlan_tag2: I32  # its second tag, else -1
    details: dict[int, Decoded] = field(default_factory=dict)
    comments: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    @classmethod
    def empty(cls, file: str, first_frame: int, n: int) -> DecodedBatch:
        """A batch of ``n`` packets with every column at its "none" value."""
        return cls(
            file=file,
            first_frame=first_frame,
            ts_ns=np.zeros(n, np.int64),
            wirelen=np.zeros(n, np.int64),
            caplen=np.zeros(n, np.int64),
            linktype=np.zeros(n, np.int32),
            ip_version=np.zeros(n, np.uint8),
            src_addr=np.zeros(n, "V16"),
            dst_addr=np.zeros(n, "V16"),
            proto=np.full(n, PROTO_CODE["other"], np.uint8),
            ip_proto=np.full(n, -1, np.int32),
            src_port=np.full(n, -1, np.int32),
            dst_port=np.full(n, -1, np.int32),
            tcp_flags=np.full(n, -1, np.int32),
            vlan_tag=np.full(n, -1, np.int32),
            vlan_tag2=np.full(n, -1, np.int32),
        )

    def vlan(self, i: int) -> tuple[int, ...]:
        """The VLAN tags of row ``i`` (outermost first)."""
        d = self.details.get(i)
        if d is not None:
            return d.vlan
        return vlan_tuple(int(self.vlan_tag[i]), int(self.vlan_tag2[i]))

    def set_decoded(self, i: int, d: Decoded) -> None:
        """Fill row ``i`` from a per-packet ``Decoded`` (engines decoding one by one)."""
        self.linktype[i] = d.linktype
        self.proto[i] = PROTO_CODE[d.proto]
        self.ip_proto[i] = -1 if d.ip_proto is None else d.ip_proto
        self.src_port[i] = -1 if d.src_port is None else d.src_port
        self.dst_port[i] = -1 if d.dst_port is None else d.dst_port
        self.tcp_flags[i] = -1 if d.tcp_flags is None else d.tcp_flags
        if d.src_ip is not None and d.dst_ip is not None:
            version, src = packed_address(d.src_ip)
            self.ip_version[i] = version
            self.src_addr[i] = src
            self.dst_addr[i] = packed_address(d.dst_ip)[1]
        if has_details(d):
            self.details[i] = d
        elif d.vlan:
            self._set_tags(i, d.vlan)

    def set_decoded_rows(self, rows: Sequence[int], decoded: Sequence[Decoded]) -> None:
        """Fill ``rows`` from their ``Decoded`` (column by column: one numpy assignment
        per column, not per row and column)."""
        if not rows:
            return
        at = np.asarray(rows, np.int64)
        self.linktype[at] = [d.linktype for d in decoded]
        self.proto[at] = [PROTO_CODE[d.proto] for d in decoded]
        self.ip_proto[at] = [-1 if d.ip_proto is None else d.ip_proto for d in decoded]
        self.src_port[at] = [-1 if d.src_port is None else d.src_port for d in decoded]
        self.dst_port[at] = [-1 if d.dst_port is None else d.dst_port for d in decoded]
        self.tcp_flags[at] = [-1 if d.tcp_flags is None else d.tcp_flags for d in decoded]
        ip_rows: list[int] = []
        versions: list[int] = []
        srcs: list[bytes] = []
        dsts: list[bytes] = []
        for i, d in zip(rows, decoded, strict=True):
            if d.src_ip is not None and d.dst_ip is not None:
                version, src = packed_address(d.src_ip)
                dst = packed_address(d.dst_ip)[1]
                ip_rows.append(i)
                versions.append(version)
                srcs.append(src)
                dsts.append(dst)
            if has_details(d):
                self.details[i] = d
            elif d.vlan:
                self._set_tags(i, d.vlan)
        if ip_rows:
            self.ip_version[ip_rows] = versions
            self.src_addr[ip_rows] = np.frombuffer(b"".join(srcs), "V16")
            self.dst_addr[ip_rows] = np.frombuffer(b"".join(dsts), "V16")

    def _set_tags(self, i: int, vlan: tuple[int, ...]) -> None:
        self.vlan_tag[i] = vlan[0]
        if len(vlan) > 1:
            self.vlan_tag2[i] = vlan[1]

    def ip_str(self, i: int, which: str) -> str | None:
        """``src`` or ``dst`` address of packet ``i`` as text, or None when not IP."""
        version = int(self.ip_version[i])
        if version == 0:
            return None
        raw = bytes(self.src_addr[i] if which == "src" else self.dst_addr[i])
        if version == 4:
            return str(ipaddress.IPv4Address(raw[:4]))
        return str(ipaddress.IPv6Address(raw))
