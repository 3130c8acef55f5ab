"""One test per rule of the service-side decision."""

from __future__ import annotations

from portsniff.annotate.annotator import Annotator
from tests.annotate.fakes import FakeIndex, batch_of, tcp, udp

SYN, ACK, PSH = 0x02, 0x10, 0x08


def label(*packets):
    a = Annotator(FakeIndex())  # type: ignore[arg-type]
    out = list(a.feed(batch_of(*[(p, i * 1000) for i, p in enumerate(packets)])))
    out += list(a.finish())
    return out


def test_syn_names_its_destination_even_when_the_client_port_is_assigned():
    # Client port 2000 is assigned (cisco-sccp); the handshake shows 44818 is the server.
    recs = label(
        tcp("10.0.0.5", 2000, "10.0.0.9", 44818, SYN),
        tcp("10.0.0.9", 44818, "10.0.0.5", 2000, SYN | ACK),
        tcp("10.0.0.5", 2000, "10.0.0.9", 44818, ACK),
    )
    assert [r.service for r in recs] == ["EtherNet-IP-2"] * 3
    assert [r.service_side for r in recs] == ["dst", "src", "dst"]
    assert all(r.basis == "syn" and not r.ambiguous for r in recs)


def test_syn_ack_names_its_source_when_the_syn_was_missed():
    recs = label(
        tcp("10.0.0.9", 3000, "10.0.0.5", 2000, SYN | ACK),
        tcp("10.0.0.5", 2000, "10.0.0.9", 3000, ACK),
    )
    assert [(r.service, r.service_port, r.basis) for r in recs] == [("hbci", 3000, "syn-ack")] * 2


def test_first_packet_destination_when_assigned():
    recs = label(
        udp("10.0.0.5", 51334, "10.0.0.9", 47808),
        udp("10.0.0.9", 47808, "10.0.0.5", 51334),
    )
    assert [(r.service, r.service_side, r.basis) for r in recs] == [
        ("bacnet", "dst", "first-packet"),
        ("bacnet", "src", "first-packet"),
    ]


def test_both_assigned_without_handshake_is_ambiguous():
    (r,) = label(udp("10.0.0.5", 123, "10.0.0.9", 53))
    assert (r.service, r.basis, r.ambiguous) == ("domain", "first-packet", True)


def test_only_assigned_port_when_the_reply_is_seen_first():
    (r,) = label(udp("10.0.0.9", 47808, "10.0.0.5", 51334))
    assert (r.service, r.service_side, r.basis) == ("bacnet", "src", "only-assigned")


def test_lower_port_when_neither_is_assigned():
    (r,) = label(udp("10.0.0.9", 50000, "10.0.0.5", 40001))
    assert (r.service, r.service_port, r.status, r.port_class, r.basis) == (
        None,
        40001,
        "unassigned",
        "user",
        "lower-port",
    )


def test_mid_stream_tcp_uses_first_packet_rule():
    (r,) = label(tcp("10.0.0.5", 51000, "10.0.0.9", 80, ACK | PSH))
    assert (r.service, r.basis) == ("http", "first-packet")


def test_new_syn_on_same_tuple_redecides():
    recs = label(
        tcp("10.0.0.9", 2000, "10.0.0.5", 3000, ACK),  # mid-stream: 3000 received it
        tcp("10.0.0.9", 2000, "10.0.0.5", 3000, 0x01 | ACK),
        tcp("10.0.0.5", 3000, "10.0.0.9", 2000, SYN),  # new connection the other way
    )
    assert (recs[0].service_port, recs[0].basis, recs[0].ambiguous) == (3000, "first-packet", True)
    assert (recs[2].service_port, recs[2].basis) == (2000, "syn")
