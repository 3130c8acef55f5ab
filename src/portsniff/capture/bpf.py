"""BPF capture filters, compiled and run by libpcap itself (through ctypes).

libpcap's compiler takes DLT_ values, which differ from the LINKTYPE_ values stored in
capture files for a handful of link types; those are translated first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import weakref
from types import TracebackType

import numpy as np
import numpy.typing as npt

from portsniff.capture.block import RawBlock
from portsniff.errors import EngineUnavailable, FilterError

PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

#: LINKTYPE_ (file) -> DLT_ (libpcap API) where they differ (Linux values).
LINKTYPE_TO_DLT = {
    100: 11,  # ATM_RFC1483
    101: 12,  # RAW
    102: 15,  # SLIP_BSDOS
    103: 16,  # PPP_BSDOS
    106: 19,  # ATM_CLIP
    246: 18,  # PFSYNC
}


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


_LIB: ctypes.CDLL | None = None


def _libpcap() -> ctypes.CDLL:
    """libpcap, loaded once with the prototypes we use; EngineUnavailable when absent."""
    global _LIB
    if _LIB is not None:
        return _LIB
    names = [ctypes.util.find_library("pcap"), "libpcap.so.1", "libpcap.so.0.8", "libpcap.so"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        break
    else:
        raise EngineUnavailable(
            "BPF filters need libpcap, which is not installed"
            " (on Debian/Ubuntu: apt-get install libpcap0.8)"
        )
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_BpfProgram),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    ]
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_offline_filter.argtypes = [
        ctypes.POINTER(_BpfProgram),
        ctypes.POINTER(_PktHdr),
        ctypes.c_void_p,
    ]
    lib.pcap_offline_filter.restype = ctypes.c_int
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_freecode.restype = None
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_close.restype = None
    _LIB = lib
    return lib


def _compile(
    lib: ctypes.CDLL, expression: str, linktype: int, snaplen: int, where: str
) -> _BpfProgram:
    dlt = LINKTYPE_TO_DLT.get(linktype, linktype)
    handle = lib.pcap_open_dead(dlt, snaplen)
    if not handle:
        raise FilterError(f"bad filter {expression!r}: libpcap cannot use link type {linktype}")
    try:
        program = _BpfProgram()
        rc = lib.pcap_compile(
            handle, ctypes.byref(program), expression.encode("utf-8"), 1, PCAP_NETMASK_UNKNOWN
        )
        if rc != 0:
            message = (lib.pcap_geterr(handle) or b"").decode("utf-8", errors="replace")
            raise FilterError(f"bad filter {expression!r}{where}: {message}")
        return program
    finally:
        lib.pcap_close(handle)


def _free_all(lib: ctypes.CDLL, programs: dict[int, _BpfProgram]) -> None:
    for program in programs.values():
        lib.pcap_freecode(ctypes.byref(program))
    programs.clear()


class BpfFilter:
    """A filter expression compiled per link type (lazily for link types met later)."""

    def __init__(self, expression: str, linktype: int, snaplen: int = 262144) -> None:
        self.expression = expression
        self.linktype = linktype
        self.snaplen = snaplen
        self._lib = _libpcap()
        self._programs: dict[int, _BpfProgram] = {}
        self._hdr = _PktHdr()
        self._finalizer = weakref.finalize(self, _free_all, self._lib, self._programs)
        self._program(linktype)

    def _program(self, linktype: int) -> _BpfProgram:
        program = self._programs.get(linktype)
        if program is None:
            if not self._finalizer.alive:
                raise ValueError("BpfFilter is closed")
            # The first link type is the one the user filters; name the others.
            where = "" if linktype == self.linktype else f" for link type {linktype}"
            program = _compile(self._lib, self.expression, linktype, self.snaplen, where)
            self._programs[linktype] = program
        return program

    def matches(self, data: bytes, caplen: int, wirelen: int, linktype: int | None = None) -> bool:
        """Whether one packet (its first ``caplen`` bytes in ``data``) passes the filter."""
        program = self._program(self.linktype if linktype is None else linktype)
        caplen = min(caplen, len(data))
        self._hdr.caplen = caplen
        self._hdr.len = wirelen
        buf = ctypes.create_string_buffer(bytes(data[:caplen]), caplen or 1)
        return bool(
            self._lib.pcap_offline_filter(ctypes.byref(program), ctypes.byref(self._hdr), buf)
        )

    def mask(self, block: RawBlock) -> npt.NDArray[np.bool_]:
        """One bool per packet of ``block``: does it pass the filter."""
        n = len(block)
        out = np.zeros(n, dtype=np.bool_)
        if n == 0:
            return out
        data = block.data
        if data.readonly or data.nbytes == 0 or not data.c_contiguous:
            # libpcap needs a writable address; such views are copied once per block.
            data = memoryview(bytearray(data.tobytes() or b"\x00"))
        holder = (ctypes.c_char * data.nbytes).from_buffer(data.cast("B"))
        base = ctypes.addressof(holder)
        run = self._lib.pcap_offline_filter
        hdr = self._hdr
        hdr_ref = ctypes.byref(hdr)
        offsets = block.offset.tolist()
        # Never let libpcap read past the buffer, whatever the block says.
        room = np.maximum(data.nbytes - block.offset, 0)
        caplens = np.minimum(block.caplen, room).tolist()
        wirelens = block.wirelen.tolist()
        linktypes = block.linktype.tolist()
        current = -1
        prog_ref = None
        for i in range(n):
            lt = linktypes[i]
            if lt != current:
                prog_ref = ctypes.byref(self._program(lt))
                current = lt
            hdr.caplen = caplens[i]
            hdr.len = wirelens[i]
            out[i] = run(prog_ref, hdr_ref, base + offsets[i]) != 0
        del holder
        return out

    def close(self) -> None:
        """Free the compiled programs."""
        self._finalizer()

    def __enter__(self) -> BpfFilter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def compile_filter(expression: str, linktype: int, snaplen: int = 262144) -> BpfFilter:
    """Compile ``expression`` for ``linktype``; FilterError with libpcap's message if bad."""
    return BpfFilter(expression, linktype, snaplen)
