"""The capture back-end: tcpdump (or dumpcap) writing classic pcap to a pipe we read.

The capture tool does the part that loses packets when it is slow: it drains the
kernel's ring buffer (``-B``, default 32 MiB here) as fast as libpcap can, applies the
BPF filter in the kernel, and hands complete records to the pipe. We read whatever one
``read`` returns, so packets reach the labeller within the tool's buffering delay
(libpcap's 1 s block timeout at most), not when some large buffer fills. Drop counters
come from the tool: tcpdump prints them on SIGUSR1 (so the live table can show them)
and at exit, dumpcap at exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from portsniff.capture.block import CaptureDamage, Interface, RawBlock
from portsniff.capture.pcap import GLOBAL_HEADER_LEN, PCAP_MAGICS, PcapParser, count_problems
from portsniff.errors import CaptureError, FilterError, PortsniffError

TOOLS = ("tcpdump", "dumpcap")
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20  # the unprivileged maximum (/proc/sys/fs/pipe-max-size)
#: Reads are gathered into blocks of up to this many bytes: while reads come back big
#: (catching up after a burst), and once more GATHER_SECONDS after a short read (tcpdump
#: -U writes every packet on its own), so that per-block costs are paid for thousands of
#: packets rather than a few. The wait bounds the extra delay of a packet; it is short
#: enough that the 1 MiB pipe does not fill at 100k packets/s.
GATHER_BYTES = 4 << 20
GATHER_SECONDS = 0.01
#: The pipe reader's buffer (room for a gathered block and a partial record).
READ_BUFFER_BYTES = 2 * GATHER_BYTES
SETCAP_HINT = "sudo setcap cap_net_raw,cap_net_admin=eip $(which {tool})"


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """A capture tool's counters; None where the tool does not say."""

    tool: str
    captured: int | None = None
    received: int | None = None  # packets the filter saw (libpcap ps_recv)
    dropped_kernel: int | None = None  # no room in the kernel's buffer (ps_drop)
    dropped_interface: int | None = None  # dropped by the driver/interface (ps_ifdrop)
    dropped_tool: int | None = None  # dropped by the tool itself (dumpcap)

    @property
    def dropped(self) -> int | None:
        """All drops reported, or None when the tool reported none of them."""
        parts = [self.dropped_kernel, self.dropped_interface, self.dropped_tool]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None

    def as_dict(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "captured": self.captured,
            "received": self.received,
            "dropped_by_kernel": self.dropped_kernel,
            "dropped_by_interface": self.dropped_interface,
            "dropped_by_tool": self.dropped_tool,
        }


def _last_int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def parse_tcpdump_stats(text: str) -> CaptureStats | None:
    """The latest counters in tcpdump's stderr (its SIGUSR1 line or its exit lines)."""
    captured = _last_int(r"(\d+) packets? captured", text)
    received = _last_int(r"(\d+) packets? received by filter", text)
    dropped = _last_int(r"(\d+) packets? dropped by kernel", text)
    if captured is None and received is None and dropped is None:
        return None
    ifdrop = _last_int(r"(\d+) packets? dropped by interface", text)
    return CaptureStats("tcpdump", captured, received, dropped, ifdrop)


_DUMPCAP_IFACE = re.compile(
    r"received/dropped on interface .*?: (\d+)/(\d+)"
    r"(?: \(pcap:(\d+)/dumpcap:(\d+)/flushed:(\d+)(?:/ps_ifdrop:(\d+))?\))?"
)


def parse_dumpcap_stats(text: str) -> CaptureStats | None:
    """dumpcap's exit report (``Packets received/dropped on interface 'lo': 3/0 (...)``)."""
    captured = _last_int(r"Packets captured: (\d+)", text)
    found = _DUMPCAP_IFACE.findall(text)
    if not found:
        return None if captured is None else CaptureStats("dumpcap", captured)
    received, dropped, pcap, own, flushed, ifdrop = found[-1]
    if pcap:
        return CaptureStats(
            "dumpcap",
            captured,
            int(received),
            int(pcap),
            int(ifdrop) if ifdrop else None,
            int(own) + int(flushed),
        )
    return CaptureStats("dumpcap", captured, int(received), int(dropped))


def find_tool(preferred: str = "auto") -> tuple[str, str]:
    """(name, path) of the capture tool to run; CaptureError naming the package if none."""
    names = TOOLS if preferred == "auto" else (preferred,)
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
        if path:
            return name, path
    wanted = " or ".join(names)
    raise CaptureError(
        f"live capture needs {wanted}, which is not installed "
        "(apt-get install tcpdump; dumpcap comes with wireshark-common)"
    )


def tool_command(
    tool: str,
    path: str,
    iface: str,
    *,
    bpf: str | None = None,
    count: int | None = None,
    buffer_mib: int = 32,
    snaplen: int = 262144,
) -> list[str]:
    """The command line that captures on ``iface`` and writes pcap to stdout."""
    if tool == "tcpdump":
        argv = [
            path,
            "-i",
            iface,
            "-U",
            "-w",
            "-",
            "-s",
            str(snaplen),
            "-B",
            str(buffer_mib * 1024),
        ]
        if count is not None:
            argv += ["-c", str(count)]
        if bpf:
            argv.append(bpf)
        return argv
    if tool == "dumpcap":
        argv = [path, "-i", iface, "-P", "-w", "-", "-s", str(snaplen), "-B", str(buffer_mib)]
        if count is not None:
            argv += ["-c", str(count)]
        if bpf:
            argv += ["-f", bpf]
        return argv
    raise ValueError(f"unknown capture tool {tool!r}")


def tool_error(tool: str, iface: str, stderr: str, valid: list[str]) -> PortsniffError:
    """The one-line error for a capture tool that failed to start."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    said = "; ".join(ln for ln in lines if not ln.lower().startswith(("capturing on", "file:")))
    low = stderr.lower()
    if "permission" in low or "operation not permitted" in low:
        return CaptureError(
            f"{iface}: no permission to capture (needs CAP_NET_RAW and CAP_NET_ADMIN): "
            f"run as root (sudo), or once: {SETCAP_HINT.format(tool=tool)}"
        )
    if "no such device" in low or "there is no device" in low or "doesn't exist" in low:
        return CaptureError(f"no interface {iface!r} (interfaces: {', '.join(valid) or 'none'})")
    if "syntax error" in low or "parse filter" in low or "invalid capture filter" in low:
        return FilterError(f"bad filter: {tool}: {said}")
    if "not up" in low:
        return CaptureError(f"{iface}: the interface is down (ip link set {iface} up)")
    return CaptureError(f"{tool} failed on {iface}: {said or 'no message'}")


def _pdeathsig() -> None:
    # Runs in the child before exec: if portsniff dies, the capture tool gets SIGTERM
    # instead of capturing on forever (best effort; the closed pipe also stops it).
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class CaptureProcess:
    """The capture tool as a child process: its stdout is our pcap stream."""

    def __init__(self, tool: str, path: str, argv: list[str]) -> None:
        self.tool = tool
        self.path = path
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._stopping = False

    def start(self, iface: str, valid: list[str], timeout: float = 10.0) -> None:
        """Start the tool and wait until it captures; the tool's failure as our error."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # our signal handling decides when it stops
            preexec_fn=_pdeathsig,  # no threads yet, so preexec_fn is safe
        )
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        ready = ("listening on", "capturing on")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stderr_text().lower()
            if any(r in text for r in ready):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        code = self.proc.poll()
        if code is None:
            return  # no banner, but it runs: go on (the pipe will tell)
        text = self.stderr_text()
        self.close()
        raise tool_error(self.tool, iface, text, valid)

    @property
    def stdout_fd(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout.fileno()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self) -> str:
        """Everything the tool wrote to stderr so far."""
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            return os.pread(self._stderr.fileno(), 1 << 20, 0).decode("utf-8", "replace")
        return ""

    def stop(self) -> None:
        """Ask the tool to stop (it flushes, prints its counters, then closes the pipe).

        Only ``os.kill``: safe to call from a signal handler, and more than once.
        """
        if self.proc is not None and self.proc.returncode is None and not self._stopping:
            self._stopping = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)

    def request_stats(self) -> None:
        """Ask tcpdump for its counters now (SIGUSR1); dumpcap reports at exit only."""
        if self.tool == "tcpdump" and self.running and not self._stopping:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGUSR1)

    def stats(self) -> CaptureStats | None:
        """The latest counters the tool printed."""
        text = self.stderr_text()
        if self.tool == "tcpdump":
            return parse_tcpdump_stats(text)
        return parse_dumpcap_stats(text)

    def wait(self, timeout: float = 5.0) -> int:
        """Wait for the tool to exit (stopping it, then killing it, if it does not)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def close(self) -> None:
        """Stop the tool if it still runs and release the pipe and the stderr file."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.stop()
                self.wait(2.0)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class PcapPipeReader:
    """Classic pcap read from a pipe, yielding each read's complete packets at once.

    ``blocks(timeout)`` yields a RawBlock as soon as a ``read`` completes records, and
    None when ``timeout`` seconds pass without data (so the caller can refresh a view or
    check a deadline). Blocks view one reused buffer, as the file reader's do. With
    ``gather_bytes``/``gather_seconds``, reads are gathered up to that many bytes, or
    until the pipe is dry after one wait of that long (per-block costs are paid for more
    packets; a packet waits about ``gather_seconds`` more at most).
    """

    format = "pcap"

    def __init__(
        self,
        fd: int,
        name: str,
        *,
        block_bytes: int = 1 << 20,
        gather_bytes: int = 0,
        gather_seconds: float = 0.0,
    ) -> None:
        self.fd = fd
        self.name = name
        #: Reads gather up to ``gather_bytes`` (0: each read is a block of its own).
        self.gather_bytes = gather_bytes
        self.gather_seconds = gather_seconds
        self.packets = 0
        self.bytes_read = 0
        self.damage: CaptureDamage | None = None
        self.eof = False
        self._parser: PcapParser | None = None
        self._buf = bytearray(max(block_bytes, 64))
        self._view = memoryview(self._buf)
        self._pos = 0
        self._end = 0
        self._base = 0

    @property
    def interfaces(self) -> list[Interface]:
        """The pipe's one interface once its header has arrived."""
        return self._parser.interfaces if self._parser is not None else []

    @property
    def linktype(self) -> int | None:
        return self._parser.linktype if self._parser is not None else None

    @property
    def problems(self) -> list[str]:
        return count_problems(self._parser.problems) if self._parser is not None else []

    def _header(self) -> None:
        head = bytes(self._buf[:4])
        if head not in PCAP_MAGICS:
            what = "pcapng" if head == b"\x0a\x0d\x0d\x0a" else f"bytes {head.hex(' ')}"
            raise CaptureError(f"{self.name}: the capture tool sent {what}, not classic pcap")
        self._parser = PcapParser(bytes(self._buf[:GLOBAL_HEADER_LEN]), self.name)
        self._pos = GLOBAL_HEADER_LEN

    def _make_room(self, need: int) -> None:
        if self._pos:
            tail = self._end - self._pos
            # Same-size slice assignment: allowed while old blocks still view the buffer.
            self._buf[:tail] = self._buf[self._pos : self._end]
            self._base += self._pos
            self._end, self._pos = tail, 0
        if need > len(self._buf):
            grown = bytearray(max(need, 2 * len(self._buf)))
            grown[: self._end] = self._view[: self._end]
            self._buf = grown
            self._view = memoryview(grown)

    def _gather(self, n: int) -> None:
        """After a read of ``n`` bytes, read on up to ``gather_bytes``: at once while
        reads come back big (catching up), and after one ``gather_seconds`` sleep when
        the pipe runs (nearly) dry, taking what came in that time."""
        waited = False
        short = self.gather_bytes // 16
        while self._end - self._pos < self.gather_bytes and self._end < len(self._buf):
            if n < short:
                if waited:
                    return
                # One sleep, then one big read, rather than a wake-up and a read per
                # packet (tcpdump -U writes each packet on its own): this leaves the CPU
                # to the capture tool, which must keep draining the kernel's ring.
                time.sleep(self.gather_seconds)
                waited = True
            if not select.select([self.fd], [], [], 0)[0]:
                return
            n = os.readv(self.fd, [self._view[self._end :]])
            if n == 0:
                self.eof = True
                return
            self._end += n

    def blocks(self, timeout: float | None = 0.5) -> Iterator[RawBlock | None]:
        """Packets as they arrive; None after ``timeout`` idle seconds; ends at EOF/damage."""
        while True:
            need = GLOBAL_HEADER_LEN
            if self._parser is None and self._end >= GLOBAL_HEADER_LEN:
                self._header()
            if self._parser is not None:
                scan = self._parser.scan(
                    self._buf, self._pos, self._end, self.eof, self.packets + 1
                )
                self.bytes_read += scan.pos - self._pos
                self._pos = scan.pos
                if scan.block is not None:
                    self.packets += len(scan.block)
                    yield scan.block
                if scan.damage is not None:
                    self.damage = CaptureDamage(self.name, self._base + self._pos, scan.damage)
                    return
                need = scan.need
            if self.eof:
                if self._parser is None and self._end:
                    self.damage = CaptureDamage(
                        self.name, 0, f"truncated pcap global header ({self._end} of 24 bytes)"
                    )
                return
            self._make_room(max(need, 1))
            if timeout is not None:
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if not ready:
                    yield None
                    continue
            n = os.readv(self.fd, [self._view[self._end :]])
            if n == 0:
                self.eof = True
                continue
            self._end += n
            if self.gather_bytes:
                self._gather(n)
