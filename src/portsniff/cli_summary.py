"""``portsniff summary``: which services talk, how much, between whom."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any, TextIO

from portsniff.cli import add_labelling_args, add_workers_arg, resolve_workers
from portsniff.errors import EXIT_OK, EXIT_PARTIAL, CaptureError, UsageError
from portsniff.live.fold import FoldedSummary

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".gz", ".zst", ".pcap.gz", ".pcapng.zst")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "summary",
        parents=[common],
        help="summarise captures: services, unknown ports, conversations, DNS-SD",
        description="Summarise captures (files or directories) as one report.",
        epilog="exit codes: 0 ok, 1 error, 2 some input damaged or unreadable (reported; the "
        "rest is summarised)",
    )
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--format", choices=("text", "json", "csv", "markdown", "html"), default="text")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (for csv: a directory gets one file per table)",
    )
    p.add_argument("--top", type=int, metavar="N", help="rows per ranked table")
    p.add_argument("-f", "--filter", metavar="BPF", help="libpcap filter")
    add_labelling_args(
        p,
        engine_help="decoder: fast (numpy, default), scapy, or pyshark (needs tshark)",
        annotator_help="labelling path (the summary is the same): vector, reference, or auto",
    )
    add_workers_arg(
        p,
        "summarises",
        " (a big pcap or pcapng, or several files: two processes read about half each, "
        "unless the first packets make many short flows)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=run)


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given; directories walked (sorted) for files that look like captures."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(
                str(f)
                for f in path.rglob("*")
                if f.is_file()
                and not f.name.startswith(".")
                and any(f.name.lower().endswith(s) for s in CAPTURE_SUFFIXES)
            )
            if not found:
                raise CaptureError(f"{p}: no capture files in this directory")
            out.extend(found)
        else:
            out.append(p)
    return out


def build_summary(args: argparse.Namespace, stderr: TextIO | None = None) -> tuple[Any, bool]:
    """Run the pipeline and fold it into a Summary; also says whether input was damaged."""
    from portsniff.annotate.pipeline import AnnotateRun
    from portsniff.caveat import CAVEAT
    from portsniff.cli import registry_files
    from portsniff.cli_annotate import stream_meta_registry
    from portsniff.registry.sources import open_registry
    from portsniff.summary import SummaryBuilder

    files = expand_paths(args.paths)
    index = open_registry(registry_files(args))
    from portsniff.cli_annotate import vector_choice
    from portsniff.report.progress import progress_bar

    bar = progress_bar(stderr, getattr(args, "quiet", False), files, "summary")
    run = AnnotateRun(
        files,
        index,
        engine=args.engine,
        bpf=args.filter,
        keep_going=len(files) > 1,
        vector=vector_choice(args),
        workers=resolve_workers(getattr(args, "workers", 1)),
        progress=bar.advance if bar is not None else None,
    )
    meta = stream_meta_registry(index)
    keep = kept_flows(args)
    with bar if bar is not None else contextlib.nullcontext():
        if run.vector:
            summary = _vector_summary(run, meta, keep)
        else:
            builder = SummaryBuilder(CAVEAT, meta, keep=keep)
            for record in run.records():
                builder.add(record)
            summary = builder.finish()
    for f in run.files:
        summary.add_file(f.as_dict(), f.linktypes)
    summary.problems.update(run.counts.problems)
    return summary, run.damaged


def kept_flows(args: argparse.Namespace) -> int | None:
    """How many finished flows the summary keeps: the top ones its report shows (``--top``,
    or the default for the formats that show a top list), else all (JSON and CSV list
    every flow)."""
    from portsniff.report.summaries import flows_kept

    return flows_kept(getattr(args, "format", ""), getattr(args, "top", None))


#: Rows the summary takes at a time: its per-flow work is per block, so blocks bigger
#: than the reader's cost less per packet (0.70 -> 0.50 s per 1M packets). Its temporaries
#: grow with the rows (~100 bytes a row at peak): 128k rows saved 0-3 % more time and took
#: 23 MiB more (138 MiB on the 1M yardstick).
SUMMARY_ROWS = 1 << 16


class _Summarising(FoldedSummary):
    """The vectorised summary builder as a stage consumer: batches of one file are
    folded together up to SUMMARY_ROWS rows (the summary is the same whatever the
    blocks)."""

    def __init__(self, meta: list[dict[str, Any]], keep: int | None = None) -> None:
        from portsniff.caveat import CAVEAT
        from portsniff.summary_vector import VectorSummaryBuilder

        super().__init__(VectorSummaryBuilder(CAVEAT, meta, keep=keep), SUMMARY_ROWS)

    def add(self, lb: Any) -> None:
        self.add_batch(lb)

    def finish(self) -> Any:
        self.flush()
        return self.builder.finish()


def _vector_summary(run: Any, meta: list[dict[str, Any]], keep: int | None = None) -> Any:
    """The summary of ``run``'s batches (keeping the top ``keep`` flows, or all): built
    in a process of its own while this one labels, when there are CPUs to spare and input
    worth it."""
    from portsniff import summary_split

    if summary_split.splittable(run):
        return summary_split.summarise(run, meta, lambda: _Summarising(meta, keep))[0]
    child = None
    if run.big_input():
        from portsniff.annotate import stage

        child = stage.start(lambda: _Summarising(meta, keep), run.annotator.labels)
    if child is None:
        consumer = _Summarising(meta, keep)
        for lb in run.batches():
            consumer.add(lb)
        return consumer.finish()
    try:
        for lb in run.batches():
            child.add(lb)
        return child.finish()
    except BaseException:
        child.abort()
        raise


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from portsniff.report.packet_text import color_wanted
    from portsniff.report.summaries import ReportOptions, reporter

    if args.top is not None and args.top < 1:
        raise UsageError("--top must be 1 or more")
    render = reporter(args.format)
    summary, damaged = build_summary(args, stderr)
    out_path = args.output
    if args.format == "csv" and out_path and (os.path.isdir(out_path) or out_path.endswith(os.sep)):
        from portsniff.report.summary_csv import write_tables

        write_tables(summary, Path(out_path), ReportOptions(top=args.top))
    elif out_path and out_path != "-":
        with open(out_path, "w", encoding="utf-8", newline="") as fh:
            render(summary, fh, ReportOptions(top=args.top))
    else:
        render(summary, stdout, ReportOptions(top=args.top, color=color_wanted(stdout)))
    for f in summary.files:
        if f.get("error"):
            print(f"portsniff: {f['error']}", file=stderr)
        elif f.get("damage"):
            print(f"portsniff: {f['damage']}", file=stderr)
    return EXIT_PARTIAL if damaged else EXIT_OK
