"""The command line: parse arguments, call the library, map errors to exit codes.

The library never prints or exits; this module is the one place that does.
Each command group lives in its own ``cli_*`` module with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from portsniff import __version__
from portsniff.errors import EXIT_ERROR, PortsniffError

Handler = Callable[[argparse.Namespace, TextIO, TextIO], int]

EPILOG = """\
exit codes: 0 ok, 1 error (one line on stderr), 2 partial result (damaged input; the
readable part was processed and the damage reported)."""


def _command_modules() -> list[str]:
    return [
        "portsniff.cli_registry",
        "portsniff.cli_annotate",
        "portsniff.cli_summary",
        "portsniff.cli_live",
    ]


def build_parser() -> argparse.ArgumentParser:
    """The whole argument parser; every command has -h and the global options."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry",
        metavar="FILE",
        action="append",
        default=argparse.SUPPRESS,  # so that a subcommand does not reset the global value
        help="registry file(s) to use, and nothing else (IANA CSV/XML, the IANA page "
        "rendered as text, a services file); repeatable; default: $PORTSNIFF_REGISTRY, "
        "else the cache, the system's copies and the bundled excerpt",
    )
    parser = argparse.ArgumentParser(
        prog="portsniff",
        description="Label network traffic with the IANA Service Name and Transport "
        "Protocol Port Number Registry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"portsniff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import importlib

    for name in _command_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command group not written yet
                continue
            raise
        module.register(sub, common)
    return parser


ENGINE_NAMES = ("fast", "scapy", "pyshark")  # portsniff.decode.engines.ENGINES, unimported


def add_labelling_args(
    p: argparse.ArgumentParser, *, engine_help: str, annotator_help: str
) -> None:
    """``--engine`` and ``--annotator``, as annotate, summary and live take them."""
    p.add_argument("--engine", choices=ENGINE_NAMES, default="fast", help=engine_help)
    p.add_argument(
        "--annotator",
        choices=("auto", "vector", "reference"),
        default="auto",
        help=annotator_help,
    )


def workers_arg(text: str) -> int:
    """``--workers``: a number of processes, or ``auto`` (0: one per CPU)."""
    if text == "auto":
        return 0
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more (or 'auto')")
    return n


def add_workers_arg(p: argparse.ArgumentParser, what: str, more: str = "") -> None:
    """``--workers N|auto`` (default 1), as annotate and summary take it (``more``: what
    else 2 does)."""
    p.add_argument(
        "--workers",
        type=workers_arg,
        default=1,
        metavar="N",
        help=f"processes for big captures: with 2, one more {what} while this one reads, "
        f"decodes and labels{more}; each one beyond reads and decodes classic pcap in chunks "
        "(default 1: everything in this process; auto: one per CPU; each process takes "
        "memory; the output is the same)",
    )


def resolve_workers(n: int) -> int:
    """The number of worker processes ``--workers`` asks for (``auto`` resolved)."""
    if n > 0:
        return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def registry_files(args: argparse.Namespace) -> list[str] | None:
    """``--registry`` files, else ``$PORTSNIFF_REGISTRY`` (os.pathsep-separated), else None."""
    files: list[str] | None = getattr(args, "registry", None)
    if files:
        return files
    env = os.environ.get("PORTSNIFF_REGISTRY")
    if env:
        return [f for f in env.split(os.pathsep) if f]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``portsniff`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    # A capture of many flows keeps hundreds of thousands of objects alive (flows,
    # service rows, caches): with the default thresholds the cycle collector walked
    # them over and over, 23 % of a summary of 115k flows. Fewer collections, as mypy
    # does; the pipeline makes little cyclic garbage.
    gc.set_threshold(200_000, 30, 30)
    try:
        return handler(args, sys.stdout, sys.stderr)
    except PortsniffError as exc:
        print(f"portsniff: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("portsniff: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        name = f"{exc.filename}: " if exc.filename else ""
        print(f"portsniff: error: {name}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
