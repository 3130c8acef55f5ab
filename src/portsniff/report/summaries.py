"""Summary report formats, registered by name. Every reporter is ``render(summary, stream,
options)``; each prints IANA's caveat and the registry it used."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from portsniff.errors import UsageError
from portsniff.summary import Summary


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What every summary reporter may use."""

    top: int | None = None  # rows of ranked tables; None: the format's default
    color: bool = False
    width: int | None = None  # terminal width for text


Reporter = Callable[[Summary, TextIO, ReportOptions], None]

_FORMATS: dict[str, str] = {
    "text": "portsniff.report.summary_text:render",
    "json": "portsniff.report.summary_json:render",
    "csv": "portsniff.report.summary_csv:render",
    "markdown": "portsniff.report.summary_markdown:render",
    "html": "portsniff.report.summary_html:render",
}
SUMMARY_FORMATS: tuple[str, ...] = tuple(_FORMATS)

#: Rows shown in ranked tables of human formats when --top is not given.
DEFAULT_TOP = 20


def flows_kept(fmt: str, top: int | None = None) -> int | None:
    """How many finished flows a summary for a ``fmt`` report keeps: the top ones it shows
    (``top``, or DEFAULT_TOP for the formats that show a top list), else all (JSON and
    CSV list every flow)."""
    if top is not None:
        return top
    return DEFAULT_TOP if fmt in ("text", "markdown", "html") else None


def reporter(name: str) -> Reporter:
    """The reporter registered as ``name``."""
    try:
        target = _FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r} (choose from {', '.join(_FORMATS)})") from None
    module, _, func = target.partition(":")
    fn: Reporter = getattr(importlib.import_module(module), func)
    return fn
