"""Many rows of text at once: constants and decimal numbers laid out by numpy.

A report line that is mostly a template with a few numbers in it (annotate's JSON Lines)
costs about a microsecond in an f-string, most of it turning ints into text. Here rows
are grouped by the widths of their numbers, and each group's text is written column by
column into one byte matrix; a row then costs the conversion of its matrix row to bytes.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, TextIO

import numpy as np
import numpy.typing as npt

from portsniff.annotate.vector import _group

if TYPE_CHECKING:
    from portsniff.annotate.records import PacketRecord
    from portsniff.annotate.vector import LabelledBatch

I64 = npt.NDArray[np.int64]

#: Groups of rows (a flow's direction and label) whose text the packet writers keep:
#: flows recur from block to block, and a capture of many short flows (a scan) brings a
#: new group with nearly every packet, so the cache is emptied when it passes this.
TAIL_CACHE = 1 << 16

#: A part of every row: constant bytes, numbers (non-negative, in their own width), or
#: numbers with the width to zero-pad them to (at least their own).
Part = bytes | I64 | tuple[I64, I64]


def decimal_widths(values: I64) -> I64:
    """The number of decimal digits of each non-negative value (1 for 0)."""
    widths = np.ones(values.shape, np.int64)
    if values.size:
        top = int(values.max())
        p = 10
        while p <= top:
            widths += values >= p
            p *= 10
    return widths


def decimal_rows(parts: Sequence[Part], n: int) -> list[bytes]:
    """Each of ``n`` rows' text: its ``parts`` one after the other, as ASCII bytes.

    Numbers must be non-negative (they are lengths, frame numbers, clock readings);
    constants must not contain NUL (numpy's bytes strings end at trailing NULs).
    """
    if n == 0:
        return []
    nums: list[tuple[I64, I64]] = []
    layout: list[bytes | int] = []  # constants, and indices into nums
    for part in parts:
        if isinstance(part, bytes):
            if b"\0" in part:
                raise ValueError("constants of decimal_rows must not contain NUL")
            layout.append(part)
            continue
        values, widths = part if isinstance(part, tuple) else (part, decimal_widths(part))
        if values.size and int(values.min()) < 0:
            raise ValueError("decimal_rows writes non-negative numbers only")
        layout.append(len(nums))
        nums.append((values.astype(np.int64, copy=False), widths))
    # Rows with the same widths share a layout: a layout's rows are written together,
    # each number from a matrix of its digits (made once, right-aligned in its widest
    # width, in layout order).
    sig = np.zeros(n, np.int64)
    span = 1
    for _, widths in nums:
        low = int(widths.min())
        size = int(widths.max()) - low + 1
        sig += (widths - low) * span
        span *= size
    if span == 1:
        digits = [_digits(values, widths) for values, widths in nums]
        return _layout_rows(layout, nums, digits, 0, n)
    inv = sig if span <= 1 << 15 else np.unique(sig, return_inverse=True)[1].reshape(-1)
    # Small keys sort by radix (numpy's stable sort of 16-bit ints).
    order = np.argsort(inv.astype(np.uint16) if span <= 1 << 15 else inv, kind="stable")
    counts = np.bincount(inv)
    nums = [(values[order], widths[order]) for values, widths in nums]
    digits = [_digits(values, widths) for values, widths in nums]
    texts: list[bytes] = []
    start = 0
    for count in counts[counts > 0].tolist():
        texts.extend(_layout_rows(layout, nums, digits, start, count))
        start += count
    out = np.empty(n, object)
    out[order] = texts
    rows_text: list[bytes] = out.tolist()
    return rows_text


def _digits(values: I64, widths: I64) -> npt.NDArray[np.uint8]:
    """ASCII digits of ``values``, right-aligned and zero-filled to the widest width."""
    most = int(widths.max())
    mat = np.empty((values.size, most), np.uint8)
    left = values.copy()
    for c in range(most - 1, -1, -1):
        mat[:, c] = left % 10 + 48
        left //= 10
    return mat


def _layout_rows(
    layout: Sequence[bytes | int],
    nums: Sequence[tuple[I64, I64]],
    digits: Sequence[npt.NDArray[np.uint8]],
    start: int,
    count: int,
) -> list[bytes]:
    """The text of rows ``start`` to ``start + count``, which share their numbers' widths."""
    widths = [int(w[start]) for _, w in nums]
    total = sum(len(p) if isinstance(p, bytes) else widths[p] for p in layout)
    if total == 0:
        return [b""] * count
    mat = np.empty((count, total), np.uint8)
    col = 0
    for p in layout:
        if isinstance(p, bytes):
            mat[:, col : col + len(p)] = np.frombuffer(p, np.uint8)
            col += len(p)
            continue
        w = widths[p]
        d = digits[p]
        mat[:, col : col + w] = d[start : start + count, d.shape[1] - w :]
        col += w
    rows_text: list[bytes] = mat.view(f"S{total}").reshape(-1).tolist()
    return rows_text


def utf8_buffer(stream: TextIO) -> BinaryIO | None:
    """The byte stream under ``stream`` when writing there is the same as writing text
    (UTF-8, no newline translation), its pending text flushed first; else None."""
    buffer = getattr(stream, "buffer", None)
    encoding = getattr(stream, "encoding", None)
    if buffer is None or not isinstance(encoding, str) or os.linesep != "\n":
        return None
    if codecs.lookup(encoding).name != "utf-8" or getattr(stream, "errors", "strict") not in (
        "strict",
        "surrogateescape",
    ):
        return None
    stream.flush()
    raw: BinaryIO = buffer
    return raw


def tunnel_tails(
    lb: LabelledBatch,
    rows: I64,
    keys: Sequence[npt.NDArray[np.uint64]],
    cache: dict[bytes, bytes],
    tail: Callable[[int, PacketRecord], bytes],
) -> list[bytes]:
    """The packet writers' text of ``lb``'s tunnelled ``rows``: ``tail(i, record)`` of
    one row per group of rows alike (equal ``keys``: every row's text inputs but the
    inner header's, whose words join them), kept in ``cache``."""
    t = lb.tunnels
    assert t is not None and np.array_equal(t.row, rows)  # (every tunnelled row)
    side = t.side.astype(np.int64)
    sport = t.src_port.astype(np.int64)
    dport = t.dst_port.astype(np.int64)
    word = (
        (t.tunnel.astype(np.int64) + 1)
        | (t.proto.astype(np.int64) << 8)
        | (side << 16)
        | (t.ip_version.astype(np.int64) << 20)
        | ((sport + 1) << 24)
        | ((dport + 1) << 41)
    ).astype(np.uint64)
    addr = [a.view(np.uint64).reshape(-1, 2) for a in (t.src_addr, t.dst_addr)]
    sub = [k[rows] for k in keys] + [
        word,
        addr[0][:, 0],
        addr[0][:, 1],
        addr[1][:, 0],
        addr[1][:, 1],
    ]
    _, first, inverse = _group(*sub)
    width = 8 * len(sub)
    key_bytes = np.stack([k[first] for k in sub], axis=1).view(f"V{width}").reshape(-1).tolist()
    tails = list(map(cache.get, key_bytes))
    miss = [j for j, got in enumerate(tails) if got is None]
    if miss:
        if len(cache) + len(miss) > TAIL_CACHE:
            cache.clear()
        at = rows[first[miss]].tolist()
        recs = lb.records_at(at)
        for j, i in zip(miss, at, strict=True):
            tails[j] = cache[key_bytes[j]] = tail(i, recs[i])
    return np.array(tails, dtype=object)[inverse].tolist()  # type: ignore[no-any-return]
