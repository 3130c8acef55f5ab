"""Errors of the library; the CLI maps them to one-line messages and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 2  # a result was produced, but some input was damaged


class PortsniffError(Exception):
    """Base of every error portsniff raises on purpose; its text is one line for users."""

    exit_code = EXIT_ERROR


class UsageError(PortsniffError):
    """The command line asks for something that cannot be done."""


class RegistryError(PortsniffError):
    """A registry source is missing, unreadable or malformed.

    The message names the file (and the line or record where that is known).
    """


class CaptureError(PortsniffError):
    """A capture cannot be read at all (missing, not a capture, unsupported version)."""


class FilterError(PortsniffError):
    """A BPF filter expression does not compile."""


class EngineUnavailable(PortsniffError):
    """An optional engine (scapy, pyshark, tshark) is not installed."""
