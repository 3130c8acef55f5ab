"""The byte-pair search of the vectorised kernels against a plain per-row search."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.decode import vector


def _naive(data: bytes, spans: list[tuple[int, int]]) -> list[bool]:
    return [b"\x04_" in data[a:b] for a, b in spans]


@st.composite
def _layout(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    # Bytes drawn mostly from the pair's own alphabet so that matches are common.
    data = draw(st.binary(max_size=300).map(lambda b: bytes(b"\x04_1"[x % 3] for x in b)))
    spans = []
    pos = 0
    for gap, length in draw(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 40)))):
        a = min(pos + gap, len(data))
        b = min(a + length, len(data))
        spans.append((a, b))
        pos = b
    return data, spans


@settings(max_examples=150, deadline=None)
@given(layout=_layout(), chunk=st.sampled_from([1, 7, 50, 1 << 22]))
def test_has_pair_is_a_per_row_search(
    layout: tuple[bytes, list[tuple[int, int]]], chunk: int
) -> None:
    data, spans = layout
    saved = vector.SCAN_CHUNK
    vector.SCAN_CHUNK = chunk
    try:
        start = np.array([a for a, _ in spans], np.int64)
        stop = np.array([b for _, b in spans], np.int64)
        buf = np.frombuffer(data, np.uint8)
        got = vector.has_pair(buf, start, stop, 4, ord("_"))
    finally:
        vector.SCAN_CHUNK = saved
    assert got.tolist() == _naive(data, spans)


def test_has_pair_rows_out_of_order() -> None:
    data = b"ab\x04_cd\x04_"
    spans = [(6, 8), (0, 4), (2, 4), (3, 8), (0, 3)]
    buf = np.frombuffer(data, np.uint8)
    start = np.array([a for a, _ in spans], np.int64)
    stop = np.array([b for _, b in spans], np.int64)
    assert vector.has_pair(buf, start, stop, 4, ord("_")).tolist() == _naive(data, spans)
