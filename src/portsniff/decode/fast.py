"""The ``fast`` engine: numpy over the raw bytes of a block, the reference decoder for the rest.

Common packets (Ethernet with at most one VLAN tag, raw IP, BSD loopback or Linux cooked
capture carrying IPv4/IPv6 with a whole TCP or UDP header, ICMP that is not an error,
ARP; IPv4 fragments, the first with its transport header; and VXLAN or GRE whose inner
packet is such a packet, untagged and unfragmented) are decoded for the whole block at
once by :mod:`portsniff.decode.vector` (VLAN tags and a tunnel's inner IP header are
columns); fragments get their Decoded from the columns. Every other packet - IPv6
fragments, other tunnels, ICMP errors, DNS-SD, truncated or malformed headers, other link
types - is handed to the reference decoder one by one, so the batch is always exactly the
reference's batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from portsniff.capture.block import RawBlock
from portsniff.decode import vector
from portsniff.decode.batch import (
    I32,
    NO_TUNNELS,
    PROTO_CODE,
    TUNNEL_CODE,
    DecodedBatch,
    Tunnels,
    vlan_tuples,
)
from portsniff.decode.ip import address_text
from portsniff.decode.packet import PROTOS, Decoded, Endpoints, Fragment


def blank_batch(block: RawBlock) -> DecodedBatch:
    """A batch for ``block``: the block's own columns copied, every decoded column "none"."""
    batch = DecodedBatch.empty(block.file, block.first_frame, len(block))
    batch.ts_ns[:] = block.ts_ns
    batch.wirelen[:] = block.wirelen
    batch.caplen[:] = block.caplen
    batch.linktype[:] = block.linktype
    batch.comments = dict(block.comments)
    return batch


def _fallback(block: RawBlock, batch: DecodedBatch, rows: npt.NDArray[np.int64]) -> None:
    # Imported late: most blocks of typical traffic need the reference for few rows.
    from portsniff.decode.reference import decode_packet

    at = rows.tolist()
    linktypes = block.linktype[rows].tolist()
    wirelens = block.wirelen[rows].tolist()
    packet = block.packet
    batch.set_decoded_rows(
        at,
        [
            decode_packet(lt, packet(i), wl)
            for i, lt, wl in zip(at, linktypes, wirelens, strict=True)
        ],
    )


def reference_batch(block: RawBlock) -> DecodedBatch:
    """The batch of ``block`` decoded packet by packet by the reference decoder.

    This is the specification every engine's ``decode`` must equal.
    """
    batch = blank_batch(block)
    _fallback(block, batch, np.arange(len(block)))
    return batch


#: IP protocol number -> PROTO_CODE of the packet's ``proto``.
_PROTO_CODE_OF = np.array([PROTO_CODE[name] for name in vector.PROTO_NAME], np.uint8)


def vector_rows(block: RawBlock, batch: DecodedBatch) -> npt.NDArray[np.bool_]:
    """Fill the rows of ``batch`` that the vectorised kernels decode; return their mask."""
    n = len(block)
    done = np.zeros(n, np.bool_)
    if n == 0:
        return done
    buf = np.frombuffer(block.data, np.uint8)
    offset = block.offset.astype(np.int64, copy=False)
    caplen = block.caplen.astype(np.int64, copy=False)
    linktype = block.linktype.astype(np.int32, copy=True)
    # Guard the gathers: a row must lie inside the buffer (else the reference judges it).
    linktype[(offset < 0) | (caplen < 0) | (offset + caplen > buf.shape[0])] = -1

    layer = vector.link_layer(buf, offset, caplen, linktype)
    vlan = np.full(n, -1, np.int32)
    vlan[layer.rows] = layer.vlan
    vlan2 = np.full(n, -1, np.int32)
    vlan2[layer.rows] = layer.vlan2
    tunnelled = np.zeros(n, np.bool_)
    detailed = np.zeros(n, np.bool_)  # rows given a Decoded (their tags are in it)
    fragments: list[vector.Fragments] = []
    v4, v6 = vector.network(buf, layer, fragments)
    (frags,) = fragments
    assert frags.later is not None
    for net in (v4, v6, frags.later):
        _fill(batch, buf, net)
        done[net.rows] = True
        for outer, inside, name, descend in _tunnels_of(buf, net):
            rows, own = _add_tunnel_details(batch, buf, outer, inside, name, descend, vlan, vlan2)
            done[rows] = tunnelled[rows] = True
            detailed[own] = True
    for kind, name in ((vector.KIND_ARP, "arp"), (vector.KIND_OTHER, "other")):
        rows = layer.rows[layer.kind == kind]
        batch.proto[rows] = PROTO_CODE[name]
        done[rows] = True
    if frags.rows.size:
        # A first fragment carrying VXLAN is the reference's to decode.
        gone = frags.rows[tunnelled[frags.rows]]
        done[gone] = False
        if gone.size and batch.tunnels is not None:
            batch.tunnels = batch.tunnels.without(gone)
        keep = done[frags.rows]
        rows = frags.rows[keep]
        tags = vlan_tuples(vlan[rows], vlan2[rows])
        _add_fragment_details(batch, rows, frags.ip_id[keep], frags.field[keep], tags)
        detailed[rows] = True
    # The tags of a row with a Decoded are in it; the other rows' are columns.
    tagged = np.flatnonzero(done & (vlan >= 0) & ~detailed)
    batch.vlan_tag[tagged] = vlan[tagged]
    batch.vlan_tag2[tagged] = vlan2[tagged]
    return done


def _fill(batch: DecodedBatch, buf: npt.NDArray[np.uint8], net: vector.Network) -> None:
    """Write the columns of ``net``'s rows."""
    rows = net.rows
    if not rows.size:
        return
    width = 4 if int(net.ip_version[0]) == 4 else 16
    batch.ip_version[rows] = net.ip_version
    batch.ip_proto[rows] = net.ip_proto
    batch.proto[rows] = _PROTO_CODE_OF[net.ip_proto]
    batch.src_port[rows] = net.src_port
    batch.dst_port[rows] = net.dst_port
    batch.tcp_flags[rows] = net.tcp_flags
    src, dst = _addresses(buf, net, width)
    batch.src_addr.view(np.uint8).reshape(-1, 16)[rows, :width] = src
    batch.dst_addr.view(np.uint8).reshape(-1, 16)[rows, :width] = dst


def _addresses(
    buf: npt.NDArray[np.uint8], net: vector.Network, width: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The source and destination addresses of ``net``'s rows, ``width`` bytes each."""
    # Each address is one gather from an overlapping view (element p = the ``width``
    # bytes at p), not a (rows, width) index matrix.
    at = np.ndarray((buf.shape[0] - width + 1,), f"V{width}", buf, strides=(1,))
    src = at[net.src_pos].view(np.uint8).reshape(-1, width)
    dst = at[net.src_pos + width].view(np.uint8).reshape(-1, width)
    return src, dst


@dataclass(slots=True)
class _InnerIp:
    """The inner IP packets of tunnels that the kernels decode, as columns."""

    at: npt.NDArray[np.int64]  # the tunnel's position (``layer.rows``), ascending
    ip_version: npt.NDArray[np.uint8]
    src_addr: npt.NDArray[np.void]  # "V16"
    dst_addr: npt.NDArray[np.void]
    ip_proto: I32
    src_port: I32
    dst_port: I32
    tcp_flags: I32


def _inner_ip(buf: npt.NDArray[np.uint8], layer: vector.Layer3) -> _InnerIp:
    """The inner IP packets of ``layer`` (tunnels' payloads) that the kernels decode."""
    parts: list[tuple[Any, ...]] = []
    for net in vector.network(buf, layer):
        if not net.rows.size:
            continue
        width = 4 if int(net.ip_version[0]) == 4 else 16
        src, dst = _addresses(buf, net, width)
        s16 = np.zeros((net.rows.size, 16), np.uint8)
        d16 = np.zeros((net.rows.size, 16), np.uint8)
        s16[:, :width] = src
        d16[:, :width] = dst
        parts.append(
            (
                net.rows,
                net.ip_version,
                s16.view("V16").reshape(-1),
                d16.view("V16").reshape(-1),
                net.ip_proto,
                net.src_port,
                net.dst_port,
                net.tcp_flags,
            )
        )
    if not parts:
        return _InnerIp(
            np.zeros(0, np.int64),
            np.zeros(0, np.uint8),
            np.zeros(0, "V16"),
            np.zeros(0, "V16"),
            *(np.zeros(0, np.int32) for _ in range(4)),
        )
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.argsort(cols[0], kind="stable")
    at, version, src16, dst16, ip_proto, sport, dport, flags = (c[order] for c in cols)
    return _InnerIp(
        at.astype(np.int64),
        version.astype(np.uint8),
        src16,
        dst16,
        ip_proto.astype(np.int32),
        sport.astype(np.int32),
        dport.astype(np.int32),
        flags.astype(np.int32),
    )


def _put_tunnels(batch: DecodedBatch, rows: npt.NDArray[np.int64], name: str, ip: _InnerIp) -> None:
    """Rows ``rows`` carry ``ip``'s packets (one each) in tunnel ``name``: the tunnels'
    columns."""
    batch.add_tunnels(
        Tunnels(
            row=rows,
            tunnel=np.full(rows.size, TUNNEL_CODE[name], np.int8),
            ip_version=ip.ip_version,
            src_addr=ip.src_addr,
            dst_addr=ip.dst_addr,
            proto=_PROTO_CODE_OF[ip.ip_proto],
            src_port=ip.src_port,
            dst_port=ip.dst_port,
            side=np.zeros(rows.size, np.int8),
        )
    )


_OTHER_INNER = ("other", None, None, None, None)


def _tunnels_of(
    buf: npt.NDArray[np.uint8], net: vector.Network
) -> list[tuple[vector.Network, vector.Layer3, str, bool]]:
    """The tunnels of ``net`` the kernels follow: their outer columns, the inner network
    layer (by position in the outer rows), the tunnel's name, and whether the row takes
    the inner packet's transport (reference._tunnel's ``descend``: GRE, IP in IP)."""
    out: list[tuple[vector.Network, vector.Layer3, str, bool]] = []
    if net.vxlan is not None and net.vxlan.outer.rows.size:
        out.append((net.vxlan.outer, _vxlan_frames(buf, net.vxlan), "vxlan", False))
    carried = [("geneve", net.geneve, False), ("gre", net.gre, True)]
    carried += [(name, g, True) for name, g in net.ipip or ()]
    for name, g, descend in carried:
        if g is not None and g.outer.rows.size:
            at = np.arange(g.outer.rows.size)
            out.append(
                (g.outer, vector._after_ethertype(buf, at, g.etype, g.l3, g.end), name, descend)
            )
    return out


def _vxlan_frames(buf: npt.NDArray[np.uint8], vx: vector.Vxlan) -> vector.Layer3:
    """The inner frames of VXLAN datagrams that the kernels decode (untagged Ethernet:
    IP as the outer rows are decoded, other EtherTypes as "other"), by their position
    in ``vx.outer``."""
    # The inner Ethernet frame (tunnels.udp_tunnel: link.ethernet of the payload after
    # the VXLAN header), without VLAN tags.
    sel = np.flatnonzero(vx.end - vx.inner >= 14)
    etype = vector.u16(buf, vx.inner[sel] + 12)
    kind = vector.ETHERTYPE_KIND[etype]
    ok = (kind != vector.KIND_DROP) & ~vector.IS_VLAN_TPID[etype]
    sel, kind = sel[ok], kind[ok]
    return vector.Layer3(
        rows=sel,  # positions in ``vx.outer``
        l3=vx.inner[sel] + 14,
        end=vx.end[sel],
        kind=kind,
        vlan=np.full(sel.size, -1, np.int32),
        vlan2=np.full(sel.size, -1, np.int32),
    )


def _add_tunnel_details(
    batch: DecodedBatch,
    buf: npt.NDArray[np.uint8],
    outer: vector.Network,
    layer: vector.Layer3,
    name: str,
    descend: bool,
    vlan: I32,
    vlan2: I32,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Decode the packets ``outer`` of tunnel ``name`` whose inner network layer
    (``layer``, by position in ``outer``) the kernels decode. With ``descend`` a row
    carrying an IP packet takes its transport, ports and flags. Write their columns (an
    inner IP header in the tunnels') or Decoded (a non-IP inner frame: the outer row).
    Returns those rows (the rest are left to the reference), and the rows given a
    Decoded."""
    ip = _inner_ip(buf, layer)
    other = layer.rows[(layer.kind == vector.KIND_ARP) | (layer.kind == vector.KIND_OTHER)]
    at = np.sort(np.concatenate([ip.at, other]))
    if not at.size:
        return at, at
    part = outer.take(at)
    if descend:
        j = np.searchsorted(at, ip.at)
        part.ip_proto[j] = ip.ip_proto
        part.src_port[j] = ip.src_port
        part.dst_port[j] = ip.dst_port
        part.tcp_flags[j] = ip.tcp_flags
    _fill(batch, buf, part)
    _put_tunnels(batch, outer.rows[ip.at], name, ip)
    rows = outer.rows[other]
    keys = zip(
        batch.linktype[rows].tolist(),
        batch.ip_version[rows].tolist(),
        batch.src_addr[rows].tolist(),
        batch.dst_addr[rows].tolist(),
        batch.ip_proto[rows].tolist(),
        batch.src_port[rows].tolist(),
        batch.dst_port[rows].tolist(),
        vlan_tuples(vlan[rows], vlan2[rows]),
        repeat(name),
        strict=False,
    )
    _put_details(batch, rows, keys, _OTHER_INNER_DECODED, _other_inner_decoded)
    return part.rows, rows


#: Decoded of tunnelled rows carrying a non-IP frame, by their values.
_OTHER_INNER_DECODED: dict[tuple[Any, ...], Decoded] = {}


def _other_inner_decoded(
    lt: int,
    version: int,
    src: bytes,
    dst: bytes,
    ip_proto: int,
    sport: int,
    dport: int,
    tags: tuple[int, ...],
    name: str,
) -> Decoded:
    return Decoded(
        linktype=lt,
        src_ip=address_text(version, src),
        dst_ip=address_text(version, dst),
        proto=vector.PROTO_NAME[ip_proto],
        ip_proto=ip_proto,
        src_port=None if sport < 0 else sport,
        dst_port=None if dport < 0 else dport,
        vlan=tags,
        inner=(Endpoints(*_OTHER_INNER, name),),
    )


#: Distinct values whose Decoded a cache keeps (then it starts again).
_DECODED_CACHE = 100_000


def _put_details(
    batch: DecodedBatch,
    rows: npt.NDArray[np.int64],
    keys: Iterable[tuple[Any, ...]],
    cache: dict[tuple[Any, ...], Decoded],
    make: Callable[..., Decoded],
) -> None:
    """Each row's Decoded, ``make(*key)`` of its values, made once per distinct values:
    a Decoded is immutable, and the packets of a flow repeat the same values."""
    details = batch.details
    for i, key in zip(rows.tolist(), keys, strict=True):
        got = cache.get(key)
        if got is None:
            if len(cache) >= _DECODED_CACHE:
                cache.clear()
            got = cache[key] = make(*key)
        details[i] = got


def _add_fragment_details(
    batch: DecodedBatch,
    rows: npt.NDArray[np.int64],
    ip_id: I32,
    field: I32,
    tags: list[tuple[int, ...]],
) -> None:
    """Put the Decoded of IPv4 fragments ``rows`` (their columns filled) in
    ``batch.details``: the reference's, its Fragment keyed by the header's protocol."""
    texts: dict[bytes, str] = {}

    def text(raw: bytes) -> str:
        got = texts.get(raw)
        if got is None:
            got = texts[raw] = address_text(4, raw)
        return got

    details = batch.details
    for i, lt, src, dst, proto, ip_proto, sp, dp, fl, ident, word, vlan in zip(
        rows.tolist(),
        batch.linktype[rows].tolist(),
        batch.src_addr[rows].tolist(),
        batch.dst_addr[rows].tolist(),
        batch.proto[rows].tolist(),
        batch.ip_proto[rows].tolist(),
        batch.src_port[rows].tolist(),
        batch.dst_port[rows].tolist(),
        batch.tcp_flags[rows].tolist(),
        ip_id.tolist(),
        field.tolist(),
        tags,
        strict=True,
    ):
        s, d = text(src), text(dst)
        details[i] = Decoded(
            linktype=lt,
            src_ip=s,
            dst_ip=d,
            proto=PROTOS[proto],
            ip_proto=ip_proto,
            src_port=None if sp < 0 else sp,
            dst_port=None if dp < 0 else dp,
            tcp_flags=None if fl < 0 else fl,
            vlan=vlan,
            fragment=Fragment((s, d, ident, ip_proto), (word & 0x1FFF) * 8, bool(word & 0x2000)),
        )


_COLUMNS = (
    "ts_ns",
    "wirelen",
    "caplen",
    "linktype",
    "ip_version",
    "src_addr",
    "dst_addr",
    "proto",
    "ip_proto",
    "src_port",
    "dst_port",
    "tcp_flags",
    "vlan_tag",
    "vlan_tag2",
)


def batch_differences(a: DecodedBatch, b: DecodedBatch, limit: int = 20) -> list[str]:
    """How two batches differ (at most ``limit`` lines; empty when they are equal).

    Every column, ``details``, ``comments``, ``file`` and ``first_frame`` are compared.
    """
    out: list[str] = []
    if (a.file, a.first_frame, len(a)) != (b.file, b.first_frame, len(b)):
        out.append(f"batch: {a.file}@{a.first_frame}x{len(a)} != {b.file}@{b.first_frame}x{len(b)}")
        return out
    for name in _COLUMNS:
        x = getattr(a, name)
        y = getattr(b, name)
        if x.dtype != y.dtype:
            out.append(f"{name}: dtype {x.dtype} != {y.dtype}")
            continue
        for i in np.flatnonzero(x != y)[:limit].tolist():
            out.append(f"row {i} {name}: {x[i]!r} != {y[i]!r}")
    if a.tunnels is not None or b.tunnels is not None:
        ta = a.tunnels if a.tunnels is not None else NO_TUNNELS
        tb = b.tunnels if b.tunnels is not None else NO_TUNNELS
        out.extend(ta.differences(tb, limit))
    for i in sorted(a.details.keys() | b.details.keys()):
        if a.details.get(i) != b.details.get(i):
            out.append(f"row {i} details: {a.details.get(i)!r} != {b.details.get(i)!r}")
    if a.comments != b.comments:
        out.append(f"comments: {a.comments!r} != {b.comments!r}")
    return out[:limit]


def block_from_packets(
    packets: Sequence[bytes],
    linktype: int | Sequence[int] = vector.LT_ETHERNET,
    *,
    file: str = "<memory>",
    first_frame: int = 1,
    wirelen: Sequence[int] | None = None,
    ts_ns: Sequence[int] | None = None,
    comments: dict[int, str] | None = None,
) -> RawBlock:
    """A RawBlock holding ``packets`` (for tests, benchmarks and in-memory packets).

    ``wirelen`` defaults to each packet's length; ``ts_ns`` to 0, 1000, 2000, ...
    """
    n = len(packets)
    lengths = np.fromiter((len(p) for p in packets), np.int64, n)
    offset = np.zeros(n, np.int64)
    if n:
        offset[1:] = np.cumsum(lengths)[:-1]
    types = (
        np.full(n, linktype, np.int32)
        if isinstance(linktype, int)
        else np.asarray(linktype, np.int32)
    )
    return RawBlock(
        file=file,
        first_frame=first_frame,
        data=memoryview(b"".join(packets)),
        offset=offset,
        caplen=lengths,
        wirelen=lengths.copy() if wirelen is None else np.asarray(wirelen, np.int64),
        ts_ns=np.arange(n, dtype=np.int64) * 1000 if ts_ns is None else np.asarray(ts_ns, np.int64),
        linktype=types,
        interface=np.zeros(n, np.int32),
        comments=dict(comments or {}),
    )


class FastEngine:
    """Vectorised decoding with the reference decoder as fallback (see module docstring)."""

    name = "fast"

    def __init__(self, path: str) -> None:
        self.path = path
        #: Packets decoded so far, and how many of them went to the fallback.
        self.packets = 0
        self.fallbacks = 0

    def decode(self, block: RawBlock) -> DecodedBatch:
        """Decode every packet of ``block`` (rows in the block's order)."""
        batch = blank_batch(block)
        done = vector_rows(block, batch)
        rest = np.flatnonzero(~done)
        _fallback(block, batch, rest)
        self.packets += len(block)
        self.fallbacks += int(rest.size)
        return batch

    def close(self) -> None:
        """Nothing to release: the engine holds no files or processes."""
