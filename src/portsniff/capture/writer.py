"""Write packets, unchanged, to a pcapng stream (one section, little-endian).

Packets go in Enhanced Packet Blocks with an ``opt_comment`` when there is something to
say; interfaces get ``if_name`` and ``if_tsresol`` so that timestamps keep their precision.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 1
EPB_TYPE = 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
NS_PER_S = 1_000_000_000
U64_MAX = (1 << 64) - 1


def _option(code: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"pcapng option {code} is too long ({len(value)} bytes)")
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _options(options: list[bytes]) -> bytes:
    return b"".join(options) + b"\x00\x00\x00\x00" if options else b""


def _block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def _tsresol(ticks_per_second: int) -> bytes:
    """The if_tsresol byte for a power of 10 or of 2 ticks per second."""
    for base, flag in ((10, 0), (2, 0x80)):
        exp, value = 0, 1
        while value < ticks_per_second:
            value *= base
            exp += 1
        if value == ticks_per_second and exp < 128:
            return bytes([flag | exp])
    raise ValueError(f"timestamp resolution {ticks_per_second} is not a power of 10 or of 2")


class PcapngWriter:
    """Writes a pcapng section to ``stream``: interfaces first, then their packets."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        section_comment: str | None = None,
        application: str = "portsniff",
    ) -> None:
        self._stream = stream
        self._resolutions: list[int] = []
        self._closed = False
        options = []
        if section_comment:
            options.append(_option(1, section_comment.encode("utf-8")))
        if application:
            options.append(_option(4, application.encode("utf-8")))
        # Section length -1: unknown, so that the file can be streamed.
        body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options(options)
        stream.write(_block(SHB_TYPE, body))

    def add_interface(
        self,
        linktype: int,
        snaplen: int,
        name: str | None = None,
        ts_resolution: int = NS_PER_S,
    ) -> int:
        """Describe an interface; its index is what :meth:`write_packet` takes."""
        options = []
        if name:
            options.append(_option(2, name.encode("utf-8")))
        options.append(_option(9, _tsresol(ts_resolution)))
        body = struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen & 0xFFFFFFFF) + _options(options)
        self._stream.write(_block(IDB_TYPE, body))
        self._resolutions.append(ts_resolution)
        return len(self._resolutions) - 1

    def write_packet(
        self,
        interface: int,
        ts_ns: int,
        wirelen: int,
        data: bytes | bytearray | memoryview,
        comment: str | None = None,
    ) -> None:
        """Write one packet as an EPB; ``data`` is the captured bytes, written as they are."""
        if not 0 <= interface < len(self._resolutions):
            raise ValueError(f"unknown interface {interface} (add it with add_interface)")
        ticks = ts_ns * self._resolutions[interface] // NS_PER_S
        if not 0 <= ticks <= U64_MAX:
            raise ValueError(f"timestamp {ts_ns} ns cannot be written in pcapng")
        caplen = len(data)
        options = [_option(1, comment.encode("utf-8"))] if comment else []
        body = b"".join(
            (
                struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, caplen, wirelen),
                bytes(data),
                b"\x00" * (-caplen % 4),
                _options(options),
            )
        )
        self._stream.write(_block(EPB_TYPE, body))

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()

    def close(self) -> None:
        """Flush; the stream itself belongs to the caller and stays open."""
        if not self._closed:
            self._closed = True
            self._stream.flush()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
