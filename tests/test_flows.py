"""Flows: orig/resp by the service side, TCP stream splitting, conn_state, filters."""

from __future__ import annotations

from portsniff.annotate.annotator import Annotator
from portsniff.flows import FlowTable, conn_state, flow_filters
from tests.annotate.fakes import FakeIndex, batch_of, tcp, udp

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def flows_of(*packets):
    a = Annotator(FakeIndex())  # type: ignore[arg-type]
    table = FlowTable()
    recs = list(a.feed(batch_of(*[(p, i * 1_000_000) for i, p in enumerate(packets)])))
    recs += list(a.finish())
    for r in recs:
        table.add(r)
    return list(table.finish())


def test_tcp_handshake_data_close_is_one_sf_flow_with_client_as_orig():
    c, s = ("10.0.0.5", 51000), ("10.0.0.9", 80)
    (f,) = flows_of(
        tcp(*c, *s, SYN),
        tcp(*s, *c, SYN | ACK),
        tcp(*c, *s, ACK),
        tcp(*c, *s, PSH | ACK),
        tcp(*s, *c, PSH | ACK),
        tcp(*c, *s, FIN | ACK),
        tcp(*s, *c, FIN | ACK),
        tcp(*c, *s, ACK),
    )
    assert (f.orig_ip, f.orig_port, f.resp_ip, f.resp_port) == ("10.0.0.5", 51000, "10.0.0.9", 80)
    assert (f.orig_pkts, f.resp_pkts, f.orig_bytes, f.resp_bytes) == (5, 3, 500, 300)
    assert (f.service, f.conn_state, f.basis) == ("http", "SF", "syn")
    assert f.duration == 0.007


def test_new_syn_after_close_is_a_new_flow():
    c, s = ("10.0.0.5", 51000), ("10.0.0.9", 80)
    flows = flows_of(
        tcp(*c, *s, SYN),
        tcp(*s, *c, RST | ACK),
        tcp(*c, *s, SYN),
        tcp(*s, *c, SYN | ACK),
    )
    assert [(f.conn_state, f.orig_pkts + f.resp_pkts) for f in flows] == [("REJ", 2), ("S1", 2)]


def test_udp_flow_states():
    flows = flows_of(
        udp("10.0.0.5", 40000, "10.0.0.9", 53),
        udp("10.0.0.9", 53, "10.0.0.5", 40000),
        udp("10.0.0.5", 40001, "10.0.0.9", 123),
    )
    assert [(f.resp_port, f.conn_state) for f in flows] == [(53, "SF"), (123, "S0")]


def test_conn_state_codes():
    assert conn_state("tcp", SYN, 0, 0) == "S0"
    assert conn_state("tcp", ACK, ACK, 1) == "OTH"
    assert conn_state("tcp", SYN | ACK | RST, SYN | ACK, 1) == "RSTO"
    assert conn_state("tcp", SYN | ACK, SYN | ACK | RST, 1) == "RSTR"
    assert conn_state("tcp", SYN | FIN | ACK, SYN | ACK, 1) == "S2"
    assert conn_state("tcp", SYN | ACK, SYN | ACK | FIN, 1) == "S3"
    assert conn_state("tcp", SYN | FIN, 0, 0) == "SH"


def test_flow_filters_select_both_directions():
    bpf, display = flow_filters("udp", ("10.0.0.5", 40000), ("10.0.0.9", 53), vlan=False)
    assert bpf == (
        "udp and ((src host 10.0.0.5 and src port 40000 and dst host 10.0.0.9 and dst port 53)"
        " or (src host 10.0.0.9 and src port 53 and dst host 10.0.0.5 and dst port 40000))"
    )
    assert display.startswith("udp && ((ip.src == 10.0.0.5 && udp.srcport == 40000")
    vbpf, _ = flow_filters("tcp", ("2001:db8::1", 1), ("2001:db8::2", 80), vlan=True)
    assert vbpf.startswith("(tcp and") and "or (vlan and (tcp and" in vbpf


def test_flow_records_pickle_field_by_field():
    """Summaries cross processes (--workers): a FlowRecord comes back equal."""
    import pickle

    c, s = ("10.0.0.5", 51000), ("10.0.0.9", 80)
    (f,) = flows_of(tcp(*c, *s, SYN), tcp(*s, *c, SYN | ACK))
    back = pickle.loads(pickle.dumps(f, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == f and back.as_dict() == f.as_dict()


def test_live_flows_pickle_slot_by_slot():
    """A summary's second half sends its live flows to the first (summary_split)."""
    import pickle

    from portsniff.flows import _Flow

    f = _Flow("udp", ("10.0.0.5", 5353), ("10.0.0.9", 123), 1.5, "vxlan", "F7")
    for k, name in enumerate(_Flow.__slots__):  # every slot a value of its own
        setattr(f, name, (name, k))
    back = pickle.loads(pickle.dumps([f, f], protocol=pickle.HIGHEST_PROTOCOL))
    assert back[0] is back[1]  # shared, as pickle keeps it
    assert [getattr(back[0], s) for s in _Flow.__slots__] == [
        getattr(f, s) for s in _Flow.__slots__
    ]


def test_flow_record_fields_come_from_their_slots():
    """flow_record fills FlowRecord by field order: every field is the flow's own."""
    from portsniff.flows import FlowRecord, _Flow, flow_record

    f = _Flow("tcp", ("10.0.0.5", 51000), ("10.0.0.9", 80), 1.25, "vxlan", "F9")
    f.last = 3.5
    f.orig_pkts, f.orig_bytes, f.resp_pkts, f.resp_bytes = 3, 180, 2, 1500
    f.flags_orig, f.flags_resp = SYN | ACK, SYN | ACK
    f.service, f.service_port, f.status, f.port_class = "http", 80, "assigned", "system"
    f.basis, f.ambiguous, f.vlan = "syn", True, (7, 9)
    expected = FlowRecord(
        uid="F9",
        ts=1.25,
        duration=2.25,
        proto="tcp",
        orig_ip="10.0.0.5",
        orig_port=51000,
        resp_ip="10.0.0.9",
        resp_port=80,
        orig_pkts=3,
        orig_bytes=180,
        resp_pkts=2,
        resp_bytes=1500,
        service="http",
        service_port=80,
        status="assigned",
        port_class="system",
        basis="syn",
        ambiguous=True,
        conn_state="S1",
        tunnel="vxlan",
        vlan=(7, 9),
    )
    got = flow_record(f)
    assert got == expected
    assert [getattr(got, n) for n in FlowRecord.__slots__] == [
        getattr(expected, n) for n in FlowRecord.__slots__
    ]
