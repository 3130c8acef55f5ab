"""Capture timestamps as seconds: correctly rounded, and their texts as repr writes them."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from portsniff.timestamps import first_past, repr_parts, repr_texts, seconds, seconds_array

MICROS = st.integers(-(2**53) + 1, 2**53 - 1).map(lambda us: us * 1000)
ANY_NS = st.integers(0, 2**63 - 1)


def nearest(ts_ns: int) -> float:
    return float(Fraction(ts_ns, 10**9))  # correctly rounded


def test_microsecond_timestamps_keep_their_digits() -> None:
    # 1700000000.000186 was written 1700000000.0001862 when computed as ts_ns / 1e9.
    assert repr(seconds(1_700_000_000_000_186_000)) == "1700000000.000186"
    assert repr(1_700_000_000_000_186_000 / 1e9) == "1700000000.0001862"


def test_every_microsecond_of_a_second_is_the_nearest_double() -> None:
    """Whole seconds do not change the pattern inside a binade: one second per binade
    stands for all of them (dates up to 2**34 s)."""
    micros = np.arange(1_000_000, dtype=np.int64)
    for k in (0, 10, 20, 30, 31, 32, 33):
        sec = 2**k + 987
        got = seconds_array(sec * 10**9 + micros * 1000)
        # (sec * 10**6 + us) is exact as a double here, so one division rounds once.
        want = (sec * 10**6 + micros).astype(np.float64) / 1e6
        assert np.array_equal(got, want), k
        sample = micros[::9973]
        assert [nearest(int(x)) for x in sec * 10**9 + sample * 1000] == got[::9973].tolist()


@given(st.one_of(MICROS, st.integers(-(2**53) + 1, 2**53 - 1)))
def test_microseconds_and_small_counts_round_correctly(ts_ns: int) -> None:
    assert seconds(ts_ns) == nearest(ts_ns)


@given(ANY_NS)
def test_other_timestamps_are_within_one_unit_in_the_last_place(ts_ns: int) -> None:
    got, want = seconds(ts_ns), nearest(ts_ns)
    assert abs(got - want) <= np.spacing(want)


@given(st.lists(st.one_of(MICROS, ANY_NS, st.integers(-(10**6), 10**6)), max_size=50))
def test_array_and_texts_agree_with_the_scalar(values: list[int]) -> None:
    arr = np.array(values, np.int64)
    assert seconds_array(arr).tolist() == [seconds(v) for v in values]
    assert repr_texts(arr) == [repr(seconds(v)) for v in values]


def test_texts_at_the_edges() -> None:
    values = [
        0,
        1000,
        99_000,
        100_000,
        123_000,
        10**9,
        10**12 + 5000,
        2**32 * 10**9 - 1000,
        2**32 * 10**9,
        1_700_000_000_120_000_000,
        1_700_000_000_000_186_123,
    ]
    assert repr_texts(np.array(values, np.int64)) == [repr(seconds(v)) for v in values]
    assert repr_texts(np.zeros(0, np.int64)) == []


@given(st.lists(st.one_of(MICROS, ANY_NS, st.integers(-(10**6), 10**6)), max_size=50))
def test_repr_parts_are_repr_where_they_say_so(values: list[int]) -> None:
    arr = np.array(values, np.int64)
    parts = repr_parts(arr)
    simple = [v % 1000 == 0 and 100_000 <= v < 2**32 * 10**9 for v in values]
    if not all(simple):
        assert parts is None
        return
    assert parts is not None
    sec, frac, width = (p.tolist() for p in parts)
    texts = [f"{s}.{f:0{w}d}" for s, f, w in zip(sec, frac, width, strict=True)]
    assert texts == [repr(seconds(v)) for v in values]


@given(
    st.lists(st.floats(1.7e9, 1.7e9 + 5_000, allow_nan=False), min_size=1, max_size=60),
    st.lists(st.floats(1.7e9 - 5_000, 1.7e9 + 5_000, allow_nan=False), min_size=1, max_size=20),
    st.sampled_from([0.0, 0.5, 600.0, 3600.0, 1e-9]),
)
def test_first_past_is_the_first_time_past_the_timeout(
    times: list[float], lasts: list[float], timeout: float
) -> None:
    """The first position whose (ascending) time is more than ``timeout`` after each
    ``last``, computed as ``now - last > timeout``: the same as scanning."""
    now = np.maximum.accumulate(np.array(times))
    got = first_past(now, np.array(lasts), timeout)
    assert got is not None
    for last, at in zip(lasts, got.tolist(), strict=True):
        want = next((i for i, t in enumerate(now.tolist()) if t - last > timeout), len(now))
        assert at == want
