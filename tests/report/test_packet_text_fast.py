"""Block-at-a-time text lines are byte for byte packet_line's."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsniff.annotate.vector import VectorAnnotator
from portsniff.decode.batch import DecodedBatch
from portsniff.decode.packet import Decoded
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.report.packet_text import TextWriter, packet_line
from portsniff.report.packet_text_fast import BatchText, FastTextWriter
from tests.annotate.test_vector import (
    capture_files,
    decoded,
    dns_query,
    packets,
    rising_batches,
    workload,
)
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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(packets(), st.integers(0, 3_000_000_000)), min_size=1, max_size=60),
    st.lists(st.integers(1, 25), min_size=1, max_size=6),
    st.sampled_from([(1_000_000, 600.0), (2, 0.5)]),
)
def test_flows_forgotten_and_slots_used_again(
    index: RegistryIndex,
    items: list[tuple[Decoded, int]],
    cuts: list[int],
    limits: tuple[int, float],
) -> None:
    """The text kept per flow slot follows the labeller's slots as flows are forgotten
    and their slots given to others; two labellers' batches may take turns."""
    max_flows, idle = limits
    text = BatchText()
    labellers = [VectorAnnotator(index, max_flows=max_flows, idle_timeout=idle) for _ in "ab"]
    batches = rising_batches(items, cuts)
    for k, batch in enumerate(batches + batches):
        vec = labellers[k // len(batches)] if k % 3 else labellers[0]
        for lb in vec.feed(batch):
            assert text.lines(lb) == [packet_line(r, False) for r in lb.iter_records()]


def test_slot_given_to_another_flow(index: RegistryIndex) -> None:
    """Flows with the same label in one slot one after the other (the one before
    forgotten), and in two labellers' slots of the same number taking turns: each row
    keeps its own text."""

    def check(vec: VectorAnnotator, batch: DecodedBatch) -> list[int]:
        flows = []
        for lb in vec.feed(batch):
            assert text.lines(lb) == [packet_line(r, False) for r in lb.iter_records()]
            flows += lb.flow.tolist()
        return flows

    text = BatchText()
    vec = VectorAnnotator(index, max_flows=1)
    a, b, c = rising_batches([dns_query(f"10.0.0.{k}") for k in (1, 2, 3)], [1])
    assert [check(vec, x) for x in (a, b, c)] == [[0], [2], [0]]  # c's flow takes a's slot
    one, two = VectorAnnotator(index), VectorAnnotator(index)
    assert check(one, a) == check(two, b) == check(one, a) == [0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fragments_lines(index: RegistryIndex, data: st.DataObject) -> None:
    """IP fragments labelled with their block (in order) and one by one (not): their
    lines and JSON lines say "fragment" where the records do, after the label."""
    import json

    from portsniff.report.packet_jsonl import JsonlWriter
    from portsniff.report.packet_jsonl_fast import BatchJsonl
    from tests.annotate.test_vector import fragmented

    seq = data.draw(fragmented())
    cuts = data.draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
    vec = VectorAnnotator(index)
    text, js = BatchText(False), BatchJsonl()
    lbs = [lb for b in rising_batches([(d, 1001) for d in seq], cuts) for lb in vec.feed(b)]
    lbs += list(vec.finish())
    for lb in lbs:
        records = list(lb.iter_records())
        assert text.lines(lb) == [packet_line(r) for r in records]
        slow = io.StringIO()
        writer = JsonlWriter(slow)
        for r in records:
            writer.write(r)
        assert js.lines(lb) == slow.getvalue().splitlines()
        assert [json.loads(x)["fragment"] for x in js.lines(lb)] == [r.fragment for r in records]
