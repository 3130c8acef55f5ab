"""Classic libpcap files: the global header and the record walk.

The walk over record headers is sequential (each record's length says where the next one
starts). A big buffer is cut into lanes whose starts are guessed (the first offset in a
small window from which a few record headers look right); numpy walks all lanes in step,
and a lane counts only when the lane before it, itself confirmed, lands exactly on its
start. From the first lane that is not confirmed, and for the last lane, a tight Python
loop walks on: it alone decides where and why the walk stops, so the records found are
exactly the sequential walk's whatever the guesses were. The other header fields are then
gathered for the whole block at once.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from portsniff.capture.block import Interface, RawBlock
from portsniff.errors import CaptureError

#: magic (as read little-endian) -> (byte order, nanosecond timestamps, record header size)
PCAP_MAGICS: dict[bytes, tuple[str, bool, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False, 16),
    b"\xa1\xb2\xc3\xd4": (">", False, 16),
    b"\x4d\x3c\xb2\xa1": ("<", True, 16),
    b"\xa1\xb2\x3c\x4d": (">", True, 16),
    # Alexey Kuznetzov's patched libpcap: 8 more bytes (ifindex, protocol, type) per record.
    b"\x34\xcd\xb2\xa1": ("<", False, 24),
    b"\xa1\xb2\xcd\x34": (">", False, 24),
}

GLOBAL_HEADER_LEN = 24

#: Largest caplen accepted when the header's snaplen is smaller (libpcap's usual maximum).
MAX_PACKET = 262_144
#: Hard limit whatever the header says: anything larger is a corrupt length field.
MAX_PACKET_HARD = 1 << 24

#: The lane walk (module docstring): used on at least LANES_MIN_BYTES of buffer, with
#: lanes of about LANE_BYTES whose starts are guessed in LANE_WINDOW bytes, a start being
#: plausible when LANE_CHAIN record headers from it look right (no more than
#: LANE_GAP_SECONDS between their timestamps); the walk in step goes on while at least
#: LANES_MIN_ACTIVE lanes are walking.
LANES_MIN_BYTES = 4 << 20
LANES_MIN_ACTIVE = 16
LANE_BYTES = 64 << 10
LANE_WINDOW = 2048
LANE_CHAIN = 4
LANE_GAP_SECONDS = 3600


@dataclass(slots=True)
class Scan:
    """What one pass of a record parser over the buffer found."""

    block: RawBlock | None  # the complete packets found (None when there are none)
    pos: int  # buffer position of the first byte not consumed
    need: int  # bytes needed at ``pos`` to make progress (0: nothing pending)
    damage: str | None = None  # set when the stream cannot be read past ``pos``


def count_problems(counter: Counter[str]) -> list[str]:
    """Render counted problems as one line each ("kind" or "kind (N times)")."""
    return [kind if n == 1 else f"{kind} ({n} times)" for kind, n in counter.items()]


class PcapParser:
    """Reads the records of a classic pcap stream whose global header has been checked."""

    format = "pcap"

    def __init__(self, header: bytes, name: str) -> None:
        """Parse the 24-byte global header; raise CaptureError when it is unusable."""
        self.name = name
        endian, nano, hdr_len = PCAP_MAGICS[header[:4]]
        major, minor, _zone, _sigfigs, snaplen, link_field = struct.unpack_from(
            endian + "HHiIII", header, 4
        )
        if major != 2:
            raise CaptureError(f"{name}: unsupported pcap version {major}.{minor}")
        # The upper bits of the link-type field carry the FCS length; the type is the low 16.
        self.linktype = link_field & 0xFFFF
        self.snaplen = snaplen
        self.endian = endian
        self.nano = nano
        self.version = (major, minor)
        self.hdr_len = hdr_len
        self.max_caplen = max(MAX_PACKET, min(snaplen, MAX_PACKET_HARD))
        self.interfaces = [
            Interface(
                linktype=self.linktype,
                snaplen=snaplen,
                ts_resolution=1_000_000_000 if nano else 1_000_000,
            )
        ]
        self.section_comments: list[str] = []
        self.problems: Counter[str] = Counter()
        # The caplen is the third word of the record header.
        self._caplen_at = struct.Struct(endian + "8xI").unpack_from
        self._u32 = np.dtype(endian + "u4")

    def next_start(self, buf: bytearray, pos: int, end: int, stop: int) -> int | None:
        """The first record start at or after ``stop``, walking from the record at ``pos``
        (positions in ``buf``; it may lie past ``end``); None when ``buf[:end]`` ends
        first, or at a record the scan will call damaged (it says so when it gets there)."""
        hdr = self.hdr_len
        caplen_at = self._caplen_at
        while pos < stop:
            if end - pos < hdr:
                return None
            (caplen,) = caplen_at(buf, pos)
            if caplen > self.max_caplen:
                return None
            pos += hdr + caplen
        return pos

    def state(self) -> tuple[object, ...]:
        """What the reading of later records depends on (the global header's fields)."""
        return (self.endian, self.nano, self.linktype, self.snaplen)

    def scan(self, buf: bytearray, pos: int, end: int, eof: bool, first_frame: int) -> Scan:
        """Walk complete records in ``buf[pos:end]``; ``eof`` means no more bytes follow."""
        hdr = self.hdr_len
        limit = self.max_caplen
        caplen_at = self._caplen_at
        lanes: npt.NDArray[np.int64] | None = None
        if end - pos >= LANES_MIN_BYTES:
            lanes, pos = self._lanes(buf, pos, end)
        starts: list[int] = []
        append = starts.append
        need = 0
        damage = None
        last = end - hdr  # the last position where a whole record header fits
        # The hot loop only walks; why it stopped is worked out once, after it.
        while pos <= last:
            (caplen,) = caplen_at(buf, pos)
            nxt = pos + hdr + caplen
            if nxt > end or caplen > limit:
                break
            append(pos)
            pos = nxt
        if pos > last:
            if pos < end:
                need = hdr
                if eof:
                    damage = f"truncated record header ({end - pos} of {hdr} bytes)"
        else:
            (caplen,) = caplen_at(buf, pos)
            if caplen > limit:
                damage = f"record claims {caplen} captured bytes (more than {limit})"
            else:
                need = hdr + caplen
                if eof:
                    damage = f"record claims {caplen} bytes but only {end - pos - hdr} remain"
        at = np.array(starts, dtype=np.int64)
        if lanes is not None and lanes.size:
            at = np.concatenate([lanes, at])
        block = self._block(buf, at, first_frame) if at.size else None
        return Scan(block, pos, need, damage)

    def _lanes(self, buf: bytearray, pos: int, end: int) -> tuple[npt.NDArray[np.int64], int]:
        """Record starts from ``pos`` walked in lanes (module docstring): the starts of
        every confirmed lane, and where the sequential walk goes on."""
        hdr = self.hdr_len
        limit = self.max_caplen
        caplen_at = self._caplen_at
        # Element p: the caplen of a record header at p (an overlapping, unaligned view).
        caplen = np.ndarray((end - 11,), self._u32, buf, offset=8, strides=(1,))

        def bad(at: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            too_long: npt.NDArray[np.bool_] = caplen[at] > limit
            return too_long

        def step(p: int) -> int | None:
            (c,) = caplen_at(buf, p)
            return None if c > limit else p + hdr + c

        def guess(targets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return self._guess_starts(buf, targets, end)

        return walk_lanes(pos, end, guess, caplen, hdr, bad, step)

    def _guess_starts(
        self, buf: bytearray, targets: npt.NDArray[np.int64], end: int
    ) -> npt.NDArray[np.int64]:
        """Per target, the first offset in the LANE_WINDOW bytes from it where
        ``LANE_CHAIN`` record headers in a row look right (targets with none are left
        out). A wrong guess costs time, never records: the walk confirms every lane."""
        found = []
        todo = np.arange(targets.size)
        # Windows are searched from their start, in pieces: a record starts within the
        # first few hundred bytes of most targets, and the rest of their windows is
        # searched only for the targets without one.
        w = LANE_WINDOW
        for lo, hi in ((0, w // 8), (w // 8, w // 2), (w // 2, w)):
            if not todo.size:
                break
            got, at = self._first_starts(buf, targets, todo, lo, hi, end)
            found.append(at)
            todo = todo[~got]
        return np.sort(np.concatenate(found))

    def _first_starts(
        self,
        buf: bytearray,
        targets: npt.NDArray[np.int64],
        todo: npt.NDArray[np.int64],
        lo: int,
        hi: int,
        end: int,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """For targets ``todo`` (indexes into ``targets``, which are LANE_BYTES apart):
        whether bytes ``lo`` to ``hi`` after each hold an offset where ``LANE_CHAIN``
        record headers in a row look right, and the first such offsets."""
        hdr = self.hdr_len
        u32 = self._u32
        frac_max = 1_000_000_000 if self.nano else 1_000_000
        limit = self.max_caplen
        width = hi - lo
        # (target, offset in the piece) -> the caplen word of a record there.
        first = int(targets[0]) + lo + 8
        caplen = np.ndarray((targets.size, width), u32, buf, offset=first, strides=(LANE_BYTES, 1))
        if todo.size < targets.size:
            caplen = caplen[todo]
        cand = np.flatnonzero(caplen <= limit)
        at = targets[todo[cand // width]] + lo + cand % width
        whole = np.ndarray((end - 15,), "V16", buf, strides=(1,))
        keep = at < end - 16
        q = np.minimum(at, end - 16)
        sec = None
        for _ in range(LANE_CHAIN):
            fields = whole[q].view(u32).reshape(-1, 4).astype(np.int64)
            keep &= (
                (fields[:, 2] <= limit)
                & (fields[:, 1] < frac_max)
                & (fields[:, 2] <= fields[:, 3])
                & (fields[:, 3] <= MAX_PACKET_HARD)
            )
            # Neighbours' clocks agree: a start guessed 4 bytes late reads (fraction,
            # caplen, wirelen, packet bytes) as a header that chains on just as well.
            if sec is not None:
                keep &= np.abs(fields[:, 0] - sec) <= LANE_GAP_SECONDS
            sec = fields[:, 0]
            q = np.minimum(q + hdr + fields[:, 2], end - 16)
        keep &= q < end - 16
        row = cand[keep] // width
        # The first plausible offset of each target's window.
        rows, first_of = np.unique(row, return_index=True)
        got = np.zeros(todo.size, np.bool_)
        got[rows] = True
        return got, at[keep][first_of].astype(np.int64)

    def _block(self, buf: bytearray, at: npt.NDArray[np.int64], first_frame: int) -> RawBlock:
        # A view whose element ``p`` is the 16 bytes at byte ``p`` (overlapping): the
        # record headers are one gather (one memory access each), with no index matrix.
        heads = np.ndarray(shape=(max(len(buf) - 15, 0),), dtype="V16", buffer=buf, strides=(1,))
        fields = heads[at].view(self._u32).reshape(-1, 4).astype(np.int64)
        sec, frac, caplen, wirelen = fields[:, 0], fields[:, 1], fields[:, 2], fields[:, 3]
        # sec < 2**32 and frac < 2**32 keep this well inside int64.
        ts_ns = sec * 1_000_000_000 + (frac if self.nano else frac * 1000)
        n = len(at)
        bad_frac = int(np.count_nonzero(frac >= (1_000_000_000 if self.nano else 1_000_000)))
        if bad_frac:
            # Kept as written (the excess carries into the seconds), as tcpdump shows it.
            self.problems["timestamps whose fraction of a second is out of range"] += bad_frac
        if self.snaplen:
            over = int(np.count_nonzero(caplen > self.snaplen))
            if over:
                self.problems[f"records whose caplen exceeds the snaplen {self.snaplen}"] += over
        over_wire = int(np.count_nonzero(caplen > wirelen))
        if over_wire:
            self.problems["records whose caplen exceeds their original length"] += over_wire
        return RawBlock(
            file=self.name,
            first_frame=first_frame,
            data=memoryview(buf),
            offset=at + self.hdr_len,
            caplen=caplen,
            wirelen=wirelen,
            ts_ns=ts_ns,
            linktype=np.full(n, self.linktype, dtype=np.int32),
            interface=np.zeros(n, dtype=np.int32),
        )


def walk_lanes(
    pos: int,
    end: int,
    guess: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.int64]],
    length: npt.NDArray[np.uint32],
    extra: int,
    bad: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]],
    step: Callable[[int], int | None],
) -> tuple[npt.NDArray[np.int64], int]:
    """The lane walk (module docstring) of ``buf[pos:end]``'s records, which chain by a
    length field: the record at ``p`` is followed by the one at ``p + length[p] + extra``.

    ``guess`` gives the lane starts found near targets (offsets every LANE_BYTES); lanes
    run from ``pos`` to the first guess and from each guess to the next. ``bad`` says
    which records end a walk (the sequential walk decides why), ``step`` is one record's
    step in Python (None where ``bad``). Returns the starts of every confirmed lane, and
    where the sequential walk goes on (``pos`` when there are too few lanes to walk).
    """
    # Lane boundaries are guessed in windows at every LANE_BYTES, leaving the last lane
    # (the buffer's tail, where the walk may stop) to the sequential loop.
    targets = np.arange(pos + LANE_BYTES, end - LANE_BYTES, LANE_BYTES, dtype=np.int64)
    guesses = guess(targets) if targets.size else targets
    if guesses.size < LANES_MIN_ACTIVE:
        return np.zeros(0, np.int64), pos
    begin = np.concatenate([[pos], guesses[:-1]]).astype(np.int64)
    stop = guesses
    cur = begin
    steps: list[npt.NDArray[np.int64]] = []
    # A step costs the same for any number of lanes: when few are left walking, they
    # finish one record at a time (below).
    while np.count_nonzero(cur < stop) >= (LANES_MIN_ACTIVE if steps else 1):
        for _ in range(8):
            steps.append(cur)
            # A lane past its stop reads there (a valid index); its steps from then
            # on are ignored.
            cur = cur + length[np.minimum(cur, stop)]
            cur += extra
    walked = np.stack(steps, axis=1)  # (lane, step)
    inside = walked < stop[:, None]
    lanes_bad: npt.NDArray[np.bool_] = np.any(
        inside & bad(np.where(inside, walked, stop[:, None])), axis=1
    )
    landed = np.any(walked == stop[:, None], axis=1) | (cur == stop)
    # The few lanes still walking finish one record at a time.
    tails: dict[int, list[int]] = {}
    for j in np.flatnonzero((cur < stop) & ~lanes_bad).tolist():
        p: int | None = int(cur[j])
        lim, tail = int(stop[j]), []
        while p is not None and p < lim:
            tail.append(p)
            p = step(p)
        if p is None:
            lanes_bad[j] = True
        else:
            cur[j] = p
            landed[j] = p == lim
        tails[j] = tail
    ok = landed & ~lanes_bad
    good = len(ok) if ok.all() else int(np.argmin(ok))

    def records(a: int, b: int) -> list[npt.NDArray[np.int64]]:
        """The records of lanes a to b (exclusive), in order."""
        pieces = []
        for j in sorted(t for t in tails if a <= t < b):
            pieces.append(walked[a : j + 1][inside[a : j + 1]])
            pieces.append(np.array(tails[j], np.int64))
            a = j + 1
        pieces.append(walked[a:b][inside[a:b]])
        return pieces

    found = records(0, good)
    if good == len(ok):
        return np.concatenate(found).astype(np.int64, copy=False), int(stop[-1])
    # The first lane not confirmed still walked from a record: its records before the
    # first bad one count, and the sequential walk goes on from that one, else from
    # where the lane went past its stop.
    mine = np.concatenate(records(good, good + 1)).astype(np.int64, copy=False)
    if lanes_bad[good]:
        b = int(np.argmax(bad(mine)))
        found.append(mine[:b])
        nxt = int(mine[b])
    else:
        found.append(mine)
        past = np.flatnonzero(~inside[good])
        nxt = int(cur[good]) if good in tails or not past.size else int(walked[good, past[0]])
    return np.concatenate(found).astype(np.int64, copy=False), nxt
