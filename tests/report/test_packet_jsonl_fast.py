"""Block-at-a-time JSON Lines are byte for byte JsonlWriter's."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.report.packet_jsonl import JsonlWriter
from portsniff.report.packet_jsonl_fast import FastJsonlWriter
from tests.annotate.test_vector import capture_files, decoded, workload
from tests.report.stream_check import written


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def check(index: RegistryIndex, paths: list[Path], block_bytes: int = 1 << 15) -> int:
    vec = VectorAnnotator(index)
    fast, slow = io.StringIO(), io.StringIO()
    fw, sw = FastJsonlWriter(fast), JsonlWriter(slow)
    n = 0
    for path in paths:
        for batch in decoded(path, block_bytes):
            for lb in vec.feed(batch):
                fw.write_batch(lb)
                for r in lb.iter_records():
                    sw.write(r)
                    n += 1
    assert fast.getvalue() == slow.getvalue()
    return n


def test_project_captures(index: RegistryIndex) -> None:
    assert check(index, capture_files()) > 0


def test_shared_captures(index: RegistryIndex, shared_captures: Path) -> None:
    files = sorted(p for p in shared_captures.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert check(index, files) > 0


def test_workload(index: RegistryIndex, tmp_path: Path) -> None:
    assert check(index, [workload(tmp_path, 5_000, 8)]) == 5_000


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_bytes_under_a_utf8_stream_and_nanosecond_stamps(
    index: RegistryIndex, tmp_path: Path, encoding: str
) -> None:
    """Under a UTF-8 text stream the lines go to its byte buffer, in order with text
    written around them; other encodings take the text path. Stamps that are not whole
    microseconds (every other row here) are written by repr. Same bytes as JsonlWriter."""

    def shift(k: int, lb: LabelledBatch) -> None:
        if k % 2:
            lb.ts_ns[::2] += 123

    got, want = written(
        index, workload(tmp_path, 3_000, 6), FastJsonlWriter, JsonlWriter, encoding, shift
    )
    assert got == want
    # The stamps moved by 123 ns are there, with more than six decimals.
    assert re.search(rb'"ts":\d+\.\d{7,},"len"', got)


def test_labels_with_percent_signs(tmp_path: Path) -> None:
    """A label's texts may hold "%" (and "%s"): the line templates keep them as text."""
    from portsniff.registry.record import ParsedRegistry, RegistrySource, ServiceRecord

    def rec(name: str, port: int, proto: str, desc: str) -> ServiceRecord:
        return ServiceRecord(name, str(port), proto, desc, "", "", "", "", "", "", "", "")

    records = tuple(
        rec(name, port, proto, "100% %s %d %%")
        for name, port, proto in (("h%s", 443, "tcp"), ("d%", 53, "udp"), ("w", 80, "tcp"))
    )
    source = RegistrySource("iana-csv", "test", None, "0" * 64, len(records))
    index = RegistryIndex.build([ParsedRegistry(records, source)])
    assert check(index, [workload(tmp_path, 3_000, 3)]) == 3_000
