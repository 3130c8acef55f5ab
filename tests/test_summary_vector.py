"""The columnar summary equals SummaryBuilder fed with the same records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.decode.packet import Decoded
from portsniff.flows import FlowTable
from portsniff.live.fold import FoldedSummary
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.summary import Summary, SummaryBuilder
from portsniff.summary_vector import VectorSummaryBuilder
from tests.annotate.test_vector import (
    capture_files,
    decoded,
    dns_query,
    labelled_synthetic,
    packets,
    rising_batches,
    workload,
)


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


def test_flows_expire_inside_blocks_folded_at_once(index: RegistryIndex, tmp_path: Path) -> None:
    """A capture longer than the idle timeout whose blocks are each shorter: the flows
    gone idle expire in the blocks, which are folded at once all the same."""
    path = workload(tmp_path, 20_000, 11)  # about 2 s of traffic
    batches = labelled(index, [path], 1 << 15)  # blocks of ~60 packets (~6 ms)
    a, b, vec = both(batches, idle_timeout=0.05)
    assert canon(a) == canon(b)
    # Flows finish in another order (expired at the block's start); a report's order,
    # uids included, is the same.
    assert a.top_flows(None) == b.top_flows(None)
    assert vec.expired_blocks > 10 and vec.slow_blocks == 0
    assert len(a.flows) > 400  # flows expired and were made again


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(packets(), st.integers(0, 60_000_000)), min_size=30, max_size=80),
    st.lists(st.integers(1, 4), min_size=1, max_size=6),
    st.sampled_from([0.02, 0.05, 0.1]),
    st.sampled_from([1_000_000, 30, 4]),
)
def test_idle_flows_expire_as_one_by_one(
    index: RegistryIndex,
    items: list[tuple[Decoded, int]],
    cuts: list[int],
    idle: float,
    max_flows: int,
) -> None:
    """Flows expiring (idle, or beyond the table's size) in blocks folded at once or
    packet by packet, with time going back now and then: the records' summary."""
    _, out = labelled_synthetic(index, items, cuts, (1_000_000, 600.0))
    a, b, _ = both(out, idle_timeout=idle, max_flows=max_flows)
    assert canon(a) == canon(b)
    assert a.top_flows(None) == b.top_flows(None)


def test_folding_joins_blocks_within_the_idle_timeout(index: RegistryIndex, tmp_path: Path) -> None:
    """Blocks are folded together only while they span at most the flow table's idle
    timeout (a longer fold would count its expiring flows packet by packet)."""
    batches = labelled(index, [workload(tmp_path, 20_000, 11)], 1 << 15)  # ~2 s
    ref, _, _ = both(batches, idle_timeout=0.05)
    builder = VectorSummaryBuilder("caveat", [], FlowTable(idle_timeout=0.05))
    spans: list[int] = []
    real = builder.add_batch

    def spy(lb: LabelledBatch) -> None:
        spans.append(int(lb.ts_ns.max()) - int(lb.ts_ns.min()))
        real(lb)

    builder.add_batch = spy  # type: ignore[method-assign]
    folded = FoldedSummary(builder, 1_000_000)
    for lb in batches:
        folded.add_batch(lb)
    folded.flush()
    assert canon(builder.finish()) == canon(ref)
    assert 1 < len(spans) < len(batches) and max(spans) <= 50_000_000
    assert builder.slow_blocks == 0 and builder.expired_blocks > 0


def test_timeline_wider_than_a_block(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 3_000, 2)
    # Spread the packets over days so timelines widen.
    batches = labelled(index, [path], 4096, spread_ns=3_000 * 10**9)
    a, b, _ = both(batches, idle_timeout=1e12)
    assert canon(a) == canon(b)
    widths = {r.timeline.width for r in b.services.values()}
    assert max(widths) > 1.0


def test_timelines_of_a_block_spanning_many_bins(index: RegistryIndex, tmp_path: Path) -> None:
    """A block spanning more seconds than a timeline has bins (a long capture read in
    big blocks): the services' timelines are those of the records added one by one."""
    vec = VectorAnnotator(index)
    out: list[LabelledBatch] = []
    for batch in decoded(workload(tmp_path, 3_000, 2), 8 << 20):
        t0 = batch.ts_ns[0]
        batch.ts_ns = t0 + (batch.ts_ns - t0) * 5_000  # ~0.3 s of traffic made ~25 min
        out.extend(vec.feed(batch))
    out.extend(vec.finish())
    a, b, _ = both(out, idle_timeout=1e12)
    assert canon(a) == canon(b)
    lines = {k: (r.timeline.width, r.timeline.bins) for k, r in a.services.items()}
    assert lines == {k: (r.timeline.width, r.timeline.bins) for k, r in b.services.items()}
    assert max(width for width, _ in lines.values()) >= 8.0


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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(packets(), st.integers(0, 3_000_000_000)), min_size=1, max_size=60),
    st.lists(st.integers(1, 25), min_size=1, max_size=6),
    st.sampled_from([(1_000_000, 600.0), (3, 1.0), (2, 0.5)]),
    st.lists(st.integers(1, 4), min_size=1, max_size=5),
)
def test_joined_synthetic_batches(
    index: RegistryIndex,
    items: list[tuple[Decoded, int]],
    cuts: list[int],
    limits: tuple[int, float],
    joins: list[int],
) -> None:
    """Labelled blocks whose flows the labeller forgets (and whose slots it gives to
    other flows), joined a few at a time as the summary command joins them: the same
    summary as the records fed one by one."""
    _, out = labelled_synthetic(index, items, cuts, limits)
    joined: list[LabelledBatch] = []
    at = 0
    for k in joins * 20:
        if at >= len(out):
            break
        joined.append(LabelledBatch.concat(out[at : at + k]))
        at += k
    a, b, _ = both(joined)
    assert canon(a) == canon(b)
    assert [f.uid for f in a.flows] == [f.uid for f in b.flows]
    # The summary command's folding never joins blocks across a slot's new use.
    builder = VectorSummaryBuilder("caveat", [])
    folds: list[bool] = []
    real = builder.add_batch

    def spy(lb: LabelledBatch) -> None:
        folds.append(lb.one_flow_per_slot)
        real(lb)

    builder.add_batch = spy  # type: ignore[method-assign]
    folded = FoldedSummary(builder, 3 * joins[0])
    for lb in out:
        folded.add_batch(lb)
    folded.flush()
    assert all(folds)
    assert canon(builder.finish()) == canon(a)


def test_joining_a_slot_given_again_is_marked(index: RegistryIndex) -> None:
    """Blocks joined across a slot's new use say so (the summary groups them by key)."""

    vec = VectorAnnotator(index, max_flows=1)
    out: list[LabelledBatch] = []
    for batch in rising_batches([dns_query(f"10.0.0.{k}") for k in (1, 2, 3)], [1]):
        out.extend(vec.feed(batch))
    assert [lb.flow.tolist() for lb in out] == [[0], [2], [0]]
    assert LabelledBatch.concat(out[:2]).one_flow_per_slot
    assert not LabelledBatch.concat(out).one_flow_per_slot
    a, b, _ = both([LabelledBatch.concat(out)])
    assert canon(a) == canon(b) and len(b.flows) == 3


def test_two_slots_of_one_key_are_one_flow(index: RegistryIndex, tmp_path: Path) -> None:
    """Rows of one flow under two slots (a flow forgotten by the labeller and met again
    under another slot) count into one flow, as when rows are grouped by key."""
    (lb,) = labelled(index, [workload(tmp_path, 400, 3)], 1 << 20)
    ref, _, _ = both([lb])
    rows = np.flatnonzero(lb.flow >= 0)
    moved = rows[: rows.size // 2]
    lb.flow[moved] += 2 * (int(lb.flow.max()) // 2 + 1)  # new slots, same direction
    assert lb.one_flow_per_slot
    _, got, _ = both([lb])
    assert canon(got) == canon(ref)
