"""``portsniff live IFACE`` (label packets as they are captured) and ``portsniff interfaces``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

from portsniff.cli import add_labelling_args
from portsniff.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, UsageError

SUMMARY_FORMATS = ("text", "json", "csv", "markdown", "html")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "live",
        parents=[common],
        help="capture on an interface and label packets as they arrive",
        description="Capture on IFACE (with tcpdump, or dumpcap) and label each packet's "
        "ports with the IANA registry, as annotate does for files. Stops on -c, --duration, "
        "Ctrl-C or SIGTERM, then writes the summary (to stderr unless -o). Needs root or "
        "CAP_NET_RAW (see 'portsniff interfaces').",
        epilog="exit codes: 0 ok, 1 error (also: the interface went away mid-capture, after "
        "the summary of what was captured), 2 the capture stream was damaged",
    )
    p.add_argument("interface", metavar="IFACE", help="interface name ('any': all of them)")
    p.add_argument("-f", "--filter", metavar="BPF", help="libpcap filter, e.g. 'udp port 47808'")
    p.add_argument("-c", "--count", type=int, metavar="N", help="stop after N packets")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "-w",
        "--write-pcapng",
        metavar="OUT",
        help="also write the packets to a pcapng with their labels as comments "
        "(valid even after Ctrl-C)",
    )
    p.add_argument(
        "--format", choices=("text", "jsonl"), default="text", help="packet lines format"
    )
    p.add_argument(
        "--view",
        choices=("lines", "table"),
        help="lines (one per packet) or table (live services table); default: table on a "
        "terminal, else lines",
    )
    p.add_argument(
        "--summary-format", choices=SUMMARY_FORMATS, default="text", help="final summary format"
    )
    p.add_argument(
        "-o", "--output", metavar="OUT", help="write the final summary to OUT (default: stderr)"
    )
    add_labelling_args(
        p,
        engine_help="decoder (pyshark reads files only: not for live capture)",
        annotator_help="labelling path: vector (columnar, a block at a time: fastest), reference "
        "(packet by packet), or auto (vector with the fast engine); the output is the same",
    )
    p.add_argument(
        "--tool",
        choices=("auto", "tcpdump", "dumpcap"),
        default="auto",
        help="capture back-end (auto: tcpdump, else dumpcap; see docs/live.md)",
    )
    p.add_argument(
        "--buffer",
        type=int,
        default=32,
        metavar="MIB",
        help="kernel capture buffer in MiB (larger loses fewer packets in bursts)",
    )
    p.set_defaults(handler=run)

    q = sub.add_parser(
        "interfaces",
        parents=[common],
        help="list network interfaces and whether capture is permitted",
        description="List this host's network interfaces (of the current network "
        "namespace) with their addresses, and whether live capture is permitted.",
    )
    q.add_argument("--format", choices=("text", "json"), default="text")
    q.set_defaults(handler=run_interfaces)


@contextlib.contextmanager
def _stop_on_signals(session: Any) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the capture cleanly; a second Ctrl-C interrupts at once."""
    pressed: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        pressed.append(signum)
        if len(pressed) > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        session.stop("interrupted" if signum == signal.SIGINT else "terminated")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.caveat import CAVEAT
    from portsniff.cli import registry_files
    from portsniff.cli_annotate import stream_meta_registry, vector_choice
    from portsniff.live.fold import FoldedSummary
    from portsniff.live.session import LiveOptions, LiveSession
    from portsniff.registry.sources import open_registry
    from portsniff.report.packet_jsonl_fast import FastJsonlWriter
    from portsniff.report.packet_text import color_wanted
    from portsniff.report.packet_text_fast import FastTextWriter
    from portsniff.report.packets import PacketWriter, StreamEnd, StreamMeta, packet_writer
    from portsniff.report.summaries import ReportOptions, flows_kept, reporter
    from portsniff.summary import SummaryBuilder
    from portsniff.summary_vector import VectorSummaryBuilder

    options = LiveOptions(
        interface=args.interface,
        engine=args.engine,
        bpf=args.filter,
        limit=args.count,
        duration=args.duration,
        tool=args.tool,
        buffer_mib=args.buffer,
    )
    view = args.view or ("table" if _isatty(stdout) else "lines")
    if view == "table" and args.format != "text":
        raise UsageError("--format applies to --view lines; the table view has no format")
    render = reporter(args.summary_format)
    index = open_registry(registry_files(args))
    registry = stream_meta_registry(index)
    # Checks interface, filter and tool before any output.
    session = LiveSession(options, index, vector=vector_choice(args))
    pcapng: BinaryIO | None = None
    try:
        if args.write_pcapng:
            pcapng = open(args.write_pcapng, "wb")  # noqa: SIM115 - closed below
            session.write_pcapng(
                pcapng,
                f"{CAVEAT}\nlive capture on {args.interface} with {session.tool}"
                + (f", filter {args.filter!r}" if args.filter else "")
                + "\nregistry: "
                + "; ".join(
                    f"{s['kind']} {s['path']} updated {s['updated']} sha256 {s['sha256']}"
                    for s in registry
                ),
            )
        # A long capture finishes many flows: the summary keeps the top ones its text,
        # Markdown or HTML report shows (JSON and CSV list them all).
        keep = flows_kept(args.summary_format)
        builder = (
            VectorSummaryBuilder(CAVEAT, registry, keep=keep)
            if session.vector
            else SummaryBuilder(CAVEAT, registry, keep=keep)
        )
        writer: PacketWriter | FastTextWriter | FastJsonlWriter | None = None
        if view == "lines":
            color = args.format == "text" and color_wanted(stdout)
            if not session.vector:
                writer = packet_writer(args.format, stdout, None, color)
            elif args.format == "text":
                writer = FastTextWriter(stdout, None, color)
            else:
                writer = FastJsonlWriter(stdout, None, color)
        with _stop_on_signals(session):
            session.start()
            what = f" (filter {args.filter!r})" if args.filter else ""
            print(
                f"portsniff: capturing on {args.interface} with {session.tool}{what}; Ctrl-C stops",
                file=stderr,
                flush=True,
            )
            if writer is None:
                _run_table(session, builder, stdout)
            else:
                writer.begin(
                    StreamMeta(caveat=CAVEAT, registry=registry, files=[session.report.name])
                )
                stdout.flush()
                # Flushed after each read's packets: a pipe reader sees every packet as
                # soon as it is labelled, without one write per line at high rates.
                if isinstance(writer, (FastTextWriter, FastJsonlWriter)):
                    assert isinstance(builder, VectorSummaryBuilder)
                    folded = FoldedSummary(builder)
                    write_batch, add_batch = writer.write_batch, folded.add_batch
                    for lb in session.batches(after_block=stdout.flush):
                        write_batch(lb)
                        add_batch(lb)
                    folded.flush()
                else:
                    write, add = writer.write, builder.add
                    for record in session.records(after_block=stdout.flush):
                        write(record)
                        add(record)
        report = session.report
        summary = builder.finish()
        builder.add_file(report.as_dict(), report.linktypes)
        summary.problems.update(session.counts.problems)
        stats = report.stats
        if stats is None:
            summary.problems[f"drop counters unavailable ({report.tool} reported none)"] += 1
        elif stats.dropped:
            summary.problems[f"packets dropped during capture ({report.tool})"] += stats.dropped
        if writer is not None:
            dropped = stats is None or bool(stats.dropped)
            writer.end(
                StreamEnd(
                    counts={
                        **session.counts.as_dict(),
                        **report.drop_counts(),
                        "stop_reason": report.stop_reason,
                    },
                    files=[report.as_dict()],
                    problems=report.problem_lines() + (report.drop_lines() if dropped else []),
                )
            )
            stdout.flush()
        out_path = args.output
        if out_path and out_path != "-":
            with open(out_path, "w", encoding="utf-8", newline="") as fh:
                render(summary, fh, ReportOptions())
        else:
            target = stdout if out_path == "-" else stderr
            render(summary, target, ReportOptions(color=color_wanted(target)))
            target.flush()
    finally:
        if pcapng is not None:
            pcapng.close()
    if report.error:
        print(
            f"portsniff: error: {report.error} (the summary covers what was captured)",
            file=stderr,
        )
        return EXIT_ERROR
    if report.damage is not None:
        print(f"portsniff: {report.damage}", file=stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _run_table(session: Any, builder: Any, stdout: TextIO) -> None:
    from portsniff.live.fold import FoldedSummary
    from portsniff.live.view import LiveTable, ServiceBoard

    board = ServiceBoard(session.options.interface, session.tool, time.monotonic())
    with LiveTable(board, stdout, time.monotonic) as table:

        def tick() -> None:
            board.stats = session.stats()
            table.refresh()

        if session.vector:
            folded = FoldedSummary(builder)
            add_batch, table_batch = folded.add_batch, table.add_batch
            for lb in session.batches(tick):
                add_batch(lb)
                table_batch(lb)
            folded.flush()
        else:
            add, table_add = builder.add, table.add
            for record in session.records(tick):
                add(record)
                table_add(record)
        board.stats = session.report.stats or session.stats()
        board.note = session.report.error


def run_interfaces(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.errors import CaptureError
    from portsniff.live.backend import find_tool
    from portsniff.live.interfaces import ANY, capture_permission, list_interfaces
    from portsniff.report.summary_view import clean, linktype_name

    infos = list_interfaces()
    tool: str | None = None
    path: str | None = None
    tool_problem: str | None = None
    try:
        tool, path = find_tool()
    except CaptureError as exc:
        tool_problem = str(exc)
    perm = capture_permission(path)
    if args.format == "json":
        doc = {
            "interfaces": [
                {
                    "name": i.name,
                    "index": i.index,
                    "up": i.up,
                    "loopback": i.loopback,
                    "linktype": i.linktype,
                    "addresses": list(i.addresses),
                }
                for i in infos
            ],
            "capture": {
                "tool": tool,
                "tool_path": path,
                "permitted": perm.permitted and tool is not None,
                "reason": tool_problem or perm.reason,
            },
        }
        stdout.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_OK
    rows = [("INTERFACE", "STATE", "LINK TYPE", "ADDRESSES")]
    for i in infos:
        rows.append(
            (
                clean(i.name),
                "up" if i.up else "down",
                linktype_name(i.linktype) + (" (loopback)" if i.loopback else ""),
                " ".join(i.addresses) or "-",
            )
        )
    rows.append((ANY, "-", "Linux cooked (every interface)", "-"))
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    for r in rows:
        stdout.write("  ".join(r[k].ljust(widths[k]) for k in range(3)) + "  " + r[3] + "\n")
    if tool is None:
        stdout.write(f"capture permitted: no ({tool_problem})\n")
    elif perm.permitted:
        stdout.write(f"capture permitted: yes ({perm.reason}; with {tool} {path})\n")
    else:
        stdout.write(
            f"capture permitted: no ({perm.reason}): run as root (sudo), or once: "
            f"sudo setcap cap_net_raw,cap_net_admin=eip {path}\n"
        )
    return EXIT_OK
