"""Capture files -> engine -> annotator: the stream of labelled packets, with a report
of what each file held and where it was damaged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import numpy.typing as npt

from portsniff.annotate.annotator import AnnotateCounts, Annotator
from portsniff.annotate.records import PacketRecord
from portsniff.capture.block import CaptureDamage, Interface, RawBlock
from portsniff.decode.batch import DecodedBatch

if TYPE_CHECKING:
    from portsniff.annotate.parallel import Figures, UnitResult
    from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
    from portsniff.capture.reader import CaptureReader
    from portsniff.registry.index import RegistryIndex

#: Capture bytes read per block by the columnar path (bigger blocks: fewer flows per packet).
VECTOR_BLOCK_BYTES = 16 << 20


@dataclass(slots=True)
class FileReport:
    """What was read from one capture file."""

    file: str
    format: str | None = None
    compression: str | None = None
    linktypes: Counter[int] = field(default_factory=Counter)
    packets: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    damage: CaptureDamage | None = None
    error: str | None = None  # the file could not be read at all
    problems: list[str] = field(default_factory=list)
    section_comments: list[str] = field(default_factory=list)

    def add_unit(self, res: UnitResult, problems: Counter[str]) -> None:
        """Add what was read from one byte range of the file (its parser's problem
        counts go to ``problems``, counted into the report once the file is read)."""
        self.packets += res.packets
        self.bytes += res.bytes
        if res.first_ts is not None:
            self.first_ts = (
                res.first_ts if self.first_ts is None else min(self.first_ts, res.first_ts)
            )
        if res.last_ts is not None:
            self.last_ts = res.last_ts if self.last_ts is None else max(self.last_ts, res.last_ts)
        self.linktypes.update(res.linktypes)
        problems.update(res.problems)
        if res.damage is not None:
            self.damage = CaptureDamage(self.file, res.damage[0], res.damage[1])

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "format": self.format,
            "compression": self.compression,
            "linktypes": {str(k): v for k, v in sorted(self.linktypes.items())},
            "packets": self.packets,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "damage": str(self.damage) if self.damage else None,
            "error": self.error,
            "problems": self.problems,
        }


def make_annotator(
    index: RegistryIndex, *, vector: bool, annotator: Annotator | None = None
) -> Annotator | VectorAnnotator:
    """The columnar annotator, or the given (else a new) reference one."""
    if vector:
        from portsniff.annotate.vector import VectorAnnotator

        return VectorAnnotator(index)
    return annotator if annotator is not None else Annotator(index)


class AnnotateRun:
    """Reads captures in order and yields their labelled packets.

    ``bpf`` keeps only the packets a libpcap filter matches (frame numbers stay those of
    the file); ``limit`` stops after that many packets in all. ``pcapng_out``, when
    given, receives every output packet unchanged with its label as a packet comment.
    With ``keep_going`` a file that cannot be read is reported in ``files`` instead of
    raising (the summary of a directory goes on with the rest).
    """

    def __init__(
        self,
        paths: Sequence[str],
        index: RegistryIndex,
        *,
        engine: str = "fast",
        bpf: str | None = None,
        limit: int | None = None,
        pcapng_out: BinaryIO | None = None,
        section_comment: str | None = None,
        keep_going: bool = False,
        annotator: Annotator | None = None,
        vector: bool | None = None,
        workers: int = 1,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.index = index
        self.engine = engine
        self.bpf = bpf
        self.limit = limit
        self.keep_going = keep_going
        # The columnar annotator (same records, a block at a time) unless the reference is
        # asked for: by default with the fast engine, and not with a packet limit (the
        # reference stops exactly at the limit, counts included).
        if vector is None:
            vector = engine == "fast" and annotator is None and limit is None
        self.vector = vector
        self.annotator = make_annotator(index, vector=vector, annotator=annotator)
        self.files: list[FileReport] = []
        #: Processes in all: 2 adds one that formats or summarises (the caller starts it,
        #: see big_input); each one beyond reads and decodes big classic pcap files in
        #: chunks. Labelling stays in this process.
        self.workers = workers
        #: Called with the number of capture bytes read after each block (progress bars).
        self.progress = progress
        self._pcapng_out = pcapng_out
        self._section_comment = section_comment
        self._emitted = 0

    @property
    def counts(self) -> AnnotateCounts:
        """What the annotator counted."""
        return self.annotator.counts

    @property
    def damaged(self) -> bool:
        """True when some input was damaged or unreadable (exit status 2)."""
        return any(f.damage is not None or f.error is not None for f in self.files)

    def records(self) -> Iterator[PacketRecord]:
        """The labelled packets of every file, in file and frame order."""
        writer = self._open_writer()
        try:
            if self.vector:
                for lb in self._labelled(writer):
                    for record in lb.iter_records():
                        yield record
                        if not self._emit(record, writer):
                            return
                return
            annotator = self.annotator
            assert isinstance(annotator, Annotator)
            for batch, mask in self._decoded(writer):
                for record in annotator.feed(batch, mask):
                    yield record
                    if not self._emit(record, writer):
                        return
            for record in annotator.finish():
                yield record
                if not self._emit(record, writer):
                    return
        finally:
            if writer is not None:
                writer.close()

    def batches(self) -> Iterator[LabelledBatch]:
        """The labelled packets as columnar blocks, in file and frame order (the vector
        path only; ``limit`` is not applied here)."""
        if not self.vector:
            raise ValueError("batches() needs the vector annotator")
        writer = self._open_writer()
        try:
            for lb in self._labelled(writer):
                if writer is not None:
                    for record in lb.iter_records():
                        writer.write(record)
                self._emitted += len(lb)
                yield lb
        finally:
            if writer is not None:
                writer.close()

    def _open_writer(self) -> PcapngOut | None:
        from portsniff.capture.bpf import compile_filter

        if self.bpf is not None:
            # A bad expression is an error before any output.
            compile_filter(self.bpf, 1).close()
        return PcapngOut(self._pcapng_out, self._section_comment) if self._pcapng_out else None

    def _labelled(self, writer: PcapngOut | None) -> Iterator[LabelledBatch]:
        from portsniff.annotate.vector import VectorAnnotator

        annotator = self.annotator
        assert isinstance(annotator, VectorAnnotator)
        for batch, mask in self._decoded(writer, VECTOR_BLOCK_BYTES):
            yield from annotator.feed(batch, mask)
        yield from annotator.finish()

    def _decoded(
        self, writer: PcapngOut | None, block_bytes: int = 8 << 20
    ) -> Iterator[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]]:
        """Every file's decoded blocks (and the BPF mask), filling ``self.files``."""
        for path in self.paths:
            report = FileReport(file=path)
            self.files.append(report)
            if self.limit is not None and self._emitted >= self.limit:
                return
            if writer is None and self._parallel_ok(path):
                yield from self._decoded_parallel(path, report)
                continue
            yield from self.read_file(path, report, writer, block_bytes)

    def read_file(
        self,
        path: str,
        report: FileReport,
        writer: PcapngOut | None = None,
        block_bytes: int = 8 << 20,
    ) -> Iterator[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]]:
        """One file's decoded blocks (and the BPF mask), read in this process; what was
        read goes to ``report`` (a file that cannot be opened is an error in it, or
        raises without ``keep_going``)."""
        from portsniff.capture.reader import open_capture
        from portsniff.errors import CaptureError

        try:
            reader = open_capture(path, block_bytes=block_bytes)
        except CaptureError as exc:
            if not self.keep_going:
                raise
            report.error = str(exc)
            return
        with reader:
            report.format = reader.format
            report.compression = reader.compression
            if self.progress is not None:
                self.progress(reader.bytes_read)  # the file's header
            yield from self.decode_blocks(reader, report, writer)
            report.damage = reader.damage
            report.problems.extend(reader.problems)
            report.section_comments.extend(reader.section_comments)

    def decode_blocks(
        self,
        reader: CaptureReader,
        figures: Figures,
        writer: PcapngOut | None = None,
        stop: int | None = None,
    ) -> Iterator[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]]:
        """The decoded blocks (and the BPF mask) ``reader`` gives (up to ``stop``: see
        CaptureReader.blocks), counted into ``figures``."""
        from portsniff.annotate.parallel import count_block
        from portsniff.capture.bpf import BpfFilter, compile_filter
        from portsniff.decode.engines import open_engine

        flt: BpfFilter | None = None
        engine = open_engine(self.engine, reader.path)
        read = reader.bytes_read
        try:
            for block in reader.blocks(stop):
                if len(block) == 0:
                    continue
                count_block(figures, block)
                mask = None
                if self.bpf is not None:
                    if flt is None:
                        flt = compile_filter(self.bpf, int(block.linktype[0]))
                    mask = flt.mask(block)
                batch = engine.decode(block)
                if writer is not None:
                    writer.hold(block, mask, reader.interfaces)
                if self.progress is not None:
                    self.progress(reader.bytes_read - read)
                    read = reader.bytes_read
                yield batch, mask
        finally:
            engine.close()
            if flt is not None:
                flt.close()

    @property
    def decode_workers(self) -> int:
        """Processes that read and decode big classic pcap files (beyond this one and
        the consumer's)."""
        return max(0, self.workers - 2)

    def big_input(self) -> bool:
        """True when a consumer process is asked for and some input is big enough for
        it to pay off (the caller then formats or summarises in it)."""
        return self.workers > 1 and any(map(_big_file, self.paths))

    def _parallel_ok(self, path: str) -> bool:
        from portsniff.annotate.parallel import is_classic_pcap

        # The pyshark engine reads the file itself, by frame number: not in chunks.
        return (
            self.decode_workers > 0
            and _big_file(path)
            and self.engine != "pyshark"
            and is_classic_pcap(path)
        )

    def _decoded_parallel(
        self, path: str, report: FileReport
    ) -> Iterator[tuple[DecodedBatch, npt.NDArray[np.bool_] | None]]:
        """A classic pcap read and decoded by ``decode_workers`` processes (same batches)."""
        from portsniff.annotate.parallel import parallel_units, plan
        from portsniff.capture.pcap import count_problems

        report.format = "pcap"
        problems: Counter[str] = Counter()
        frames = 0
        units = plan(path, self.engine, self.bpf)
        for _unit, res in parallel_units(units, self.decode_workers):
            report.add_unit(res, problems)
            if self.progress is not None:
                self.progress(res.next_start - res.start)
            for batch, mask in res.batches:
                batch.first_frame += frames
                frames += len(batch)
                yield batch, mask
            if report.damage is not None:
                break
        report.problems.extend(count_problems(problems))

    def _emit(self, record: PacketRecord, writer: PcapngOut | None) -> bool:
        """Count a record that was output; False when the limit is reached."""
        self._emitted += 1
        if writer is not None:
            writer.write(record)
        return not (self.limit is not None and self._emitted >= self.limit)


class PcapngOut:
    """Copies output packets, unchanged, to a pcapng with their labels as comments."""

    def __init__(self, stream: BinaryIO, section_comment: str | None) -> None:
        from portsniff.capture.writer import PcapngWriter

        self.writer = PcapngWriter(stream, section_comment=section_comment)
        self._held: dict[tuple[str, int], tuple[bytes, int, int, tuple[int, int]]] = {}
        self._interfaces: dict[tuple[int, int], int] = {}

    def hold(
        self,
        block: RawBlock,
        mask: npt.NDArray[np.bool_] | None,
        interfaces: Sequence[Interface],
    ) -> None:
        """Keep the raw bytes of ``block``'s packets (those ``mask`` keeps) until their
        records come out of the annotator."""
        ifaces = list(interfaces)
        for i in range(len(block)):
            if mask is not None and not mask[i]:
                continue
            linktype = int(block.linktype[i])
            iface = int(block.interface[i])
            snaplen = ifaces[iface].snaplen if iface < len(ifaces) else 262144
            self._held[(block.file, block.first_frame + i)] = (
                block.packet(i),
                int(block.ts_ns[i]),
                int(block.wirelen[i]),
                (linktype, snaplen),
            )

    def write(self, record: PacketRecord) -> None:
        from portsniff.report.packet_text import label_text

        held = self._held.pop((record.file, record.frame), None)
        if held is None:
            return
        data, ts_ns, wirelen, (linktype, snaplen) = held
        out_iface = self._interfaces.get((linktype, snaplen))
        if out_iface is None:
            out_iface = self._interfaces[(linktype, snaplen)] = self.writer.add_interface(
                linktype, snaplen or 262144, None
            )
        self.writer.write_packet(out_iface, ts_ns, wirelen, data, comment=label_text(record))

    def close(self) -> None:
        self.writer.flush()


def _big_file(path: str) -> bool:
    """Whether ``path`` is a file of two chunks or more (worth more processes)."""
    import os

    from portsniff.annotate import parallel

    try:
        return os.path.getsize(path) >= 2 * parallel.CHUNK_BYTES
    except OSError:
        return False
