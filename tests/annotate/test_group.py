"""Rows grouped by equal key tuples, as a dict of tuples would group them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.annotate import vector


def naive(keys: list[list[int]]) -> tuple[list[int], list[int]]:
    """(first row of each group, group of each row), groups by first appearance."""
    ids: dict[tuple[int, ...], int] = {}
    first: list[int] = []
    inverse: list[int] = []
    for i, row in enumerate(zip(*keys, strict=True)):
        if row not in ids:
            ids[row] = len(first)
            first.append(i)
        inverse.append(ids[row])
    return first, inverse


KEYS = st.integers(1, 4).flatmap(
    lambda width: st.lists(
        st.tuples(*[st.sampled_from([0, 1, 2**63, 2**64 - 1, 12345])] * width),
        min_size=1,
        max_size=80,
    )
)


def check(rows: list[tuple[int, ...]]) -> None:
    keys = [list(col) for col in zip(*rows, strict=True)]
    arrays = [np.array(col, np.uint64) for col in keys]
    order, first, inverse = vector._group(*arrays)
    want_first, want_inverse = naive(keys)
    assert first.tolist() == want_first
    assert inverse.tolist() == want_inverse
    # ``order`` has each group's rows together, ascending.
    assert sorted(order.tolist()) == list(range(len(rows)))
    runs = inverse[order]
    assert np.all(np.diff(order)[runs[1:] == runs[:-1]] > 0)
    assert len(set(runs.tolist())) == np.count_nonzero(np.diff(runs)) + 1


@settings(max_examples=200)
@given(KEYS)
def test_groups(rows: list[tuple[int, ...]]) -> None:
    check(rows)


@settings(max_examples=100)
@given(KEYS)
def test_groups_when_every_mix_collides(
    rows: list[tuple[int, ...]],
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vector, "_mix", lambda keys: np.zeros(keys[0].shape[0], np.uint64))
        check(rows)


def test_no_rows() -> None:
    order, first, inverse = vector._group(np.zeros(0, np.uint64))
    assert order.size == first.size == inverse.size == 0
