"""The DNS label search of the vectorised kernels against a plain per-row search."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.decode import vector


def _naive(data: bytes, spans: list[tuple[int, int]]) -> list[bool]:
    return [any(x in data[a:b].lower() for x in (b"\x04_tcp", b"\x04_udp")) for a, b in spans]


@st.composite
def _layout(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    # Bytes drawn from the labels' own alphabet, and whole labels, so that matches are
    # common (and cut short, and split across rows).
    pieces = st.one_of(
        st.sampled_from([b"\x04_tcp", b"\x04_UdP", b"\x04_tc", b"\x04_", b"_udp"]),
        st.binary(max_size=6).map(lambda b: bytes(b"\x04_tcpuUDP1"[x % 10] for x in b)),
    )
    data = draw(st.lists(pieces, max_size=60).map(b"".join))
    spans = []
    pos = 0
    for gap, length in draw(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 40)))):
        a = min(pos + gap, len(data))
        b = min(a + length, len(data))
        spans.append((a, b))
        pos = b
    return data, spans


@settings(max_examples=300, deadline=None)
@given(layout=_layout())
def test_has_proto_label_is_a_per_row_search(layout: tuple[bytes, list[tuple[int, int]]]) -> None:
    data, spans = layout
    start = np.array([a for a, _ in spans], np.int64)
    stop = np.array([b for _, b in spans], np.int64)
    buf = np.frombuffer(data, np.uint8)
    assert vector.has_proto_label(buf, start, stop).tolist() == _naive(data, spans)


def test_has_proto_label_rows_out_of_order() -> None:
    data = b"ab\x04_udpcd\x04_TCP\x04_tCp\x04_uDp\x04_tcq\x04_T"
    spans = [(11, 16), (0, 7), (2, 7), (3, 16), (0, 6), (9, 16), (14, 19), (19, 24), (24, 29)]
    spans += [(29, 32), (40, 30), (0, 0)]  # cut short, reversed, empty
    buf = np.frombuffer(data, np.uint8)
    start = np.array([a for a, _ in spans], np.int64)
    stop = np.array([b for _, b in spans], np.int64)
    got = vector.has_proto_label(buf, start, stop).tolist()
    assert got == _naive(data, spans)
    assert got[6:9] == [True, True, False]
