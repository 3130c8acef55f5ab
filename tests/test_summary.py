"""Timelines: adding a block's bins is merging a Timeline of them; the flows a summary
keeps."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.flows import FlowRecord
from portsniff.summary import MAX_BINS, Summary, SummaryBuilder, Timeline

WIDTHS = st.sampled_from([1.0, 2.0, 4.0, 64.0])
BINS = st.dictionaries(st.integers(-5, 3 * MAX_BINS), st.integers(0, 10**6), max_size=2 * MAX_BINS)


def built(width: float, bins: dict[int, int]) -> Timeline:
    t = Timeline(width)
    t.merge(Timeline(width, bins))  # a valid timeline: at most MAX_BINS bins
    return t


@settings(max_examples=300, deadline=None)
@given(WIDTHS, BINS, WIDTHS, BINS)
def test_add_bins_is_merge(
    width: float, bins: dict[int, int], w2: float, b2: dict[int, int]
) -> None:
    a, b = built(width, bins), built(width, bins)
    a.add_bins(w2, dict(b2))
    b.merge(Timeline(w2, dict(b2)))
    assert (a.width, a.bins) == (b.width, b.bins)
    assert len(a.bins) <= MAX_BINS


POINTS = st.lists(
    st.tuples(st.floats(1.7e9, 1.7e9 + 40_000, allow_nan=False), st.integers(0, 1500)),
    max_size=400,
)


def added(points: list[tuple[float, int]]) -> Timeline:
    t = Timeline()
    for ts, n in points:
        t.add(ts, n)
    return t


@settings(max_examples=200, deadline=None)
@given(POINTS, st.integers(0, 400))
def test_merge_is_adding_every_point(points: list[tuple[float, int]], cut: int) -> None:
    """Timelines merged, or a block's one-second bins added, are the timeline of every
    point added one by one, however many bins each part holds (a block spanning more
    than MAX_BINS seconds widens the timeline it is added to)."""
    whole = added(points)
    a, b = added(points[:cut]), added(points[cut:])
    a.merge(b)
    assert (a.width, a.bins) == (whole.width, whole.bins)
    seconds: dict[int, int] = {}
    for ts, n in points[cut:]:
        seconds[int(ts // 1)] = seconds.get(int(ts // 1), 0) + n
    c = added(points[:cut])
    c.add_bins(1.0, seconds)
    assert (c.width, c.bins) == (whole.width, whole.bins)


def test_a_block_longer_than_the_bins_widens_the_timeline() -> None:
    """A block's bins spanning 1000 s (a capture of hours): the timeline widens to 8 s
    bins and its points stay at the block's times."""
    points = [(1_700_000_000.0 + i, 1) for i in range(1000)]
    t = added(points[:3])
    t.add_bins(1.0, {int(ts): n for ts, n in points[3:]})
    assert (t.width, t.bins) == (8.0, added(points).bins)
    assert t.points()[0] == (1_700_000_000.0, 8)


_FLOW = st.tuples(
    st.integers(0, 5),  # bytes: few values, so that ties fall to the later keys
    st.sampled_from([1.0, 2.0]),  # start
    st.sampled_from(["tcp", "udp"]),
    st.sampled_from(["10.0.0.1", "10.0.0.2", None]),
)


def _records(specs: list[tuple[int, float, str, str | None]]) -> list[FlowRecord]:
    # Numbered in order, as a flow table numbers the flows it makes.
    fixed: dict[str, Any] = {
        "duration": 0.0, "orig_port": 1, "resp_ip": "10.9.9.9", "resp_port": 2,
        "orig_pkts": 1, "resp_pkts": 0, "resp_bytes": 0, "service": None,
        "service_port": None, "status": None, "port_class": None, "basis": None,
        "ambiguous": False, "conn_state": "S0", "tunnel": None, "vlan": (),
    }  # fmt: skip
    return [
        FlowRecord(uid=f"F{k + 1}", ts=ts, proto=proto, orig_ip=ip, orig_bytes=n, **fixed)
        for k, (n, ts, proto, ip) in enumerate(specs)
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_FLOW, max_size=60),
    st.integers(1, 8),
    st.integers(1, 25),
    st.integers(0, 60),
    st.sampled_from([0, 3, 1024]),
)
def test_kept_flows_are_the_top_of_all(
    specs: list[tuple[int, float, str, str | None]], keep: int, chunk: int, cut: int, slack: int
) -> None:
    """A summary that keeps its top ``keep`` flows (collected a chunk at a time, pruned on
    the way) has the top flows and the count of one that keeps them all; so does the merge
    of two such summaries (the flows of a capture's two parts)."""
    import portsniff.summary

    portsniff.summary.PRUNE_SLACK = slack  # (hypothesis: no monkeypatch fixture)
    try:
        flows = _records(specs)
        full = Summary(caveat="c", registry=[], flows=list(flows))

        def kept(part: list[FlowRecord]) -> Summary:
            b = SummaryBuilder("c", [], keep=keep)
            for a in range(0, len(part), chunk):
                b._collect(part[a : a + chunk])
            return b.finish()

        one = kept(flows)
        assert one.top_flows(keep) == full.top_flows(keep)
        assert one.flow_total == len(flows) and len(one.flows) == min(keep, len(flows))
        merged = kept(flows[:cut]).merge(kept(flows[cut:]))
        assert merged.top_flows(keep) == full.top_flows(keep)
        assert merged.flow_total == len(flows)
    finally:
        portsniff.summary.PRUNE_SLACK = 1024


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # client port: the flow
            st.sampled_from([53, 80, 5353, 40999]),  # server port
            st.sampled_from([40, 100, 1500]),  # bytes
        ),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 6),
)
def test_live_flows_beyond_the_top_get_no_record(
    packets: list[tuple[int, int, int]], keep: int
) -> None:
    """A summary that keeps its top flows finishes its live flows making records only of
    those that may be among them (a scan ends with many live): the same top flows, flow
    count and flows per service as a summary that keeps every flow."""
    import portsniff.summary
    from portsniff.annotate.annotator import Annotator
    from tests.annotate.fakes import FakeIndex, batch_of, tcp, udp

    decoded = [
        (
            udp("10.0.0.1", 40000 + c, "10.0.0.2", s)
            if s != 80
            else tcp("10.0.0.1", 40000 + c, "10.0.0.2", s, 0x18),
            k * 1_000_000,
        )
        for k, (c, s, _) in enumerate(packets)
    ]
    batch = batch_of(*decoded)
    batch.wirelen[:] = batch.caplen[:] = [n for _, _, n in packets]
    annotator = Annotator(FakeIndex())  # type: ignore[arg-type]
    records = [*annotator.feed(batch), *annotator.finish()]
    portsniff.summary.PRUNE_SLACK = 0  # (hypothesis: no monkeypatch fixture)
    try:
        every, top = SummaryBuilder("c", []), SummaryBuilder("c", [], keep=keep)
        for r in records:
            every.add(r)
            top.add(r)
        want, got = every.finish(), top.finish()
    finally:
        portsniff.summary.PRUNE_SLACK = 1024
    assert got.top_flows(keep) == want.top_flows(keep)
    assert got.flow_total == want.flow_total == len(want.flows)
    assert {k: r.flows for k, r in got.services.items()} == {
        k: r.flows for k, r in want.services.items()
    }
