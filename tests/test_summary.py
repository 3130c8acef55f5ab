"""Timelines: adding a block's bins is merging a Timeline of them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.summary import MAX_BINS, Timeline

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
