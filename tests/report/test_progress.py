"""The progress bar shows only on a terminal, without --quiet, for big inputs."""

from __future__ import annotations

import io
from pathlib import Path

from portsniff.report.progress import MIN_BYTES, ProgressBar, progress_bar


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def big_file(tmp_path: Path) -> str:
    path = tmp_path / "big.pcap"
    with open(path, "wb") as fh:
        fh.truncate(MIN_BYTES + 1)
    return str(path)


def test_off_when_piped_quiet_small_or_stdin(tmp_path: Path) -> None:
    big = big_file(tmp_path)
    small = tmp_path / "small.pcap"
    small.write_bytes(b"x" * 100)
    assert progress_bar(io.StringIO(), False, [big], "summary") is None
    assert progress_bar(Tty(), True, [big], "summary") is None
    assert progress_bar(Tty(), False, [str(small)], "summary") is None
    assert progress_bar(Tty(), False, ["-", big], "summary") is None


def test_counts_bytes_and_clamps(tmp_path: Path) -> None:
    stream = Tty()
    bar = progress_bar(stream, False, [big_file(tmp_path)], "summary")
    assert isinstance(bar, ProgressBar)
    with bar:
        bar.advance(MIN_BYTES // 2)
        bar.advance(10 * MIN_BYTES)  # compressed inputs read more than their size
        assert bar._done == bar.total
