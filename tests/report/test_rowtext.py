"""Rows of constants and decimal numbers laid out by numpy are the f-string's text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.report.rowtext import Part, decimal_rows, decimal_widths

CONST = st.binary(max_size=6).filter(lambda b: b"\0" not in b)


@st.composite
def rows_of_parts(draw: st.DrawFn) -> tuple[list[Part], list[bytes]]:
    n = draw(st.integers(0, 40))
    kinds = draw(st.lists(st.sampled_from(["const", "num", "padded"]), max_size=8))
    parts: list[Part] = []
    columns: list[list[bytes]] = []
    for kind in kinds[:12]:
        if kind == "const":
            c = draw(CONST)
            parts.append(c)
            columns.append([c] * n)
            continue
        top = draw(st.sampled_from([9, 99, 65535, 2**32, 2**62]))
        values = draw(st.lists(st.integers(0, top), min_size=n, max_size=n))
        arr = np.array(values, np.int64)
        if kind == "num":
            parts.append(arr)
            columns.append([str(v).encode() for v in values])
        else:
            extra = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
            widths = decimal_widths(arr) + np.array(extra, np.int64)
            parts.append((arr, widths))
            columns.append(
                [f"{v:0{w}d}".encode() for v, w in zip(values, widths.tolist(), strict=True)]
            )
    expected = [b"".join(col[i] for col in columns) for i in range(n)]
    return parts, expected


@settings(max_examples=300)
@given(rows_of_parts())
def test_rows_are_the_parts_joined(case: tuple[list[Part], list[bytes]]) -> None:
    parts, expected = case
    assert decimal_rows(parts, len(expected)) == expected


def test_widths() -> None:
    values = np.array([0, 9, 10, 99, 100, 2**62, 10**18 - 1, 10**18], np.int64)
    assert decimal_widths(values).tolist() == [len(str(v)) for v in values.tolist()]
    assert decimal_widths(np.zeros(0, np.int64)).tolist() == []


def test_many_layouts_in_one_call() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    a = rng.integers(0, 10**9, n) // 10 ** rng.integers(0, 9, n)
    b = rng.integers(0, 70000, n)
    got = decimal_rows([b"{", a, b",", b, b"}"], n)
    assert got == [f"{{{x},{y}}}".encode() for x, y in zip(a.tolist(), b.tolist(), strict=True)]


def test_what_it_refuses() -> None:
    with pytest.raises(ValueError, match="NUL"):
        decimal_rows([b"a\0"], 1)
    with pytest.raises(ValueError, match="non-negative"):
        decimal_rows([np.array([-1], np.int64)], 1)
    assert decimal_rows([b"x"], 0) == []
    assert decimal_rows([b""], 2) == [b"", b""]
