"""``portsniff annotate``: label every packet of one or more captures."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, BinaryIO, TextIO

from portsniff.cli import add_labelling_args, add_workers_arg, resolve_workers
from portsniff.errors import EXIT_OK, EXIT_PARTIAL, UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "annotate",
        parents=[common],
        help="label every packet of captures with the IANA port registry",
        description="Read pcap/pcapng captures (gzip/zstd too; - for stdin) and label each "
        "packet's ports with the IANA Service Name and Transport Protocol Port Number "
        "Registry.",
        epilog="exit codes: 0 ok, 1 error, 2 damaged input (packets before the damage are output)",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="capture file(s); - reads stdin")
    p.add_argument("-c", "--count", type=int, metavar="N", help="stop after N packets")
    p.add_argument("-f", "--filter", metavar="BPF", help="libpcap filter, e.g. 'udp port 47808'")
    p.add_argument(
        "--format", choices=("text", "jsonl", "csv"), default="text", help="output format"
    )
    p.add_argument("--fields", metavar="LIST", help="comma-separated packet fields to output")
    add_labelling_args(
        p,
        engine_help="decoder: fast (numpy, default), scapy, or pyshark (needs tshark)",
        annotator_help="labelling path: vector (columnar, a block at a time), reference (packet by "
        "packet), or auto (vector with the fast engine and no -c; the output is the same)",
    )
    add_workers_arg(p, "writes")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--write-pcapng",
        metavar="OUT",
        help="also write the packets, unchanged, to a pcapng with their labels as comments",
    )
    p.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    p.set_defaults(handler=run)


def stream_meta_registry(index: Any) -> list[dict[str, Any]]:
    """The registry provenance list every report prints (each source used)."""
    from portsniff.registry.sources import describe_sources

    sources: list[dict[str, Any]] = describe_sources(index)
    return sources


def probe_captures(paths: list[str], bpf: str | None = None) -> None:
    """Fail before any output when a named file is not a readable capture, or the
    filter does not compile."""
    from portsniff.capture.bpf import compile_filter
    from portsniff.capture.reader import open_capture

    if bpf is not None:
        compile_filter(bpf, 1).close()
    for path in paths:
        if path != "-":
            with open_capture(path):
                pass


def vector_choice(args: argparse.Namespace) -> bool | None:
    """``--annotator``: True (vector), False (reference) or None (the pipeline decides)."""
    choice = getattr(args, "annotator", "auto")
    return None if choice == "auto" else choice == "vector"


class _Writing:
    """A batch writer as a stage consumer (it flushes: the stage's process ends hard)."""

    def __init__(self, writer: Any, out: TextIO) -> None:
        self.writer, self.out = writer, out

    def add(self, lb: Any) -> None:
        self.writer.write_batch(lb)

    def finish(self) -> None:
        self.out.flush()


def _has_fd(stream: TextIO) -> bool:
    # Another process can write to a file descriptor, not to an in-memory stream.
    try:
        stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return False
    return True


def write_batches(run_: Any, writer: Any, out: TextIO) -> None:
    """Write every labelled batch of ``run_``: formatted in a process of its own while
    this one labels, when there are CPUs to spare and input worth it."""
    child = None
    if run_.workers > 1 and run_.big_input() and _has_fd(out):
        from portsniff.annotate import stage

        out.flush()  # the child inherits the stream: nothing may be pending in it
        child = stage.start(lambda: _Writing(writer, out), run_.annotator.labels)
    if child is None:
        for lb in run_.batches():
            writer.write_batch(lb)
        return
    try:
        for lb in run_.batches():
            child.add(lb)
        child.finish()
    except BaseException:
        child.abort()
        raise


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.annotate.pipeline import AnnotateRun
    from portsniff.caveat import CAVEAT
    from portsniff.cli import registry_files
    from portsniff.registry.sources import open_registry
    from portsniff.report.packet_text import color_wanted
    from portsniff.report.packets import StreamEnd, StreamMeta, packet_writer, parse_fields
    from portsniff.report.progress import progress_bar

    if args.count is not None and args.count < 0:
        raise UsageError("-c/--count must be zero or more")
    fields = parse_fields(args.fields)
    index = open_registry(registry_files(args))
    registry = stream_meta_registry(index)
    out: TextIO = stdout
    close_out = False
    if args.output and args.output != "-":
        out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
        close_out = True
    pcapng: BinaryIO | None = None
    try:
        section = None
        if args.write_pcapng:
            pcapng = open(args.write_pcapng, "wb")  # noqa: SIM115
            section = f"{CAVEAT}\nregistry: " + "; ".join(
                f"{s['kind']} {s['path']} updated {s['updated']} sha256 {s['sha256']}"
                for s in registry
            )
        probe_captures(args.files, args.filter)
        color = args.format == "text" and color_wanted(out)
        bar = progress_bar(stderr, getattr(args, "quiet", False), list(args.files), "annotate")
        run_ = AnnotateRun(
            args.files,
            index,
            engine=args.engine,
            bpf=args.filter,
            limit=args.count,
            pcapng_out=pcapng,
            section_comment=section,
            vector=vector_choice(args),
            # -c stops early: workers would decode ahead for nothing.
            workers=resolve_workers(args.workers) if args.count is None else 1,
            progress=bar.advance if bar is not None else None,
        )
        writer = packet_writer(args.format, out, fields, color)
        with bar if bar is not None else contextlib.nullcontext():
            if run_.vector and args.count is None and args.format != "csv" and not fields:
                from portsniff.report.packet_jsonl_fast import FastJsonlWriter
                from portsniff.report.packet_text_fast import FastTextWriter

                fast: FastTextWriter | FastJsonlWriter = (
                    FastTextWriter(out, fields, color)
                    if args.format == "text"
                    else FastJsonlWriter(out, fields, color)
                )
                fast.begin(StreamMeta(caveat=CAVEAT, registry=registry, files=list(args.files)))
                write_batches(run_, fast, out)
                writer = fast
            else:
                writer.begin(StreamMeta(caveat=CAVEAT, registry=registry, files=list(args.files)))
                for record in run_.records():
                    writer.write(record)
        damages = [str(f.damage) for f in run_.files if f.damage is not None]
        file_problems = [f"{f.file}: {p}" for f in run_.files for p in f.problems]
        writer.end(
            StreamEnd(
                counts=run_.counts.as_dict(),
                files=[f.as_dict() for f in run_.files],
                problems=damages + file_problems,
            )
        )
        out.flush()
        for damage in damages:
            print(f"portsniff: {damage}", file=stderr)
        return EXIT_PARTIAL if damages else EXIT_OK
    finally:
        if pcapng is not None:
            pcapng.close()
        if close_out:
            out.close()
