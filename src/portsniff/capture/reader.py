"""Open a capture (file or stdin, maybe compressed) and stream its packets in blocks.

Memory stays flat: the reader fills one reused buffer with ``readinto``, describes the
complete packets in it as a :class:`RawBlock`, then moves the unfinished tail to the front
and fills again. A length field never makes the buffer grow beyond the bytes that were
really read (the buffer at most doubles while data keeps arriving).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, BinaryIO, Protocol, cast

from portsniff.capture.block import CaptureDamage, Interface, RawBlock
from portsniff.capture.pcap import GLOBAL_HEADER_LEN, PCAP_MAGICS, PcapParser, Scan, count_problems
from portsniff.capture.pcapng import PcapngParser, shb_length
from portsniff.errors import CaptureError

STDIN_NAME = "<stdin>"
#: Most packets in a block: what decodes, labels and reports hold per packet grows with
#: a block's packets, and a buffer of small packets holds many (a 16 MiB buffer of
#: 60-byte packets, 220k). The yardstick's blocks (34k packets) are never cut.
BLOCK_ROWS = 48 << 10
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

#: magic -> compression name
COMPRESSION_MAGICS: list[tuple[bytes, str]] = [
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
]


#: Bytes read at a guessed start to find where the next block begins (resume_at).
RESUME_SAMPLE = 1 << 20


class _Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class _Parser(Protocol):
    format: str
    interfaces: list[Interface]
    section_comments: list[str]
    problems: Counter[str]

    def scan(self, buf: bytearray, pos: int, end: int, eof: bool, first_frame: int) -> Scan: ...

    def next_start(self, buf: bytearray, pos: int, end: int, stop: int) -> int | None: ...

    def state(self) -> tuple[object, ...]: ...


class _Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front (stdin cannot seek)."""

    def __init__(self, prefix: bytes, raw: _Readable) -> None:
        super().__init__()
        self._prefix = prefix
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            memoryview(buffer)[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._raw.readinto(memoryview(buffer).cast("B")) or 0


def _read_head(raw: _Readable, n: int) -> bytes:
    """Up to ``n`` bytes from ``raw`` (fewer only at end of stream)."""
    buf = bytearray(n)
    got = 0
    view = memoryview(buf)
    while got < n:
        k = raw.readinto(view[got:])
        if not k:
            break
        got += k
    return bytes(buf[:got])


def _describe(head: bytes) -> str:
    """How the start of a non-capture looks to a human."""
    shown = head[:4]
    if shown and all(32 <= b < 127 for b in shown):
        return f"starts with {shown.decode('ascii')!r}"
    return f"starts with bytes {shown.hex(' ')}"


def _decompressor(
    kind: str, raw: io.RawIOBase
) -> tuple[_Readable, tuple[type[BaseException], ...]]:
    """A decompressing stream over ``raw`` and the exceptions that mean corrupt data."""
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, zlib.error)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb"), errors
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb"), errors
    if kind == "xz":
        return lzma.LZMAFile(cast(BinaryIO, raw), mode="rb"), (*errors, lzma.LZMAError)
    import zstandard

    return _ZstdStream(raw), (*errors, zstandard.ZstdError)


class _ZstdStream(io.RawIOBase):
    """zstd frames one after another, decompressed; EOFError if the last one is cut.

    zstandard's stream_reader ends silently on a truncated frame, so the frames are fed
    to a decompressobj in small pieces (small, so that the output of one piece stays
    bounded even for absurd compression ratios).
    """

    CHUNK = 2048

    def __init__(self, raw: io.RawIOBase) -> None:
        import zstandard

        super().__init__()
        self._raw = raw
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._obj = self._new()
        self._in_frame = False
        self._pending = b""
        self._at = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._at >= len(self._pending):
            if self._done:
                return 0
            chunk = self._raw.read(self.CHUNK)
            if not chunk:
                self._done = True
                if self._in_frame:
                    raise EOFError("the last zstd frame is cut short")
                return 0
            self._pending = self._feed(chunk)
            self._at = 0
        n = min(len(buffer), len(self._pending) - self._at)
        memoryview(buffer)[:n] = self._pending[self._at : self._at + n]
        self._at += n
        return n

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._in_frame = True
            out.append(self._obj.decompress(data))
            if not self._obj.eof:
                break
            # A frame ended: what follows (if anything) is the next frame.
            data = self._obj.unused_data
            self._obj = self._new()
            self._in_frame = False
        return b"".join(out)


def open_capture(path: str, *, block_bytes: int = 8 << 20) -> CaptureReader:
    """Open the capture at ``path`` (``"-"`` for stdin); CaptureError when unreadable."""
    return CaptureReader(path, block_bytes=block_bytes)


class CaptureReader:
    """A pcap or pcapng capture read block by block (see :func:`open_capture`)."""

    def __init__(self, path: str, *, block_bytes: int = 8 << 20) -> None:
        self.path = path
        self.name = STDIN_NAME if path == "-" else path
        self.format = ""
        self.compression: str | None = None
        self.packets = 0
        self.damage: CaptureDamage | None = None
        self.bytes_read = 0  # bytes of the (decompressed) capture stream consumed
        self._file: io.RawIOBase | io.BufferedIOBase | None = None
        self._closer: Any = None
        self._done = False
        self._stream_error: str | None = None
        try:
            self._open(max(block_bytes, 32))
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------

    def _open(self, block_bytes: int) -> None:
        name = self.name
        if self.path == "-":
            raw: _Readable = cast(_Readable, sys.stdin.buffer)
        else:
            try:
                if os.path.isdir(self.path):
                    raise CaptureError(f"{name}: is a directory, not a capture file")
                self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            except FileNotFoundError:
                raise CaptureError(f"{name}: no such file") from None
            except PermissionError:
                raise CaptureError(f"{name}: permission denied") from None
            except OSError as exc:
                raise CaptureError(f"{name}: cannot open ({exc.strerror or exc})") from None
            raw = self._file
        try:
            head = _read_head(raw, 6)
        except OSError as exc:
            raise CaptureError(f"{name}: cannot read ({exc.strerror or exc})") from None
        if not head:
            raise CaptureError(f"{name}: empty file, not a capture")
        stream = _Prefixed(head, raw)
        self._errors: tuple[type[BaseException], ...] = (OSError,)
        self._stream: _Readable = stream
        self._read: Callable[[memoryview], int | None] = stream.readinto
        for magic, kind in COMPRESSION_MAGICS:
            if head.startswith(magic):
                self.compression = kind
                self._stream, self._errors = _decompressor(kind, stream)
                self._closer = self._stream
                # readinto1 returns what one step decompressed: when the compressed
                # data turns out damaged, the bytes before the damage are not lost.
                self._read = cast(
                    Callable[[memoryview], int | None],
                    getattr(self._stream, "readinto1", self._stream.readinto),
                )
                break

        self._buf = bytearray(block_bytes)
        self._view = memoryview(self._buf)
        self._end = 0  # bytes of data in the buffer
        self._pos = 0  # first unconsumed byte in the buffer
        self._base = 0  # stream offset of buffer[0]
        self._eof = False
        # Regular files (and decompressors) fill the whole buffer: fewer, larger blocks.
        self._greedy = self.path != "-" or self.compression is not None
        self._fill()
        if self._stream_error and self._end == 0:
            raise CaptureError(f"{name}: {self.compression} data is corrupt ({self._stream_error})")
        if self._end == 0:
            raise CaptureError(f"{name}: {self.compression}-compressed file is empty")
        head = bytes(self._buf[: min(4, self._end)])
        what = f"{self.compression}-compressed, " if self.compression else ""
        if head in PCAP_MAGICS:
            if not self._ensure(GLOBAL_HEADER_LEN):
                raise CaptureError(
                    f"{name}: truncated pcap global header ({self._end} of 24 bytes)"
                )
            self._parser: _Parser = PcapParser(bytes(self._buf[:GLOBAL_HEADER_LEN]), name)
            self._pos = GLOBAL_HEADER_LEN
            self.bytes_read = GLOBAL_HEADER_LEN
        elif head == PCAPNG_MAGIC:
            if not self._ensure(12):
                raise CaptureError(f"{name}: truncated pcapng section header ({self._end} bytes)")
            _, length = shb_length(self._buf[:12], name)
            if not self._ensure(length):
                raise CaptureError(
                    f"{name}: truncated pcapng section header ({self._end} of {length} bytes)"
                )
            ng = PcapngParser(name)
            ng.first_section(self._buf, length)
            self._parser = ng
            self._pos = length
            self.bytes_read = length
        elif len(head) < 4 and self._eof:
            raise CaptureError(f"{name}: {what}too short to be a capture ({self._end} bytes)")
        else:
            raise CaptureError(f"{name}: not a capture file ({what}{_describe(head)})")
        self.format = self._parser.format

    # -- buffer management -----------------------------------------------------------

    def _fill(self, need: int = 1) -> None:
        """Read into the free end of the buffer until it is full or the stream ends.

        From a pipe, stop as soon as ``need`` bytes are there: a live capture piped in
        should not wait for a whole buffer before its first packets are shown.
        """
        size = len(self._buf)
        while self._end < size and not self._eof:
            try:
                n = self._read(self._view[self._end :])
            except self._errors as exc:
                self._stream_error = str(exc) or type(exc).__name__
                self._eof = True
                break
            if not n:
                self._eof = True
                break
            self._end += n
            if not self._greedy and self._end >= need:
                break

    def _ensure(self, need: int) -> bool:
        """Make ``need`` bytes available at ``self._pos``; False when the stream ends first."""
        if self._pos:
            # Move the unfinished tail to the front (the last block's view is now stale).
            tail = self._end - self._pos
            self._buf[:tail] = self._buf[self._pos : self._end]
            self._base += self._pos
            self._end = tail
            self._pos = 0
        while True:
            self._fill(need)
            if self._end >= need:
                return True
            if self._eof:
                return False
            # Full but too small: double (so the buffer never exceeds twice the bytes read).
            grown = bytearray(min(need, 2 * len(self._buf)))
            grown[: self._end] = self._view[: self._end]
            self._buf = grown
            self._view = memoryview(grown)

    # -- the public face -------------------------------------------------------------

    @property
    def interfaces(self) -> list[Interface]:
        """Interfaces seen so far (pcap: one; pcapng: every IDB of every section)."""
        return self._parser.interfaces

    @property
    def section_comments(self) -> list[str]:
        """Comments of the section headers seen so far (pcapng shb_comment)."""
        return self._parser.section_comments

    @property
    def problems(self) -> list[str]:
        """Non-fatal oddities seen so far, one line per kind with its count."""
        return count_problems(self._parser.problems)

    @property
    def next_start(self) -> int:
        """Where in the (decompressed) stream the next record or block starts."""
        return self._base + self._pos

    def state(self) -> tuple[object, ...]:
        """What reading on depends on (byte order, interfaces): see :meth:`resume_at`."""
        return self._parser.state()

    def problem_counts(self) -> Counter[str]:
        """The non-fatal oddities seen so far, counted by kind."""
        return Counter(self._parser.problems)

    def resume_at(self, offset: int) -> int:
        """Go on from the first record or block that starts at or after byte ``offset`` of
        an uncompressed pcapng file (found by its shape, with the interfaces the file's
        first blocks describe); returns where that is. A guess: a caller checks it, and
        :meth:`state` here, against a reader that read up to there."""
        if self._file is None or self.compression is not None or self.format != "pcapng":
            raise ValueError("only an uncompressed pcapng file is read from its middle")
        assert isinstance(self._parser, PcapngParser)
        fd = self._file.fileno()
        try:
            size = os.fstat(fd).st_size
            sample = os.pread(fd, RESUME_SAMPLE, offset)
        except OSError as exc:
            raise CaptureError(f"{self.name}: cannot read ({exc.strerror or exc})") from None
        start = offset + self._parser.guess_start(sample, offset, offset + len(sample) >= size)
        # The interfaces described before the first packet, and before the start.
        self._parser.prime(self._buf, self._pos, min(self._end, start - self._base))
        self._file.seek(start)
        self._base, self._pos, self._end, self._eof = start, 0, 0, False
        self.bytes_read = start
        self._fill()
        return start

    def blocks(self, stop: int | None = None) -> Iterator[RawBlock]:
        """The packets, block by block; stops at the end or at the first damage, or before
        the first record or block that starts at ``stop`` or later (calling again goes on
        from there)."""
        cut: int | None = None  # where ``stop`` ends the reading, once the walk found it
        while not self._done:
            end = self._end
            if stop is not None:
                if cut is None and self._base + self._end >= stop:
                    found = self._parser.next_start(
                        self._buf, self._pos, self._end, stop - self._base
                    )
                    cut = None if found is None else self._base + found
                if cut is not None:
                    if self._base + self._pos >= cut:
                        return
                    end = min(end, cut - self._base)
            eof = self._eof and end == self._end
            scan = self._parser.scan(self._buf, self._pos, end, eof, self.packets + 1)
            if end < self._end and scan.need and scan.damage is None:
                # A record runs past the cut: the walk was wrong (it cannot know a
                # damaged stream's records). No stop then: read on.
                stop = cut = None
            consumed = scan.pos - self._pos
            self._pos = scan.pos
            self.bytes_read += consumed
            if scan.block is not None:
                self.packets += len(scan.block)
                for block in scan.block.split(BLOCK_ROWS):
                    yield block
                    if self.closed:  # closed while the consumer held the block
                        return
            if scan.damage is not None:
                problem = scan.damage
                if self._stream_error:
                    problem += f" ({self.compression} stream is damaged: {self._stream_error})"
                self._set_damage(problem)
                return
            if scan.need == 0 and eof:
                if self._stream_error:
                    self._set_damage(f"{self.compression} stream is damaged: {self._stream_error}")
                self._done = True
                return
            # ``need`` == 0 means the buffer ended exactly on a record boundary.
            self._ensure(max(scan.need, 1))

    @property
    def closed(self) -> bool:
        """True once the reader was closed or has read everything it can."""
        return self._done

    def _set_damage(self, problem: str) -> None:
        self.damage = CaptureDamage(self.name, self._base + self._pos, problem)
        self._done = True

    def close(self) -> None:
        """Release the file (stdin is left open)."""
        self._done = True
        for stream in (self._closer, self._file):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        self._closer = None
        self._file = None

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
