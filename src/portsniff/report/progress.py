"""A progress bar on stderr for long runs: only on a terminal, never with ``--quiet``.

It counts capture bytes read (the only total known before reading) and is redrawn by
rich a few times a second, so its cost does not grow with the packet rate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

#: Runs over fewer capture bytes than this show no bar (they end before it would help).
MIN_BYTES = 16 << 20


class ProgressBar:
    """Bytes read out of ``total``; use as a context manager, call :meth:`advance`."""

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
            refresh_per_second=4,
        )
        self._task = self._progress.add_task(label, total=total)
        self._done = 0
        self.total = total

    def advance(self, nbytes: int) -> None:
        """Count ``nbytes`` more capture bytes read (clamped to the total)."""
        step = max(0, min(nbytes, self.total - self._done))
        if step:
            self._done += step
            self._progress.update(self._task, completed=self._done)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()


def progress_bar(stream: Any, quiet: bool, paths: Sequence[str], label: str) -> ProgressBar | None:
    """A bar for reading ``paths`` when ``stream`` is a terminal and not ``quiet``."""
    if quiet or "-" in paths:
        return None
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p)
        except OSError:
            continue
    if total < MIN_BYTES:
        return None
    return ProgressBar(stream, total, label)
