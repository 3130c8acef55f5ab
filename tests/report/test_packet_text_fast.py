"""Block-at-a-time text lines are byte for byte packet_line's."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from portsniff.annotate.vector import VectorAnnotator
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.report.packet_text import TextWriter, packet_line
from portsniff.report.packet_text_fast import BatchText, FastTextWriter
from tests.annotate.test_vector import capture_files, decoded, workload
from tests.report.stream_check import written


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def check(index: RegistryIndex, paths: list[Path], block_bytes: int = 1 << 16) -> int:
    vec = VectorAnnotator(index)
    n = 0
    for color in (False, True):
        text = BatchText(color)
        for path in paths:
            for batch in decoded(path, block_bytes):
                for lb in vec.feed(batch):
                    expected = [packet_line(r, color) for r in lb.iter_records()]
                    assert text.lines(lb) == expected
                    n += len(expected)
    return n


def test_project_captures(index: RegistryIndex) -> None:
    assert check(index, capture_files()) > 0


def test_shared_captures(index: RegistryIndex, shared_captures: Path) -> None:
    files = sorted(p for p in shared_captures.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert check(index, files) > 0


def test_workload_and_writer(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 5_000, 4)
    assert check(index, [path]) == 10_000
    vec = VectorAnnotator(index)
    fast, slow = io.StringIO(), io.StringIO()
    fw, sw = FastTextWriter(fast), TextWriter(slow)
    for batch in decoded(path, 1 << 15):
        for lb in vec.feed(batch):
            fw.write_batch(lb)
            for r in lb.iter_records():
                sw.write(r)
    assert fast.getvalue() == slow.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "latin-1"])
def test_writes_bytes_under_a_utf8_stream(
    index: RegistryIndex, tmp_path: Path, encoding: str
) -> None:
    """Under a UTF-8 text stream the lines go to its byte buffer (in order with text
    written before and after); other encodings take the text path. Same bytes."""
    got, want = written(index, workload(tmp_path, 3_000, 6), FastTextWriter, TextWriter, encoding)
    assert got == want
