"""One live capture: the capture tool's pipe -> engine -> annotator -> labelled packets.

The labels are exactly those of ``annotate`` (same engines, same annotators: the
columnar VectorAnnotator by default, the per-packet reference Annotator on request); only
the source differs. The session stops on a packet count, a duration, :meth:`LiveSession.stop`
(Ctrl-C / SIGTERM handlers call it) or the interface going away, and always ends with
what was captured and the tool's drop counters.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from portsniff.annotate.annotator import AnnotateCounts, Annotator
from portsniff.annotate.pipeline import make_annotator
from portsniff.annotate.records import PacketRecord
from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.capture.block import CaptureDamage
from portsniff.errors import CaptureError, UsageError
from portsniff.live import interfaces
from portsniff.live.backend import (
    GATHER_BYTES,
    GATHER_SECONDS,
    READ_BUFFER_BYTES,
    CaptureProcess,
    CaptureStats,
    PcapPipeReader,
    find_tool,
    tool_command,
)
from portsniff.timestamps import seconds

if TYPE_CHECKING:
    from portsniff.annotate.pipeline import PcapngOut
    from portsniff.decode.batch import DecodedBatch
    from portsniff.registry.index import RegistryIndex

#: How often (seconds) tcpdump is asked for its counters while a view is shown.
STATS_INTERVAL = 1.0
#: How often (seconds) the interface's state is checked.
LINK_INTERVAL = 0.5

STOP_REASONS = {
    "count": "packet count reached",
    "duration": "duration reached",
    "interrupted": "interrupted (Ctrl-C)",
    "terminated": "terminated (SIGTERM)",
    "interface-down": "the interface went down",
    "interface-gone": "the interface disappeared",
    "tool-exit": "the capture tool exited",
}


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """What to capture and when to stop."""

    interface: str
    engine: str = "fast"
    bpf: str | None = None
    limit: int | None = None  # packets
    duration: float | None = None  # seconds
    tool: str = "auto"  # tcpdump, dumpcap or auto (tcpdump, else dumpcap)
    buffer_mib: int = 32  # the kernel capture buffer the tool asks for


@dataclass(slots=True)
class LiveReport:
    """What one live capture saw: the source's entry in the summary and the end record."""

    interface: str
    tool: str
    name: str
    linktypes: Counter[int] = field(default_factory=Counter)
    packets: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    stats: CaptureStats | None = None
    stop_reason: str | None = None
    exit_status: int | None = None
    damage: CaptureDamage | None = None
    error: str | None = None  # the capture ended by a failure (interface gone, tool died)
    problems: list[str] = field(default_factory=list)

    def drop_lines(self) -> list[str]:
        """The drop counters in words (never empty: no counters is said too)."""
        s = self.stats
        if s is None:
            return [f"drop counters unavailable ({self.tool} reported none)"]
        parts = [
            f"{s.dropped_kernel if s.dropped_kernel is not None else 'unknown'} dropped by kernel"
        ]
        if s.dropped_interface is not None:
            parts.append(f"{s.dropped_interface} dropped by interface")
        if s.dropped_tool is not None:
            parts.append(f"{s.dropped_tool} dropped by {s.tool}")
        return [f"{s.tool}: " + ", ".join(parts)]

    def drop_counts(self) -> dict[str, int | None]:
        """``dropped_by_kernel`` etc. for the jsonl end record (None: not reported)."""
        s = self.stats
        return {
            "dropped_by_kernel": s.dropped_kernel if s else None,
            "dropped_by_interface": s.dropped_interface if s else None,
            "dropped_by_tool": s.dropped_tool if s else None,
        }

    def stop_text(self) -> str:
        """Why the capture stopped, in words."""
        if self.stop_reason is None:
            return "not stopped"
        return f"stopped: {STOP_REASONS.get(self.stop_reason, self.stop_reason)}"

    def problem_lines(self) -> list[str]:
        """Failures, damage and problems, one line each."""
        out = []
        if self.error:
            out.append(self.error)
        if self.damage is not None:
            out.append(str(self.damage))
        out.extend(self.problems)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The capture as the summary's ``files`` entry (FileReport's keys and more)."""
        return {
            "file": f"{self.interface} (live, {self.tool})",
            "format": "pcap",
            "compression": None,
            "linktypes": {str(k): v for k, v in sorted(self.linktypes.items())},
            "packets": self.packets,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "damage": str(self.damage) if self.damage else None,
            "error": None,  # what was captured is summarised; ``problems`` says the rest
            "problems": [*self.drop_lines(), self.stop_text(), *self.problem_lines()],
            "interface": self.interface,
            "capture": self.stats.as_dict() if self.stats else None,
            "stop_reason": self.stop_reason,
        }


def check_options(options: LiveOptions) -> int:
    """Fail before starting anything; returns the interface's link type."""
    iface = options.interface
    if options.engine == "pyshark":
        raise UsageError(
            "--engine pyshark reads capture files only; for live capture use --engine fast "
            "or scapy (or capture with -w OUT.pcapng, then annotate it with --engine pyshark)"
        )
    if options.limit is not None and options.limit < 1:
        raise UsageError("-c/--count must be 1 or more")
    if options.duration is not None and options.duration <= 0:
        raise UsageError("--duration must be more than 0 seconds")
    if options.buffer_mib < 1:
        raise UsageError("--buffer must be 1 MiB or more")
    if not interfaces.exists(iface):
        names = [*interfaces.interface_names(), interfaces.ANY]
        raise CaptureError(f"no interface {iface!r} (interfaces: {', '.join(names)})")
    linktype = interfaces.linktype_of(iface)
    if options.bpf:
        from portsniff.capture.bpf import compile_filter

        compile_filter(options.bpf, linktype).close()
    return linktype


class LiveSession:
    """Captures on one interface and yields its labelled packets (see module docstring)."""

    def __init__(
        self,
        options: LiveOptions,
        index: RegistryIndex,
        *,
        pcapng_out: BinaryIO | None = None,
        section_comment: str | None = None,
        annotator: Annotator | None = None,
        vector: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.index = index
        # The columnar annotator (same records, a block at a time) unless the reference
        # is asked for (or given, or another engine than fast decodes).
        if vector is None:
            vector = options.engine == "fast" and annotator is None
        self.vector = vector
        self.annotator = make_annotator(index, vector=vector, annotator=annotator)
        #: Reads are gathered up to this many bytes, or for this long after the first
        #: packets arrive, before labelling (bigger blocks label faster; see backend).
        self.gather_bytes = GATHER_BYTES
        self.gather_seconds = GATHER_SECONDS
        self.linktype = check_options(options)
        self.tool, self.tool_path = find_tool(options.tool)
        self.report = LiveReport(options.interface, self.tool, f"live:{options.interface}")
        self._pcapng_out = pcapng_out
        self._section_comment = section_comment
        self._clock = clock
        self._process: CaptureProcess | None = None
        self._emitted = 0
        self._started_at = 0.0

    @property
    def counts(self) -> AnnotateCounts:
        return self.annotator.counts

    def write_pcapng(self, stream: BinaryIO, section_comment: str | None = None) -> None:
        """Also write every packet, with its label as a comment, to ``stream`` (pcapng)."""
        self._pcapng_out = stream
        self._section_comment = section_comment

    @property
    def started(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Start the capture tool; returns once it captures (errors as PortsniffError)."""
        o = self.options
        argv = tool_command(
            self.tool,
            self.tool_path,
            o.interface,
            bpf=o.bpf,
            count=o.limit,
            buffer_mib=o.buffer_mib,
        )
        process = CaptureProcess(self.tool, self.tool_path, argv)
        process.start(o.interface, [*interfaces.interface_names(), interfaces.ANY])
        self._process = process
        self._started_at = self._clock()
        if self.report.stop_reason is not None:  # stopped while it was starting
            process.stop()

    def stop(self, reason: str = "interrupted") -> None:
        """Stop capturing; what was captured still comes out. Safe in a signal handler."""
        if self.report.stop_reason is None:
            self.report.stop_reason = reason
        if self._process is not None:
            self._process.stop()

    def stats(self) -> CaptureStats | None:
        """The tool's latest counters (tcpdump: as of the last request)."""
        return self._process.stats() if self._process is not None else None

    def elapsed(self) -> float:
        return self._clock() - self._started_at if self._process is not None else 0.0

    def records(
        self,
        tick: Callable[[], None] | None = None,
        tick_seconds: float = 0.5,
        after_block: Callable[[], None] | None = None,
    ) -> Iterator[PacketRecord]:
        """The labelled packets as they arrive; ``tick`` is called at least every
        ``tick_seconds`` (idle or busy) so that a view can refresh, ``after_block`` after
        the packets of each read (the moment to flush an output stream)."""
        if self.vector:
            for lb in self.batches(tick, tick_seconds, after_block):
                yield from lb.iter_records()
            return
        annotator = self.annotator
        assert isinstance(annotator, Annotator)
        writer = self._open_writer()
        try:
            for batch in self._decoded(writer, tick, tick_seconds):
                if batch is not None:
                    for record in annotator.feed(batch):
                        if self._emit(record, writer):
                            yield record
                    if writer is not None:
                        writer.writer.flush()  # a pcapng is valid after every whole block
                    if after_block is not None:
                        after_block()
            for record in annotator.finish():
                if self._emit(record, writer):
                    yield record
        finally:
            if writer is not None:
                writer.close()

    def batches(
        self,
        tick: Callable[[], None] | None = None,
        tick_seconds: float = 0.5,
        after_block: Callable[[], None] | None = None,
    ) -> Iterator[LabelledBatch]:
        """The labelled packets as columnar blocks (the vector path; same records as
        :meth:`records`); ``tick`` and ``after_block`` as there (``after_block`` is called
        after each read's blocks have been yielded)."""
        if not self.vector:
            raise ValueError("batches() needs the vector annotator")
        annotator = self.annotator
        assert isinstance(annotator, VectorAnnotator)
        writer = self._open_writer()
        try:
            for batch in self._decoded(writer, tick, tick_seconds):
                if batch is not None:
                    for lb in annotator.feed(batch):
                        got = self._emit_batch(lb, writer)
                        if got is not None:
                            yield got
                    if writer is not None:
                        writer.writer.flush()  # a pcapng is valid after every whole block
                    if after_block is not None:
                        after_block()
            for lb in annotator.finish():
                got = self._emit_batch(lb, writer)
                if got is not None:
                    yield got
        finally:
            if writer is not None:
                writer.close()

    def _open_writer(self) -> PcapngOut | None:
        from portsniff.annotate.pipeline import PcapngOut

        if self._pcapng_out is None:
            return None
        return PcapngOut(self._pcapng_out, self._section_comment)

    def _decoded(
        self,
        writer: PcapngOut | None,
        tick: Callable[[], None] | None,
        tick_seconds: float,
    ) -> Iterator[DecodedBatch | None]:
        """Each read's packets decoded (None when idle), with the report, the deadline,
        the link checks and the ticks kept up to date between them."""
        from portsniff.decode.engines import open_engine

        if self._process is None:
            self.start()
        process = self._process
        assert process is not None
        o = self.options
        report = self.report
        reader = PcapPipeReader(
            process.stdout_fd,
            report.name,
            block_bytes=READ_BUFFER_BYTES,
            gather_bytes=self.gather_bytes,
            gather_seconds=self.gather_seconds,
        )
        engine = open_engine(o.engine, report.name)
        deadline = None if o.duration is None else self._started_at + o.duration
        next_tick = next_link = next_stats = self._clock()
        try:
            for block in reader.blocks(timeout=min(tick_seconds, 0.25)):
                now = self._clock()
                if block is not None and report.stop_reason != "count":
                    n = len(block)
                    report.packets += n
                    report.bytes += int(block.wirelen.sum())
                    ts0 = seconds(int(block.ts_ns.min()))  # the earliest (time may go back)
                    ts1 = seconds(int(block.ts_ns.max()))
                    report.first_ts = ts0 if report.first_ts is None else report.first_ts
                    report.last_ts = ts1
                    report.linktypes[int(block.linktype[0])] += n
                    batch = engine.decode(block)
                    if writer is not None:
                        writer.hold(block, None, reader.interfaces)
                    yield batch
                if deadline is not None and now >= deadline:
                    self.stop("duration")
                if now >= next_link:
                    next_link = now + LINK_INTERVAL
                    self._check_link()
                if tick is not None and now >= next_stats:
                    next_stats = now + STATS_INTERVAL
                    process.request_stats()
                if tick is not None and now >= next_tick:
                    next_tick = now + tick_seconds
                    tick()
        finally:
            engine.close()
            report.damage = reader.damage
            report.problems.extend(reader.problems)
            self._finish_process()

    def _emit_batch(self, lb: LabelledBatch, writer: PcapngOut | None) -> LabelledBatch | None:
        """``lb`` cut at the packet limit (None when nothing of it is output)."""
        limit = self.options.limit
        if limit is not None:
            room = limit - self._emitted
            if room <= 0:
                return None
            if len(lb) > room:
                lb = lb.slice(0, room)
        self._emitted += len(lb)
        if writer is not None:
            write = writer.write
            for record in lb.iter_records():
                write(record)
        if limit is not None and self._emitted >= limit:
            self.stop("count")
        return lb

    def _emit(self, record: PacketRecord, writer: PcapngOut | None) -> bool:
        limit = self.options.limit
        if limit is not None and self._emitted >= limit:
            return False
        self._emitted += 1
        if writer is not None:
            writer.write(record)
        if limit is not None and self._emitted >= limit:
            self.stop("count")
        return True

    def _check_link(self) -> None:
        iface = self.options.interface
        up = interfaces.is_up(iface)
        if up is None:
            self.report.error = f"{iface}: the interface disappeared during the capture"
            self.stop("interface-gone")
        elif not up:
            self.report.error = f"{iface}: the interface went down during the capture"
            self.stop("interface-down")

    def _finish_process(self) -> None:
        process = self._process
        if process is None or process.proc is None:
            return
        report = self.report
        if process.running and report.stop_reason is None:
            # The consumer stopped early (an exception, or it closed the generator).
            self.stop("interrupted")
        code = process.wait()
        report.exit_status = code
        report.stats = process.stats()
        text = process.stderr_text()
        low = text.lower()
        if report.stop_reason is None:
            # The tool ended by itself: -c reached, or a failure.
            if code == 0:
                report.stop_reason = "count" if self.options.limit is not None else "tool-exit"
            elif "disappeared" in low or "went down" in low or "no such device" in low:
                report.stop_reason = "interface-gone"
                report.error = (
                    f"{self.options.interface}: the interface went away during the capture"
                )
            else:
                report.stop_reason = "tool-exit"
                last = [ln for ln in text.splitlines() if ln.strip() and "packets" not in ln]
                report.error = (
                    f"{self.tool} exited with status {code}: {last[-1] if last else 'no message'}"
                )
        process.close()
