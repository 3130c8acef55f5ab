"""Reading and decoding in worker processes, labelling in order in the caller.

Classic pcap files are cut into record-aligned chunks of about ``CHUNK_BYTES``; each
worker finds its chunk's first record (a guess: the first offset from which a run of
record headers is plausible), reads and decodes the records that start inside its chunk,
and says exactly where the next record starts. The caller checks every guess against the
previous chunk's exact answer (and redoes a chunk in process when a guess was wrong), so
the decoded batches are exactly those of one sequential read; their frame numbers are
renumbered in order. Other files (pcapng, compressed, stdin) are read in process.
Labelling and summarising stay in the caller: flow state is shared by every packet.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from portsniff.capture.block import RawBlock
from portsniff.decode.batch import DecodedBatch
from portsniff.timestamps import seconds

CHUNK_BYTES = 16 << 20
_CHAIN = 16  # record headers that must look right for a guessed start


@dataclass(frozen=True, slots=True)
class Unit:
    """A byte range of a classic pcap (``start`` is a guess unless ``exact``)."""

    path: str
    start: int
    end: int
    exact: bool
    engine: str
    bpf: str | None


@dataclass(slots=True)
class UnitResult:
    """What a worker read from its unit."""

    start: int  # offset of the first record it read (the guess, checked by the caller)
    next_start: int  # exact offset of the first record at or after the unit's end
    batches: list[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    linktypes: Counter[int] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    damage: tuple[int, str] | None = None
    state: tuple[object, ...] | None = None  # the reader's at the start (pcapng: interfaces)


def is_classic_pcap(path: str) -> bool:
    """True for an uncompressed classic pcap file (chunks can be read in parallel)."""
    from portsniff.capture.pcap import PCAP_MAGICS

    if path == "-":
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in PCAP_MAGICS
    except OSError:
        return False


def plan(path: str, engine: str, bpf: str | None, chunk: int | None = None) -> list[Unit]:
    """The units of a classic pcap file (``chunk`` bytes each, default CHUNK_BYTES)."""
    from portsniff.capture.pcap import GLOBAL_HEADER_LEN

    chunk = chunk or CHUNK_BYTES

    size = os.path.getsize(path)
    bounds = list(range(GLOBAL_HEADER_LEN, size, chunk)) or [GLOBAL_HEADER_LEN]
    ends = [*bounds[1:], size]
    return [
        Unit(path, s, max(e, s), k == 0, engine, bpf)
        for k, (s, e) in enumerate(zip(bounds, ends, strict=True))
    ]


#: A guessed chain's wire lengths stay below this, and its seconds this close to the
#: first's: records read 4 bytes off (the microseconds as seconds, the captured length
#: as the fraction, the wire length as the captured one and packet bytes as the wire
#: length) pass the other checks when every packet is captured whole.
_GUESS_WIRE = 1 << 24
_GUESS_SPAN = 86_400


def _guess_start(data: bytes, parser: Any, at: int, limit: int, eof: bool = False) -> int:
    """The first offset in ``data`` (the file's bytes from ``at``; ``eof``: to its end)
    from which ``_CHAIN`` record headers look right, or fewer whole ones that end where
    the file does or run on past ``data``."""
    import struct

    fmt = struct.Struct(parser.endian + "IIII")
    hdr = parser.hdr_len
    for p in range(min(limit, len(data))):
        q = p
        ok = True
        first = -1
        for _ in range(_CHAIN):
            if q == len(data):
                break
            if q + hdr > len(data):
                ok = q > p and not eof  # (as below)
                break
            sec, frac, caplen, wirelen = fmt.unpack_from(data, q)
            first = sec if first < 0 else first
            if (
                caplen > parser.max_caplen
                or caplen > wirelen
                or wirelen >= _GUESS_WIRE
                or abs(sec - first) > _GUESS_SPAN
                or frac >= 1_000_000_000
                or not (sec or frac or wirelen)  # zero bytes (a zeroed payload), not a record
            ):
                ok = False
                break
            if q + hdr + caplen > len(data):
                # Cut by the sample's end: plausible after a whole record, unless the
                # file ends there.
                ok = q > p and not eof
                break
            q += hdr + caplen
        if ok:
            return at + p
    return at + len(data)


_BUFFER = bytearray()


def _decode_unit_reusing(unit: Unit) -> UnitResult:
    # In a worker process a result is sent off before the next unit is read, so one
    # buffer serves every unit (fresh 17 MB buffers cost page faults, unit after unit).
    return decode_unit(unit, _BUFFER)


def decode_unit(unit: Unit, reuse: bytearray | None = None) -> UnitResult:
    """Read and decode the records starting in ``unit`` (see module docstring); ``reuse``
    is a buffer to read into (its contents are overwritten)."""
    result = UnitResult(start=unit.start, next_start=unit.start)
    result.batches.extend(iter_unit(unit, result, reuse))
    return result


def iter_unit(
    unit: Unit, result: UnitResult, reuse: bytearray | None = None
) -> Iterator[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]]:
    """:func:`decode_unit`, the decoded blocks yielded as they come (``result`` gets the
    unit's figures; they are complete when the iterator is)."""
    from portsniff.capture.bpf import compile_filter
    from portsniff.capture.pcap import GLOBAL_HEADER_LEN, PcapParser
    from portsniff.capture.reader import BLOCK_ROWS
    from portsniff.decode.engines import open_engine

    with open(unit.path, "rb") as fh:
        header = fh.read(GLOBAL_HEADER_LEN)
        parser = PcapParser(header, unit.path)
        size = os.fstat(fh.fileno()).st_size
        start = unit.start
        if not unit.exact:
            fh.seek(start)
            sample = fh.read(2 * parser.max_caplen + 64 * _CHAIN + 4096)
            eof = start + len(sample) >= size
            start = _guess_start(sample, parser, start, 2 * parser.max_caplen + 1, eof)
        result.start = result.next_start = start
        if start >= unit.end or start >= size:
            result.next_start = min(start, size)
            return
        engine = open_engine(unit.engine, unit.path)
        # A unit bigger than a chunk (half a file) is read a chunk at a time.
        want = min(max(unit.end - start, 1 << 16), CHUNK_BYTES) + (1 << 20)
        if reuse is None:
            buf = bytearray(want)
        else:
            if len(reuse) < want:
                reuse.extend(bytes(want - len(reuse)))
            buf = reuse
        base = start  # file offset of buf[0]
        fh.seek(start)
        filled = fh.readinto(buf) or 0
        eof = base + filled >= size
        pos = 0
        frame = 1
        hdr = parser.hdr_len
        try:
            while True:
                before = Counter(parser.problems)
                scan = parser.scan(buf, pos, filled, eof, frame)
                block = scan.block
                done = False
                if block is not None:
                    starts = block.offset - hdr + base
                    keep = int(np.searchsorted(starts, unit.end))
                    if keep < len(block):
                        # Records from the unit's end on belong to the next unit.
                        result.next_start = int(starts[keep])
                        parser.problems = before
                        kept = block.offset[:keep] - hdr
                        block = parser._block(buf, kept, frame) if keep else None
                        done = True
                    if block is not None and len(block):
                        for part in block.split(BLOCK_ROWS):
                            yield _add_block(result, part, engine, unit.bpf, compile_filter)
                        frame += len(block)
                if done:
                    break
                if scan.damage is not None:
                    result.damage = (base + scan.pos, scan.damage)
                    result.next_start = base + scan.pos
                    break
                if scan.need == 0 and eof:
                    result.next_start = base + scan.pos
                    break
                # Keep the unfinished tail, read on.
                tail = filled - scan.pos
                buf[:tail] = buf[scan.pos : filled]
                base += scan.pos
                pos = 0
                if len(buf) < max(scan.need, 1) + tail:
                    buf.extend(bytes(scan.need + tail - len(buf)))
                with memoryview(buf) as view:
                    got = fh.readinto(view[tail:]) or 0
                filled = tail + got
                eof = base + filled >= size
        finally:
            engine.close()
            result.problems = parser.problems


class Figures(Protocol):
    """What a file report and a unit's result count of the records read."""

    packets: int
    bytes: int
    first_ts: float | None
    last_ts: float | None
    linktypes: Counter[int]


def count_block(figures: Figures, block: RawBlock) -> None:
    """Count a block of records into ``figures``."""
    figures.packets += len(block)
    figures.bytes += int(block.wirelen.sum())
    ts0 = seconds(int(block.ts_ns.min()))  # the earliest (time may go back)
    ts1 = seconds(int(block.ts_ns.max()))
    figures.first_ts = ts0 if figures.first_ts is None else min(figures.first_ts, ts0)
    figures.last_ts = ts1 if figures.last_ts is None else max(figures.last_ts, ts1)
    lt, cnt = np.unique(block.linktype, return_counts=True)
    for k, v in zip(lt.tolist(), cnt.tolist(), strict=True):
        figures.linktypes[int(k)] += int(v)


def _add_block(
    result: UnitResult, block: RawBlock, engine: Any, bpf: str | None, compile_filter: Any
) -> tuple[DecodedBatch, npt.NDArray[np.bool_] | None]:
    count_block(result, block)
    mask = None
    if bpf is not None:
        f = compile_filter(bpf, int(block.linktype[0]))
        try:
            mask = f.mask(block)
        finally:
            f.close()
    return engine.decode(block), mask


def parallel_units(units: Sequence[Unit], workers: int) -> Iterator[tuple[Unit, UnitResult]]:
    """Every unit's result, in order, each guess checked (at most ``2 * workers`` ahead)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ctx.Pool(workers) as pool:
        pending: list[Any] = []
        nxt = 0
        expected: dict[str, int] = {}
        for k in range(len(units)):
            while nxt < len(units) and len(pending) < 2 * workers:
                pending.append(pool.apply_async(_decode_unit_reusing, (units[nxt],)))
                nxt += 1
            res: UnitResult = pending.pop(0).get()
            unit = units[k]
            want = expected.get(unit.path)
            if want is not None and res.start != want:
                # A wrong guess (or a damaged predecessor): redo from the exact start.
                res = decode_unit(
                    Unit(unit.path, want, max(unit.end, want), True, unit.engine, unit.bpf)
                )
            expected[unit.path] = res.next_start
            yield unit, res
