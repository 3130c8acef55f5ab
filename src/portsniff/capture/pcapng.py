"""pcapng files: sections, interfaces and packet blocks (EPB, SPB, obsolete PB).

Each section has its own byte order and its own interfaces; the reader numbers the
interfaces of all sections in one list, and packets carry an index into that list.
Blocks that carry no packets (name resolution, statistics, secrets, custom, unknown) are
skipped and counted as problems so that the user knows they were there.
"""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import numpy.typing as npt

from portsniff.capture import pcap
from portsniff.capture.block import Interface, RawBlock
from portsniff.capture.pcap import Scan
from portsniff.errors import CaptureError

SHB = 0x0A0D0D0A
IDB = 1
PB = 2  # obsolete Packet Block
SPB = 3
EPB = 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SHB_MIN = 28  # header 8 + BOM 4 + version 4 + section length 8 + trailer 4

#: Blocks larger than this are treated as a corrupt length (Wireshark uses the same bound).
MAX_BLOCK = 16 << 20

#: Runs of enhanced packet blocks are read at once (PcapngParser._epb_run) from this many
#: blocks on; EPB_RUNS off reads every block one by one (the reference the tests use).
EPB_RUN_MIN = 8
EPB_RUNS = True

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
CLAMPED = "timestamps out of range (clamped)"

SKIPPED_NAMES = {
    4: "Name Resolution Block",
    5: "Interface Statistics Block",
    7: "IRIG Timestamp Block",
    8: "ARINC 429 Block",
    9: "systemd Journal Export Block",
    10: "Decryption Secrets Block",
    0x00000BAD: "Custom Block",
    0x40000BAD: "Custom Block",
}

#: A guessed block start (a reader starting inside a file) needs this many blocks in a
#: row to look right, of these types (a section header is not guessed: it may change the
#: byte order).
GUESS_CHAIN = 16
GUESS_TYPES = frozenset({IDB, PB, SPB, EPB, *SKIPPED_NAMES})


class OptionError(ValueError):
    """An option's length runs past the end of its block."""


def parse_options(
    buf: bytearray | bytes, start: int, end: int, endian: str
) -> list[tuple[int, bytes]]:
    """The (code, value) options in ``buf[start:end]``, stopping at opt_endofopt."""
    out: list[tuple[int, bytes]] = []
    head = struct.Struct(endian + "HH").unpack_from
    pos = start
    while end - pos >= 4:
        code, length = head(buf, pos)
        if code == 0:
            break
        value_end = pos + 4 + length
        if value_end > end:
            raise OptionError(
                f"option {code} claims {length} bytes but only {end - pos - 4} remain"
            )
        out.append((code, bytes(buf[pos + 4 : value_end])))
        pos += 4 + ((length + 3) & ~3)
    return out


def _text(value: bytes) -> str:
    # Strings in pcapng are UTF-8, not always NUL-free.
    return value.rstrip(b"\x00").decode("utf-8", errors="replace")


def shb_length(head: bytes | bytearray, name: str) -> tuple[str, int]:
    """Byte order and block length of the SHB whose first 12 bytes are ``head``."""
    bom = head[8:12]
    if bom == b"\x4d\x3c\x2b\x1a":
        endian = "<"
    elif bom == b"\x1a\x2b\x3c\x4d":
        endian = ">"
    else:
        raise CaptureError(f"{name}: pcapng section header has a bad byte-order magic")
    (length,) = struct.unpack_from(endian + "I", head, 4)
    if length < SHB_MIN or length % 4 or length > MAX_BLOCK:
        raise CaptureError(f"{name}: pcapng section header has an invalid length {length}")
    return endian, length


class PcapngParser:
    """Reads the blocks of a pcapng stream after its first section header."""

    format = "pcapng"

    def __init__(self, name: str) -> None:
        self.name = name
        self.interfaces: list[Interface] = []
        self.section_comments: list[str] = []
        self.problems: Counter[str] = Counter()
        self.sections = 0
        self._endian = "<"
        self._section: list[int] = []  # this section's interface ids -> global index
        # global interface index -> (numerator, denominator, offset ns) for timestamps
        self._tsconv: list[tuple[int, int, int]] = []
        self._set_endian("<")

    def _set_endian(self, endian: str) -> None:
        self._endian = endian
        self._head = struct.Struct(endian + "II").unpack_from
        self._u32 = struct.Struct(endian + "I").unpack_from
        self._epb = struct.Struct(endian + "IIIII").unpack_from
        self._pb = struct.Struct(endian + "HHIIII").unpack_from

    def first_section(self, buf: bytearray, length: int) -> None:
        """Read the SHB at the start of ``buf`` (``length`` bytes); CaptureError if bad."""
        endian, _ = shb_length(buf[:12], self.name)
        problem = self._section_header(buf, 0, length, endian)
        if problem:
            raise CaptureError(f"{self.name}: {problem}")

    def _section_header(self, buf: bytearray, pos: int, length: int, endian: str) -> str | None:
        """Start a new section at ``pos``; the problem text when the SHB is unusable."""
        major, minor = struct.unpack_from(endian + "HH", buf, pos + 12)
        if major != 1:
            return f"unsupported pcapng version {major}.{minor}"
        try:
            options = parse_options(buf, pos + 24, pos + length - 4, endian)
        except OptionError as exc:
            return f"section header {exc}"
        (trailer,) = struct.unpack_from(endian + "I", buf, pos + length - 4)
        if trailer != length:
            return f"section header length {length} does not match its trailing length {trailer}"
        self._set_endian(endian)
        self._section = []
        self.sections += 1
        self.section_comments.extend(_text(v) for code, v in options if code == 1)
        return None

    def _interface(self, buf: bytearray, pos: int, length: int) -> str | None:
        if length < 20:
            return f"interface description block too short ({length} bytes)"
        linktype, _reserved, snaplen = struct.unpack_from(self._endian + "HHI", buf, pos + 8)
        name = None
        resolution = 1_000_000
        offset = 0
        try:
            options = parse_options(buf, pos + 16, pos + length - 4, self._endian)
        except OptionError as exc:
            # The fixed fields are intact: keep the interface, say what was lost.
            self.problems[f"interface options unreadable ({exc})"] += 1
            options = []
        for code, value in options:
            if code == 2:
                name = _text(value)
            elif code == 9 and len(value) >= 1:
                exp = value[0] & 0x7F
                resolution = 2**exp if value[0] & 0x80 else 10**exp
            elif code == 14 and len(value) >= 8:
                (offset,) = struct.unpack_from(self._endian + "q", value)
        self._section.append(len(self.interfaces))
        self.interfaces.append(
            Interface(
                linktype=linktype,
                snaplen=snaplen,
                name=name,
                ts_resolution=resolution,
                ts_offset=offset,
            )
        )
        # ts_ns = ticks * num // den + offset, all in exact integers.
        num, den = 1_000_000_000, resolution
        if den <= num and num % den == 0:
            num, den = num // den, 1
        self._tsconv.append((num, den, offset * 1_000_000_000))
        return None

    def _clamp(self, ts: int) -> int:
        """A timestamp beyond what int64 nanoseconds hold (e.g. a wrapped negative one)."""
        self.problems[CLAMPED] += 1
        return INT64_MAX if ts > 0 else INT64_MIN

    def _comments(self, buf: bytearray, start: int, end: int) -> str | None:
        try:
            options = parse_options(buf, start, end, self._endian)
        except OptionError as exc:
            self.problems[f"packet options unreadable ({exc})"] += 1
            return None
        texts = [_text(v) for code, v in options if code == 1]
        return "\n".join(texts) if texts else None

    def next_start(self, buf: bytearray, pos: int, end: int, stop: int) -> int | None:
        """The first block start at or after ``stop``, walking from the block at ``pos``
        (positions in ``buf``; it may lie past ``end``); None when ``buf[:end]`` ends
        first, or at a length the scan will call damaged (it says so when it gets there)."""
        head = self._head
        while pos < stop:
            if end - pos < 12:
                return None
            btype, length = head(buf, pos)
            if btype == SHB:
                try:
                    endian, length = shb_length(buf[pos : pos + 12], self.name)
                except CaptureError:
                    return None
                head = struct.Struct(endian + "II").unpack_from  # the new section's order
            if length < 12 or length % 4 or length > MAX_BLOCK:
                return None
            pos += length
        return pos

    def state(self) -> tuple[object, ...]:
        """What the reading of later blocks depends on: the section's byte order and
        interfaces (a reader that starts later in the file must agree on them)."""
        return (self._endian, self.sections, tuple(self.interfaces), tuple(self._section))

    def prime(self, buf: bytearray, pos: int, end: int) -> None:
        """Learn the interfaces the blocks from ``pos`` describe before the section's first
        packet (what a reader that starts later in the section needs); nothing is counted."""
        problems = self.problems.copy()
        head = self._head
        while end - pos >= 12:
            btype, length = head(buf, pos)
            if btype in (EPB, SPB, PB, SHB) or length < 12 or length % 4 or length > end - pos:
                break
            if btype == IDB and self._interface(buf, pos, length):
                break
            pos += length
        self.problems = problems

    def guess_start(self, sample: bytes, offset: int, eof: bool) -> int:
        """The first position in ``sample`` (the file's bytes from ``offset``; ``eof``: to
        its end) from which a chain of ``GUESS_CHAIN`` whole blocks looks right, or fewer
        that end where the file does or run on past the sample; len(sample) when there is
        none. Blocks start at multiples of 4 in the file."""
        head = struct.Struct(self._endian + "II").unpack_from
        u32 = struct.Struct(self._endian + "I").unpack_from
        n = len(sample)
        for p in range(-offset % 4, n, 4):
            q = p
            ok = True
            for _ in range(GUESS_CHAIN):
                if q == n:
                    ok = eof
                    break
                btype, length = head(sample, q) if q + 12 <= n else (0, 0)
                if btype not in GUESS_TYPES or length < 12 or length % 4 or length > MAX_BLOCK:
                    ok = q + 12 > n and not eof and q > p
                    break
                if q + length > n:
                    # Cut by the sample's end: plausible after a whole block, unless the
                    # file ends there.
                    ok = not eof and q > p
                    break
                if u32(sample, q + length - 4)[0] != length or (
                    btype == EPB and (length < 32 or u32(sample, q + 20)[0] > length - 32)
                ):
                    ok = False
                    break
                q += length
            if ok:
                return p
        return n

    def scan(self, buf: bytearray, pos: int, end: int, eof: bool, first_frame: int) -> Scan:
        """Read the complete blocks in ``buf[pos:end]``; ``eof`` means no more bytes follow."""
        offs: list[int] = []
        caps: list[int] = []
        wires: list[int] = []
        stamps: list[int] = []
        ifaces: list[int] = []
        comments: dict[int, str] = {}
        # Runs of packet blocks read at once (see _epb_run), in order with the lists.
        pieces: list[tuple[npt.NDArray[np.int64], ...]] = []
        rows = 0  # packets in pieces
        need = 0
        damage = None
        # Locals for the hot loop; refreshed when a new section changes them.
        head, u32, epb, section, tsconv = (
            self._head,
            self._u32,
            self._epb,
            self._section,
            self._tsconv,
        )
        while True:
            avail = end - pos
            if avail < 12:
                if avail:
                    need = 12
                    if eof:
                        damage = f"truncated block header ({avail} of 12 bytes)"
                break
            btype, length = head(buf, pos)
            if btype == EPB and EPB_RUNS:
                run = self._epb_run(buf, pos, end, rows + len(offs), comments)
                if run is not None:
                    if offs:
                        pieces.append(_piece(offs, caps, wires, stamps, ifaces))
                        rows += len(offs)
                        offs, caps, wires, stamps, ifaces = [], [], [], [], []
                    pos, columns = run
                    pieces.append(columns)
                    rows += len(columns[0])
                    continue
            endian = self._endian
            if btype == SHB:
                try:
                    endian, length = shb_length(buf[pos : pos + 12], self.name)
                except CaptureError as exc:
                    damage = str(exc).removeprefix(f"{self.name}: ")
                    break
            elif length < 12 or length % 4:
                damage = f"block of type 0x{btype:x} has an invalid length {length}"
                break
            elif length > MAX_BLOCK:
                damage = f"block of type 0x{btype:x} claims {length} bytes (more than {MAX_BLOCK})"
                break
            if length > avail:
                need = length
                if eof:
                    damage = (
                        f"block of type 0x{btype:x} claims {length} bytes but only {avail} remain"
                    )
                break
            if btype == SHB:
                damage = self._section_header(buf, pos, length, endian)
                if damage:
                    break
                head, u32, epb, section = self._head, self._u32, self._epb, self._section
                pos += length
                continue
            (trailer,) = u32(buf, pos + length - 4)
            if trailer != length:
                damage = (
                    f"block of type 0x{btype:x} has length {length} but trailing length {trailer}"
                )
                break
            body_end = pos + length - 4
            if btype in (EPB, PB):
                if length < 32:
                    damage = f"packet block too short ({length} bytes)"
                    break
                if btype == EPB:
                    iface, tsh, tsl, cap, wire = epb(buf, pos + 8)
                else:
                    iface, _drops, tsh, tsl, cap, wire = self._pb(buf, pos + 8)
                data = pos + 28
                if cap > body_end - data:
                    damage = (
                        f"packet block claims {cap} captured bytes but holds only {body_end - data}"
                    )
                    break
                if iface >= len(section):
                    damage = (
                        f"packet for interface {iface} but the section defines"
                        f" {len(section)} interfaces"
                    )
                    break
                gi = section[iface]
                opt = data + ((cap + 3) & ~3)
                if opt < body_end:
                    text = self._comments(buf, opt, body_end)
                    if text is not None:
                        comments[rows + len(offs)] = text
                offs.append(data)
                caps.append(cap)
                wires.append(wire)
                num, den, off = tsconv[gi]
                ts = ((tsh << 32) | tsl) * num // den + off
                stamps.append(ts if INT64_MIN <= ts <= INT64_MAX else self._clamp(ts))
                ifaces.append(gi)
            elif btype == SPB:
                if length < 16:
                    damage = f"simple packet block too short ({length} bytes)"
                    break
                if not section:
                    damage = "simple packet block before any interface description block"
                    break
                gi = section[0]
                (wire,) = u32(buf, pos + 8)
                data = pos + 12
                cap = min(wire, body_end - data)
                snaplen = self.interfaces[gi].snaplen
                if snaplen:
                    cap = min(cap, snaplen)
                offs.append(data)
                caps.append(cap)
                wires.append(wire)
                # An SPB has no timestamp: 0 (the epoch) says "unknown".
                stamps.append(0)
                ifaces.append(gi)
            elif btype == IDB:
                damage = self._interface(buf, pos, length)
                if damage:
                    break
            else:
                kind = SKIPPED_NAMES.get(btype, f"unknown block type 0x{btype:x}")
                self.problems[f"skipped {kind}"] += 1
            pos += length
        block = None
        if offs:
            pieces.append(_piece(offs, caps, wires, stamps, ifaces))
        if pieces:
            offset, caplen, wirelen, ts_ns, iface_arr = (
                np.concatenate(col) if len(pieces) > 1 else col[0]
                for col in zip(*pieces, strict=True)
            )
            iface_arr = iface_arr.astype(np.int32)
            lt = np.array([i.linktype for i in self.interfaces], dtype=np.int32)
            block = RawBlock(
                file=self.name,
                first_frame=first_frame,
                data=memoryview(buf),
                offset=offset,
                caplen=caplen,
                wirelen=wirelen,
                ts_ns=ts_ns,
                linktype=lt[iface_arr],
                interface=iface_arr,
                comments=comments,
            )
            self._note_snaplen(block)
        return Scan(block, pos, need, damage)

    def _epb_run(
        self, buf: bytearray, pos: int, end: int, index: int, comments: dict[int, str]
    ) -> tuple[int, tuple[npt.NDArray[np.int64], ...]] | None:
        """Enhanced packet blocks from ``pos`` on, read at once: where the scan goes on,
        and the packets' offset, caplen, wirelen, ts_ns and interface columns; None for
        fewer than EPB_RUN_MIN blocks.

        A tight loop only follows the block lengths; numpy then checks what the
        sequential scan checks (trailer, captured length, interface) and reads the
        fields. The run ends before the first block that is not an intact EPB: the
        sequential scan takes it from there and says why it stopped, if it stops.
        Comments (``index`` is the first packet's row in the block) and problems are
        counted as the sequential scan counts them.
        """
        head = self._head
        u32 = np.dtype(self._endian + "u4")
        lanes = None
        p = pos
        if end - pos >= pcap.LANES_MIN_BYTES:
            lanes, p = self._lanes(buf, pos, end, u32)
        starts: list[int] = []
        append = starts.append
        last = end - 8
        while p <= last:
            btype, length = head(buf, p)
            q = p + length
            if q > end or not _walkable(btype, length):
                break
            append(p)
            p = q
        at = np.array(starts, np.int64)
        if lanes is not None and lanes.size:
            at = np.concatenate([lanes, at])
        if at.size < EPB_RUN_MIN:
            return None
        # Element q of the view: the 28 bytes at q (overlapping): one gather per block.
        heads = np.ndarray((end - 27,), "V28", buf, strides=(1,))
        words = np.ndarray((end - 3,), u32, buf, strides=(1,))
        f = heads[at].view(u32).reshape(-1, 7).astype(np.int64)
        length, iface, cap = f[:, 1], f[:, 2], f[:, 5]
        ok = (words[at + length - 4] == length) & (cap <= length - 32)
        ok &= iface < len(self._section)
        if not ok.all():
            cut = int(np.argmin(ok))
            if cut == 0:
                return None
            p = int(at[cut])
            at, f, length, iface, cap = at[:cut], f[:cut], length[:cut], iface[:cut], cap[:cut]
        gi = np.array(self._section, np.int64)[iface]
        ticks = (f[:, 3] << 32) | f[:, 4]  # both words < 2**32: no sign trouble below 2**63
        stamps, clamped = self._stamps(ticks, f[:, 3], gi)
        # Options and clamps packet by packet, so that problems come in the scan's order.
        body_end = at + length - 4
        opt = at + 28 + ((cap + 3) & ~3)
        with_options = set(np.flatnonzero(opt < body_end).tolist())
        for k in sorted(with_options | clamped):
            if k in with_options:
                text = self._comments(buf, int(opt[k]), int(body_end[k]))
                if text is not None:
                    comments[index + k] = text
            if k in clamped:
                self.problems[CLAMPED] += 1
        return p, (at + 28, cap, f[:, 6], stamps, gi)

    def _lanes(
        self, buf: bytearray, pos: int, end: int, u32: np.dtype[np.uint32]
    ) -> tuple[npt.NDArray[np.int64], int]:
        """Packet block starts from ``pos`` walked in lanes (as pcap's records are, see
        :mod:`portsniff.capture.pcap`): the starts of every confirmed lane, and where the
        tight loop goes on. Only EPBs of a sane length are walked."""
        kind = np.ndarray((end - 3,), u32, buf, strides=(1,))
        length = np.ndarray((end - 7,), u32, buf, offset=4, strides=(1,))
        head = self._head

        def bad(at: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            size = length[at]
            out: npt.NDArray[np.bool_] = (
                (kind[at] != EPB) | (size < 32) | (size % 4 != 0) | (size > MAX_BLOCK)
            )
            return out

        def step(p: int) -> int | None:
            btype, size = head(buf, p)
            return p + int(size) if _walkable(btype, size) else None

        def guess(targets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return self._guess_starts(buf, targets, end, u32)

        return pcap.walk_lanes(pos, end, guess, length, 0, bad, step)

    def _guess_starts(
        self, buf: bytearray, targets: npt.NDArray[np.int64], end: int, u32: np.dtype[np.uint32]
    ) -> npt.NDArray[np.int64]:
        """Per target, the first block-aligned offset in the LANE_WINDOW bytes from it
        where LANE_CHAIN intact EPBs follow each other (targets with none are left out).
        Intact: a sane length, the same length in the trailer, the packet inside."""
        k = int(targets.size)
        width = pcap.LANE_WINDOW // 4
        first = int(targets[0])

        def window(word: int) -> npt.NDArray[np.uint32]:
            # (target, aligned offset in window) -> word ``word`` of a block there.
            return np.ndarray(
                (k, width), u32, buf, offset=first + 4 * word, strides=(pcap.LANE_BYTES, 4)
            )

        size = window(1).astype(np.int64)
        plausible = (window(0) == EPB) & (size >= 32) & (size % 4 == 0) & (size <= MAX_BLOCK)
        cand = np.flatnonzero(plausible)
        at = targets[cand // width] + 4 * (cand % width)
        words = np.ndarray((end - 3,), u32, buf, strides=(1,))
        keep = np.ones(at.size, np.bool_)
        q = at
        for _ in range(pcap.LANE_CHAIN):
            q = np.minimum(q, end - 28)
            size = words[q + 4].astype(np.int64)
            ok = (words[q] == EPB) & (size >= 32) & (size % 4 == 0) & (q + size <= end)
            trailer = words[np.where(ok, q + size - 4, q)]
            keep &= ok & (trailer == size) & (words[q + 20] <= size - 32)
            q = q + np.where(ok, size, 0)
        row = cand[keep] // width
        _, first_of = np.unique(row, return_index=True)
        return at[keep][first_of].astype(np.int64)

    def _stamps(
        self, ticks: npt.NDArray[np.int64], high: npt.NDArray[np.int64], gi: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], set[int]]:
        """``ticks * num // den + offset`` of each packet's interface, exactly: in int64
        where it cannot overflow, else in Python integers (clamped as the scan does, the
        clamped rows returned and not yet counted)."""
        out = np.empty(ticks.size, np.int64)
        clamped: set[int] = set()
        for g in np.unique(gi).tolist():
            rows = np.flatnonzero(gi == g)
            num, den, off = self._tsconv[g]
            t = ticks[rows]
            # Ticks of 2**63 or more wrapped negative in int64 (high word >= 2**31).
            top = int(t.max()) if bool((high[rows] < 1 << 31).all()) else -1
            q_max = top // den
            if top >= 0 and num * den < 1 << 62 and q_max * num + num + abs(off) < 1 << 62:
                q, r = np.divmod(t, den)
                out[rows] = q * num + (r * num) // den + off
                continue
            for k, v in zip(rows.tolist(), ticks[rows].tolist(), strict=True):
                v &= (1 << 64) - 1
                ts = v * num // den + off
                if INT64_MIN <= ts <= INT64_MAX:
                    out[k] = ts
                else:
                    out[k] = INT64_MAX if ts > 0 else INT64_MIN
                    clamped.add(k)
        return out, clamped

    def _note_snaplen(self, block: RawBlock) -> None:
        snap = np.array([i.snaplen for i in self.interfaces], dtype=np.int64)[block.interface]
        over = int(np.count_nonzero((snap > 0) & (block.caplen > snap)))
        if over:
            self.problems["packets whose caplen exceeds their interface's snaplen"] += over
        over_wire = int(np.count_nonzero(block.caplen > block.wirelen))
        if over_wire:
            self.problems["packets whose caplen exceeds their original length"] += over_wire


def _walkable(btype: int, length: int) -> bool:
    """Whether a run goes through this block: an EPB of a sane length (the scan one by
    one says what is wrong with any other block)."""
    return btype == EPB and 32 <= length <= MAX_BLOCK and not length & 3


def _piece(
    offs: list[int], caps: list[int], wires: list[int], stamps: list[int], ifaces: list[int]
) -> tuple[npt.NDArray[np.int64], ...]:
    """Packets found one by one, as the columns of a run."""
    return tuple(np.array(col, np.int64) for col in (offs, caps, wires, stamps, ifaces))
