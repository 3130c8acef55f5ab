"""DecodedBatch's columns: a tunnel's inner IP header goes to the tunnels' columns and
comes back as the same Decoded; everything else with details keeps its Decoded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portsniff.decode.batch import TUNNELS, DecodedBatch, Tunnels, in_columns
from portsniff.decode.fast import batch_differences
from portsniff.decode.packet import PROTOS, Decoded, Endpoints, Fragment

V4 = ["10.0.0.1", "192.0.2.255", "0.0.0.0"]
V6 = ["2001:db8::1", "::", "fe80::1:2"]


def _tunnel(*inner: Endpoints, **more: object) -> Decoded:
    return Decoded(1, "192.0.2.1", "192.0.2.2", "udp", 17, 40000, 4789, None, inner=inner, **more)  # type: ignore[arg-type]


VXLAN = Endpoints("tcp", "10.0.0.1", "10.0.0.2", 5, 443, "vxlan")


@st.composite
def decoded(draw: st.DrawFn) -> Decoded:
    inner, outer = draw(st.sampled_from([V4, V6])), draw(st.sampled_from([V4, V6]))
    e = Endpoints(
        draw(st.sampled_from(PROTOS)),
        draw(st.sampled_from(inner)),
        draw(st.sampled_from(inner)),
        draw(st.none() | st.integers(0, 65535)),
        draw(st.none() | st.integers(0, 65535)),
        draw(st.sampled_from(TUNNELS)),
    )
    proto = draw(st.sampled_from(["udp", "tcp", "other"]))
    return Decoded(
        linktype=draw(st.sampled_from([1, 101, 113])),
        src_ip=draw(st.sampled_from(outer)),
        dst_ip=draw(st.sampled_from(outer)),
        proto=proto,
        ip_proto=draw(st.none() | st.integers(0, 255)),
        src_port=draw(st.none() | st.integers(0, 65535)),
        dst_port=draw(st.none() | st.integers(0, 65535)),
        tcp_flags=draw(st.none() | st.integers(0, 255)),
        vlan=tuple(draw(st.lists(st.integers(0, 4095), max_size=2))),
        inner=(e,),
    )


@given(st.lists(decoded(), min_size=1, max_size=8))
def test_tunnels_columns_give_the_decoded_back(ds: list[Decoded]) -> None:
    one = DecodedBatch.empty("<t>", 1, len(ds))
    rows = DecodedBatch.empty("<t>", 1, len(ds))
    for i, d in enumerate(ds):
        one.set_decoded(i, d)
    rows.set_decoded_rows(list(range(len(ds))), ds)
    for b in (one, rows):
        assert not b.details  # all in the columns
        assert [b.detail(i) for i in range(len(ds))] == ds
    assert batch_differences(one, rows) == []


def test_what_stays_a_decoded() -> None:
    assert in_columns(_tunnel(VXLAN))
    assert in_columns(_tunnel(VXLAN, vlan=(1, 2)))
    kept = [
        _tunnel(VXLAN, Endpoints("udp", "10.0.0.3", "10.0.0.4", 1, 2, "vxlan")),  # nested
        _tunnel(Endpoints("other", None, None, None, None, "vxlan")),  # not IP
        _tunnel(VXLAN, vlan=(1, 2, 3)),
        _tunnel(VXLAN, problem="truncated"),
        _tunnel(VXLAN, fragment=Fragment(("192.0.2.1", "192.0.2.2", 1, 17), 0, True)),
        _tunnel(Endpoints("tcp", "2001:DB8::1", "2001:db8::2", 1, 2, "vxlan")),  # not as written
        _tunnel(Endpoints("tcp", "2001:db8::1", "10.0.0.2", 1, 2, "vxlan")),  # two versions
        _tunnel(Endpoints("tcp", "10.0.0.1", "10.0.0.2", 1, 2, "somewhere")),
    ]
    b = DecodedBatch.empty("<t>", 1, len(kept))
    b.set_decoded_rows(list(range(len(kept))), kept)
    assert sorted(b.details) == list(range(len(kept)))
    assert b.tunnels is None
    assert [b.detail(i) for i in range(len(kept))] == kept


def test_differences_name_the_tunnel_columns() -> None:
    a = DecodedBatch.empty("<t>", 1, 2)
    b = DecodedBatch.empty("<t>", 1, 2)
    a.set_decoded(1, _tunnel(VXLAN))
    b.set_decoded(1, _tunnel(Endpoints("tcp", "10.0.0.1", "10.0.0.2", 5, 80, "vxlan")))
    (diff,) = batch_differences(a, b)
    assert diff.startswith("row 1 tunnel dst_port:") and diff.endswith("(443) != np.int32(80)")
    assert batch_differences(a, DecodedBatch.empty("<t>", 1, 2))[0].startswith("row 1 ")


def test_tunnels_take_slice_concat_merge_without() -> None:
    other = Endpoints("udp", "2001:db8::1", "2001:db8::2", 1, 2, "gre")
    t = Tunnels.of([1, 4], [VXLAN, other])
    assert t.rows().tolist() == [1, 4] and t.entry(4) == 1 and t.entry(2) is None
    part = t.take(np.array([0, 1, 2, 4]))
    assert part.rows().tolist() == [1, 3] and part.endpoints(1) == other
    assert t.slice(2, 5).rows().tolist() == [2] and t.slice(2, 5).endpoints(0) == other
    both = Tunnels.concat([None, t], [2, 5])
    assert both is not None and both.rows().tolist() == [3, 6]
    assert Tunnels.concat([None, None], [1, 1]) is None
    merged = t.without(np.array([1])).merged(Tunnels.of([0], [VXLAN]))
    assert merged.rows().tolist() == [0, 4] and merged.endpoints(1) == other
    with pytest.raises(AssertionError):
        Tunnels.of([0], [Endpoints("other", None, None, None, None, "vxlan")])
