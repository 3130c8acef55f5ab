"""The columnar summary equals SummaryBuilder fed with the same records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.flows import FlowTable
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.summary import Summary, SummaryBuilder
from portsniff.summary_vector import VectorSummaryBuilder
from tests.annotate.test_vector import capture_files, decoded, workload


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def canon(s: Summary) -> dict[str, object]:
    d = s.to_dict()
    d["flows"] = sorted(json.dumps(f, sort_keys=True) for f in d["flows"])
    return d


def labelled(
    index: RegistryIndex, paths: list[Path], block_bytes: int, spread_ns: int = 0
) -> list[LabelledBatch]:
    """The paths' labelled batches; ``spread_ns`` moves block k by k * spread_ns."""
    vec = VectorAnnotator(index)
    out: list[LabelledBatch] = []
    k = 0
    for path in paths:
        for batch in decoded(path, block_bytes):
            batch.ts_ns = batch.ts_ns + np.int64(k) * spread_ns
            k += 1
            out.extend(vec.feed(batch))
    out.extend(vec.finish())
    return out


def both(
    batches: list[LabelledBatch], **limits: float
) -> tuple[Summary, Summary, VectorSummaryBuilder]:
    ref = SummaryBuilder("caveat", [], FlowTable(**limits) if limits else None)  # type: ignore[arg-type]
    vec = VectorSummaryBuilder("caveat", [], FlowTable(**limits) if limits else None)  # type: ignore[arg-type]
    for lb in batches:
        for record in lb.iter_records():
            ref.add(record)
        vec.add_batch(lb)
    return ref.finish(), vec.finish(), vec


def test_project_captures(index: RegistryIndex) -> None:
    for path in capture_files():
        for block_bytes in (8 << 20, 2048):
            a, b, _ = both(labelled(index, [path], block_bytes))
            assert canon(a) == canon(b), path.name


def test_shared_captures(index: RegistryIndex, shared_captures: Path) -> None:
    files = sorted(p for p in shared_captures.iterdir() if p.suffix in (".pcap", ".pcapng"))
    for path in files:
        a, b, _ = both(labelled(index, [path], 8 << 20))
        assert canon(a) == canon(b), path.name
    a, b, _ = both(labelled(index, files, 4096))
    assert canon(a) == canon(b)
    assert [f.uid for f in a.flows] == [f.uid for f in b.flows]


def test_generated_workload_splits_and_expiry(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 20_000, 11)
    batches = labelled(index, [path], 1 << 16)
    a, b, vec = both(batches)
    assert canon(a) == canon(b)
    assert vec.slow_blocks == 0
    states = {f.conn_state for f in a.flows}
    assert "SF" in states or "S2" in states or "S3" in states
    # Tiny flow table: flows expire inside blocks, packet by packet.
    a, b, vec = both(batches, idle_timeout=0.01, max_flows=40)
    assert canon(a) == canon(b)
    assert vec.slow_blocks > 0


def test_timeline_wider_than_a_block(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 3_000, 2)
    # Spread the packets over days so timelines widen.
    batches = labelled(index, [path], 4096, spread_ns=3_000 * 10**9)
    a, b, _ = both(batches, idle_timeout=1e12)
    assert canon(a) == canon(b)
    widths = {r.timeline.width for r in b.services.values()}
    assert max(widths) > 1.0


def test_summary_consumer_takes_blocks_together(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary command's consumer joins blocks of one file (never of two) up to
    SUMMARY_ROWS rows: the same summary as block by block."""
    from portsniff import cli_summary

    paths = [workload(tmp_path, 4_000, 5), *capture_files()[:3]]
    batches = labelled(index, paths, 1 << 14)
    ref, _, _ = both(batches)
    monkeypatch.setattr(cli_summary, "SUMMARY_ROWS", 700)
    joined: list[int] = []
    real = VectorSummaryBuilder.add_batch

    def spy(self: VectorSummaryBuilder, lb: LabelledBatch) -> None:
        joined.append(len(lb))
        assert len({r.file for r in lb.records.values()} | {lb.file}) == 1
        real(self, lb)

    monkeypatch.setattr(VectorSummaryBuilder, "add_batch", spy)
    consumer = cli_summary._Summarising([])
    consumer.builder = VectorSummaryBuilder("caveat", [])
    for lb in batches:
        consumer.add(lb)
    got = consumer.finish()
    assert canon(got) == canon(ref)
    assert [f.uid for f in got.flows] == [f.uid for f in ref.flows]
    assert sum(joined) == sum(len(lb) for lb in batches)
    assert len(joined) < len(batches)  # blocks were joined
