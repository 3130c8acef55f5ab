"""Columnar decoded packets: what every engine hands to the annotator, a block at a time.

Columns are numpy arrays of one length; "none" is -1 for integer columns. Addresses are
16 bytes (IPv4 in the first 4, rest zero) with ``ip_version`` saying which. VLAN tags
are columns too (``vlan_tag`` and ``vlan_tag2``, outermost first: trunk captures tag every
packet, provider networks twice). Packets carried by one tunnel keep their inner header in
columns too (:class:`Tunnels`: overlay networks and traffic mirrors carry every packet
in VXLAN, Geneve or GRE). Packets that needed more than the columns (fragments, nested
tunnels, ICMP quotes, DNS-SD, problems, three VLAN tags or more) have their full
``Decoded`` in ``details`` instead (their tag columns are -1: the tags are in the
Decoded).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from portsniff.decode.ip import address_text
from portsniff.decode.packet import PROTOS, Decoded, Endpoints

PROTO_CODE: dict[str, int] = {name: i for i, name in enumerate(PROTOS)}
#: The tunnels whose inner header :class:`Tunnels` columns hold (Endpoints.tunnel).
TUNNELS = ("vxlan", "geneve", "teredo", "gre", "erspan", "ipip", "6in4", "4in6", "6in6")
TUNNEL_CODE: dict[str, int] = {name: i for i, name in enumerate(TUNNELS)}

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
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


def in_columns(d: Decoded) -> bool:
    """Whether a tunnelled packet's ``Decoded`` is all in the columns: one tunnel (of
    TUNNELS) carrying an IP header, nothing else beyond two VLAN tags."""
    if len(d.inner) != 1 or len(d.vlan) > 2:
        return False
    if d.fragment or d.quoted or d.dnssd or d.dnssd_instances or d.problem:
        return False
    return fits_columns(d.inner[0])


class InnerHeader(Protocol):
    """What the tunnels' columns hold of a tunnelled header (Endpoints, or a labelled
    header of a record)."""

    @property
    def proto(self) -> str: ...
    @property
    def src_ip(self) -> str | None: ...
    @property
    def dst_ip(self) -> str | None: ...
    @property
    def src_port(self) -> int | None: ...
    @property
    def dst_port(self) -> int | None: ...
    @property
    def tunnel(self) -> str | None: ...


def fits_columns(e: InnerHeader) -> bool:
    """Whether a tunnelled header fits the tunnels' columns: an IP header of a tunnel of
    TUNNELS, its addresses of one version and written as address_text writes them."""
    if e.tunnel not in TUNNEL_CODE or e.src_ip is None or e.dst_ip is None:
        return False
    if e.proto not in PROTO_CODE:
        return False
    versions = set()
    for ip in (e.src_ip, e.dst_ip):
        version, raw = packed_address(ip)
        if address_text(version, raw) != ip:
            return False
        versions.add(version)
    return len(versions) == 1


def has_details(d: Decoded) -> bool:
    """Whether a packet needs its ``Decoded`` beside the columns (two VLAN tags do not;
    a tunnel that fits the tunnels' columns is told apart first, by :func:`in_columns`)."""
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
class Tunnels:
    """The inner header of the rows carried by one tunnel: ``row`` (ascending) names
    them, the other columns are theirs (ports -1: none). ``side`` is the labelled
    service side of the inner header (0 none, 1 src, 2 dst: labelled batches fill it).
    Rows without a tunnel take no room: most traffic has few."""

    row: I64
    tunnel: I8  # index into TUNNELS
    ip_version: U8
    src_addr: npt.NDArray[np.void]  # "V16", as DecodedBatch's
    dst_addr: npt.NDArray[np.void]
    proto: U8  # index into PROTOS
    src_port: I32
    dst_port: I32
    side: I8

    @classmethod
    def of(cls, rows: Sequence[int], inner: Sequence[InnerHeader]) -> Tunnels:
        """Rows ``rows`` (ascending) carry ``inner`` (IP headers in tunnels of TUNNELS)."""
        versions: list[int] = []
        srcs: list[bytes] = []
        dsts: list[bytes] = []
        for e in inner:
            assert e.tunnel is not None and e.src_ip is not None and e.dst_ip is not None
            version, src = packed_address(e.src_ip)
            versions.append(version)
            srcs.append(src)
            dsts.append(packed_address(e.dst_ip)[1])
        return cls(
            row=np.array(rows, np.int64),
            tunnel=np.array([TUNNEL_CODE[e.tunnel] for e in inner], np.int8),  # type: ignore[index]
            ip_version=np.array(versions, np.uint8),
            src_addr=np.frombuffer(b"".join(srcs), "V16").copy(),
            dst_addr=np.frombuffer(b"".join(dsts), "V16").copy(),
            proto=np.array([PROTO_CODE[e.proto] for e in inner], np.uint8),
            src_port=np.array([-1 if e.src_port is None else e.src_port for e in inner], np.int32),
            dst_port=np.array([-1 if e.dst_port is None else e.dst_port for e in inner], np.int32),
            side=np.zeros(len(inner), np.int8),
        )

    def __len__(self) -> int:
        return int(self.row.shape[0])

    def _pick(self, at: I64 | slice, row: I64) -> Tunnels:
        """Entries ``at``, numbered ``row``."""
        return Tunnels(row, *(getattr(self, name)[at] for name in _TUNNEL_COLUMNS[1:]))

    def pick(self, at: I64) -> Tunnels:
        """Entries ``at``, in that order."""
        return self._pick(at, self.row[at])

    def take(self, rows: I64) -> Tunnels:
        """The entries of batch rows ``rows`` (ascending), numbered as in ``rows``."""
        at = np.searchsorted(self.row, rows)
        at = np.minimum(at, max(len(self) - 1, 0))
        hit = self.row[at] == rows if len(self) else np.zeros(rows.size, np.bool_)
        return self._pick(at[hit], np.flatnonzero(hit).astype(np.int64))

    def slice(self, a: int, b: int) -> Tunnels:
        """The entries of batch rows ``a`` to ``b`` (exclusive), numbered from ``a``."""
        lo, hi = np.searchsorted(self.row, [a, b]).tolist()
        return self._pick(slice(lo, hi), self.row[lo:hi] - a)

    def merged(self, other: Tunnels) -> Tunnels:
        """These entries and ``other``'s (of other rows), by row."""
        cols = [np.concatenate([getattr(self, n), getattr(other, n)]) for n in _TUNNEL_COLUMNS]
        order = np.argsort(cols[0], kind="stable")
        return Tunnels(*(c[order] for c in cols))

    @staticmethod
    def concat(parts: Sequence[Tunnels | None], lengths: Sequence[int]) -> Tunnels | None:
        """The entries of batches one after another (None where a batch has none)."""
        if all(p is None for p in parts):
            return None
        at = np.cumsum([0, *lengths[:-1]]).tolist()
        have = [(p, k) for p, k in zip(parts, at, strict=True) if p is not None]
        return Tunnels(
            np.concatenate([p.row + k for p, k in have]),
            *(np.concatenate([getattr(p, n) for p, _ in have]) for n in _TUNNEL_COLUMNS[1:]),
        )

    def rows(self) -> I64:
        """The tunnelled rows."""
        return self.row

    def without(self, rows: I64) -> Tunnels:
        """These entries but those of ``rows``."""
        keep = ~np.isin(self.row, rows)
        return self._pick(np.flatnonzero(keep), self.row[keep])

    def endpoints(self, k: int) -> Endpoints:
        """Entry ``k``'s inner header."""
        version = int(self.ip_version[k])
        sp, dp = int(self.src_port[k]), int(self.dst_port[k])
        return Endpoints(
            PROTOS[int(self.proto[k])],
            address_text(version, bytes(self.src_addr[k])),
            address_text(version, bytes(self.dst_addr[k])),
            None if sp < 0 else sp,
            None if dp < 0 else dp,
            TUNNELS[int(self.tunnel[k])],
        )

    def entry(self, i: int) -> int | None:
        """The entry of batch row ``i`` (None: not tunnelled)."""
        k = int(np.searchsorted(self.row, i))
        return k if k < len(self) and int(self.row[k]) == i else None

    def differences(self, other: Tunnels, limit: int) -> list[str]:
        """How two tunnels' entries differ (``side`` aside)."""
        if not np.array_equal(self.row, other.row):
            return [f"tunnelled rows: {self.row[:limit].tolist()} != {other.row[:limit].tolist()}"]
        out: list[str] = []
        for name in _TUNNEL_COLUMNS[1:-1]:
            x, y = getattr(self, name), getattr(other, name)
            for k in np.flatnonzero(x != y)[:limit].tolist():
                out.append(f"row {int(self.row[k])} tunnel {name}: {x[k]!r} != {y[k]!r}")
        return out[:limit]


_TUNNEL_COLUMNS = (
    "row",
    "tunnel",
    "ip_version",
    "src_addr",
    "dst_addr",
    "proto",
    "src_port",
    "dst_port",
    "side",
)
NO_TUNNELS = Tunnels.of([], [])


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
    #: Tunnelled rows (None: none). Rows set one by one wait in ``pending`` until read.
    tunnels_: Tunnels | None = None
    pending: list[tuple[int, Endpoints]] = field(default_factory=list)

    @property
    def tunnels(self) -> Tunnels | None:
        """The tunnelled rows' inner headers (None: none)."""
        if self.pending:
            self.pending.sort(key=lambda p: p[0])
            rows = [i for i, _ in self.pending]
            more = Tunnels.of(rows, [e for _, e in self.pending])
            self.pending = []
            old = self.tunnels_
            if old is not None:
                old = old.without(more.row)
            self.tunnels_ = more if old is None else old.merged(more)
        return self.tunnels_

    @tunnels.setter
    def tunnels(self, value: Tunnels | None) -> None:
        self.pending = []
        self.tunnels_ = value

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

    def add_tunnels(self, more: Tunnels) -> None:
        """Rows carried by tunnels (rows that had none)."""
        t = self.tunnels
        self.tunnels = more if t is None else t.merged(more)

    def detail(self, i: int) -> Decoded | None:
        """Row ``i``'s ``Decoded`` when it has more than the plain columns (details, or
        a tunnel in the tunnels' columns), else None."""
        d = self.details.get(i)
        t = self.tunnels
        k = None if d is not None or t is None else t.entry(i)
        if k is None:
            return d
        fl = int(self.tcp_flags[i])
        sp, dp, ipp = int(self.src_port[i]), int(self.dst_port[i]), int(self.ip_proto[i])
        return Decoded(
            linktype=int(self.linktype[i]),
            src_ip=self.ip_str(i, "src"),
            dst_ip=self.ip_str(i, "dst"),
            proto=PROTOS[int(self.proto[i])],
            ip_proto=None if ipp < 0 else ipp,
            src_port=None if sp < 0 else sp,
            dst_port=None if dp < 0 else dp,
            tcp_flags=None if fl < 0 else fl,
            vlan=self.vlan(i),
            inner=(t.endpoints(k),),  # type: ignore[union-attr]
        )

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
        self._set_rest(i, d)

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
            self._set_rest(i, d)
        if ip_rows:
            self.ip_version[ip_rows] = versions
            self.src_addr[ip_rows] = np.frombuffer(b"".join(srcs), "V16")
            self.dst_addr[ip_rows] = np.frombuffer(b"".join(dsts), "V16")

    def _set_rest(self, i: int, d: Decoded) -> None:
        """Row ``i``'s tunnel, details and tags from ``d`` (the other columns set)."""
        if d.inner and in_columns(d):
            self.pending.append((i, d.inner[0]))
        elif has_details(d):
            self.details[i] = d
            return
        if d.vlan:
            self._set_tags(i, d.vlan)

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
