"""``portsniff annotate``: label every packet of one or more captures."""

from __future__ import annotations

import argparse
from typing import Any, BinaryIO, TextIO

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
    p.add_argument(
        "--engine",
        choices=("fast", "scapy", "pyshark"),
        default="fast",
        help="decoder: fast (numpy, default), scapy, or pyshark (needs tshark)",
    )
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


def probe_captures(paths: list[str]) -> None:
    """Fail before any output when a named file is not a readable capture."""
    from portsniff.capture.reader import open_capture

    for path in paths:
        if path != "-":
            with open_capture(path):
                pass


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.annotate.pipeline import AnnotateRun
    from portsniff.caveat import CAVEAT
    from portsniff.cli import registry_files
    from portsniff.registry.sources import open_registry
    from portsniff.report.packet_text import color_wanted
    from portsniff.report.packets import StreamEnd, StreamMeta, packet_writer, parse_fields

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
        probe_captures(args.files)
        color = args.format == "text" and color_wanted(out)
        writer = packet_writer(args.format, out, fields, color)
        run_ = AnnotateRun(
            args.files,
            index,
            engine=args.engine,
            bpf=args.filter,
            limit=args.count,
            pcapng_out=pcapng,
            section_comment=section,
        )
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
