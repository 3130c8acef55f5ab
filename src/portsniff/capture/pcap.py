"""Classic libpcap files: the global header and the record walk.

The walk over record headers is sequential (each record's length says where the next one
starts), so it is a tight loop that only reads the caplen; the other fields are then
gathered for the whole block at once with numpy.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np

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

    def scan(self, buf: bytearray, pos: int, end: int, eof: bool, first_frame: int) -> Scan:
        """Walk complete records in ``buf[pos:end]``; ``eof`` means no more bytes follow."""
        hdr = self.hdr_len
        limit = self.max_caplen
        caplen_at = self._caplen_at
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
        block = self._block(buf, starts, first_frame) if starts else None
        return Scan(block, pos, need, damage)

    def _block(self, buf: bytearray, starts: list[int], first_frame: int) -> RawBlock:
        at = np.array(starts, dtype=np.int64)
        # A view whose element ``p`` is the 16 bytes at byte ``p`` (overlapping): the
        # record headers are one gather (one memory access each), with no index matrix.
        heads = np.ndarray(shape=(max(len(buf) - 15, 0),), dtype="V16", buffer=buf, strides=(1,))
        fields = heads[at].view(self._u32).reshape(-1, 4).astype(np.int64)
        sec, frac, caplen, wirelen = fields[:, 0], fields[:, 1], fields[:, 2], fields[:, 3]
        # sec < 2**32 and frac < 2**32 keep this well inside int64.
        ts_ns = sec * 1_000_000_000 + (frac if self.nano else frac * 1000)
        n = len(starts)
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
