"""The summary's JSON writer: the same text as ``json.dumps(..., indent=1)``."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.report.summaries import ReportOptions
from portsniff.report.summary_json import dumps, render
from tests.report.summary_samples import sample_summary

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
_keys = st.text(max_size=6) | st.integers() | st.booleans() | st.none() | st.floats()
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_dumps_is_json_dumps_indent_1(value: object) -> None:
    assert dumps(value) == json.dumps(value, ensure_ascii=False, indent=1)


def test_render_is_the_indented_document() -> None:
    summary = sample_summary()
    out = io.StringIO()
    render(summary, out, ReportOptions())
    expected = json.dumps(summary.to_dict(None), ensure_ascii=False, indent=1) + "\n"
    assert out.getvalue() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(_values, max_size=12), st.sampled_from([1, 2, 5]))
def test_render_spills_to_the_stream_on_the_way(values: list[object], spill: int) -> None:
    """The text goes to the stream piece by piece (every ``_SPILL`` pieces): the same
    document as one ``json.dumps``."""
    from portsniff.report import summary_json

    class Doc:
        def to_dict(self, top: int | None) -> object:
            return {"flows": values, "n": len(values)}

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summary_json, "_SPILL", spill)
        render(Doc(), out, ReportOptions())  # type: ignore[arg-type]
    expected = json.dumps({"flows": values, "n": len(values)}, ensure_ascii=False, indent=1)
    assert out.getvalue() == expected + "\n"


_tricky = st.sampled_from(["}", "{", "},\n  {", '"', "\\", "\n", "},", ",\n   {"]) | st.text(
    max_size=6
)
_flat_dicts = st.lists(
    st.dictionaries(
        _keys,
        _scalars | _tricky | st.just([]) | st.just({}) | st.just(()),
        min_size=1,
        max_size=5,
    ),
    min_size=2,
    max_size=9,
)


@settings(max_examples=300, deadline=None)
@given(
    _flat_dicts,
    st.integers(0, 3),
    st.sampled_from([1, 2, 3, 2048]),
    st.lists(st.tuples(st.integers(0, 9), st.sampled_from([{"v": [7]}, 5, {}, [], "s"]))),
)
def test_runs_of_flat_dicts_are_json_dumps_indent_1(
    items: list[dict[object, object]],
    depth: int,
    run: int,
    breaks: list[tuple[int, object]],
) -> None:
    """Lists of flat dicts (flows) are encoded a run at a time: the same text, whatever
    the members hold (strings with braces and newlines, empty containers), and whatever
    breaks the runs (a flow with a VLAN tag: a dict with a non-empty list, other items)."""
    from portsniff.report import summary_json

    items = list(items)
    for at, item in breaks:
        items.insert(min(at, len(items)), item)  # type: ignore[arg-type]
    doc: object = items
    for _ in range(depth):
        doc = {"x": doc, "n": 1}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summary_json, "_RUN", run)
        assert dumps(doc) == json.dumps(doc, ensure_ascii=False, indent=1)
