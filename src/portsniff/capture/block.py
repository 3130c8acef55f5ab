"""What capture readers hand to decoders: blocks of raw packet records.

A reader fills one reused buffer and describes the packets in it with parallel numpy
arrays, so that decoders can gather header fields for a whole block at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class CaptureDamage:
    """Where a capture stops being readable: the packets before it were all delivered."""

    file: str
    offset: int  # byte offset in the (decompressed) capture stream
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: damaged at byte {self.offset}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Interface:
    """A capture interface (pcap has exactly one, pcapng one per IDB per section)."""

    linktype: int
    snaplen: int
    name: str | None = None
    ts_resolution: int = 1_000_000  # ticks per second
    ts_offset: int = 0  # seconds added to every timestamp (pcapng if_tsoffset)


@dataclass(slots=True)
class RawBlock:
    """A batch of packets read from one capture.

    ``data`` holds the packet bytes; packet i is ``data[offset[i] : offset[i] + caplen[i]]``.
    ``data`` may be a view of the reader's reused buffer: it is valid only until the next
    block is read, so consumers copy what they keep.
    """

    file: str
    first_frame: int  # 1-based frame number of packet 0 in this block
    data: memoryview
    offset: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.int64]
    wirelen: npt.NDArray[np.int64]
    ts_ns: npt.NDArray[np.int64]  # nanoseconds since the epoch
    linktype: npt.NDArray[np.int32]
    interface: npt.NDArray[np.int32]  # index into the reader's interface list
    comments: dict[int, str] = field(default_factory=dict)  # packet index -> comment

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    def split(self, rows: int) -> list[RawBlock]:
        """This block as blocks of at most ``rows`` packets (views of the same bytes)."""
        n = len(self)
        if n <= rows:
            return [self]
        parts = []
        for a in range(0, n, rows):
            b = min(a + rows, n)
            parts.append(
                RawBlock(
                    file=self.file,
                    first_frame=self.first_frame + a,
                    data=self.data,
                    offset=self.offset[a:b],
                    caplen=self.caplen[a:b],
                    wirelen=self.wirelen[a:b],
                    ts_ns=self.ts_ns[a:b],
                    linktype=self.linktype[a:b],
                    interface=self.interface[a:b],
                    comments={k - a: v for k, v in self.comments.items() if a <= k < b},
                )
            )
        return parts

    def packet(self, i: int) -> bytes:
        """The captured bytes of packet ``i`` (a copy)."""
        start = int(self.offset[i])
        return bytes(self.data[start : start + int(self.caplen[i])])
