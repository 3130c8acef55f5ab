"""The summary's JSON writer: the same text as ``json.dumps(..., indent=1)``."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.flows import FlowRecord
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


_text = st.text(max_size=6) | st.sampled_from(['"', "\\", "\n", "é", "}, {", "\x00"])
_flow_records = st.lists(
    st.builds(
        FlowRecord,
        uid=st.integers(1, 10**6).map(lambda n: f"F{n}"),
        ts=st.floats(0, 2e9) | st.sampled_from([1700000000.000186, 1e-07, 0.0]),
        duration=st.floats(0, 1e6),
        proto=st.sampled_from(["tcp", "udp", "icmp", "other"]),
        orig_ip=st.none() | st.sampled_from(["10.0.0.1", "2001:db8::1"]),
        orig_port=st.none() | st.integers(0, 65535),
        resp_ip=st.none() | st.sampled_from(["10.0.0.2", "fe80::1"]),
        resp_port=st.none() | st.integers(0, 65535),
        orig_pkts=st.integers(0, 2**40),
        orig_bytes=st.integers(0, 2**62),
        resp_pkts=st.integers(0, 10),
        resp_bytes=st.integers(0, 10**12),
        service=st.none() | _text,
        service_port=st.none() | st.integers(0, 65535),
        status=st.none() | st.sampled_from(["assigned", "unassigned"]),
        port_class=st.none() | _text,
        basis=st.none() | _text,
        ambiguous=st.booleans(),
        conn_state=st.none() | _text,
        tunnel=st.none() | _text,
        vlan=st.lists(st.integers(0, 4095), max_size=3).map(tuple),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(_flow_records, st.integers(0, 3))
def test_flows_are_written_as_their_dicts(flows: list[FlowRecord], depth: int) -> None:
    """The writer's flows (field by field) are the text of their ``as_dict()`` list, at
    any depth: strings with quotes, newlines and non-ASCII, None, VLAN lists."""
    from portsniff.report import summary_json

    doc: object = summary_json._Flows(flows)
    same: object = [f.as_dict() for f in flows]
    for _ in range(depth):
        doc, same = {"flows": doc, "n": 1}, {"flows": same, "n": 1}
    out: list[str] = []
    summary_json._encode(doc, 0, out)
    assert "".join(out) == json.dumps(same, ensure_ascii=False, indent=1)


@settings(max_examples=100, deadline=None)
@given(st.lists(_values, max_size=12), _flow_records, st.sampled_from([1, 2, 5]))
def test_render_spills_to_the_stream_on_the_way(
    values: list[object], flows: list[FlowRecord], spill: int
) -> None:
    """The text goes to the stream piece by piece (every ``_SPILL`` pieces): the same
    document as one ``json.dumps``."""
    from portsniff.report import summary_json

    class Doc:
        def to_dict(self, top: int | None, *, flow_dicts: bool = True) -> object:
            listed = [f.as_dict() for f in flows] if flow_dicts else flows
            return {"values": values, "flows": listed, "n": len(values)}

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summary_json, "_SPILL", spill)
        render(Doc(), out, ReportOptions())  # type: ignore[arg-type]
    expected = json.dumps(Doc().to_dict(None), ensure_ascii=False, indent=1)
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
