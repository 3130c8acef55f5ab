"""Annotator rules beyond the service side: fragments, ICMP quotes, tunnels, DNS-SD."""

from __future__ import annotations

import pytest

from portsniff.annotate import annotator as annotator_module
from portsniff.annotate.annotator import Annotator
from portsniff.decode.packet import Decoded, Endpoints, Fragment
from tests.annotate.fakes import FakeIndex, batch_of, udp

KEY = ("10.0.0.5", "10.0.0.9", 77, 17)


def run(*packets, index=None):
    a = Annotator(index or FakeIndex())  # type: ignore[arg-type]
    out = list(a.feed(batch_of(*[(p, i * 1_000_000) for i, p in enumerate(packets)])))
    out += list(a.finish())
    return a, out


def frag(offset: int, more: bool, ports: bool) -> Decoded:
    return Decoded(
        1,
        "10.0.0.5",
        "10.0.0.9",
        "udp",
        17,
        51000 if ports else None,
        123 if ports else None,
        None,
        fragment=Fragment(KEY, offset, more),
    )


def test_every_fragment_carries_the_datagrams_ports_and_label():
    a, recs = run(frag(0, True, True), frag(1480, True, False), frag(2960, False, False))
    assert [(r.src_port, r.dst_port, r.service, r.fragment) for r in recs] == [
        (51000, 123, "ntp", True)
    ] * 3
    assert a.counts.fragments == 3 and a.counts.unresolved_fragments == 0


def test_non_first_fragment_before_its_first_is_resolved_and_order_kept():
    a, recs = run(
        frag(1480, False, False),
        udp("10.0.0.1", 40000, "10.0.0.2", 53),
        frag(0, True, True),
    )
    assert [r.frame for r in recs] == [1, 2, 3]
    assert (recs[0].dst_port, recs[0].service) == (123, "ntp")
    assert a.counts.unresolved_fragments == 0


def test_fragment_whose_first_never_comes_is_reported_unresolved():
    a, recs = run(frag(1480, False, False), udp("10.0.0.1", 40000, "10.0.0.2", 53))
    assert [r.frame for r in recs] == [1, 2]
    assert recs[0].src_port is None and recs[0].service is None and recs[0].fragment
    assert a.counts.unresolved_fragments == 1
    assert a.counts.problems == {"non-first fragment whose first fragment was not seen": 1}


def test_fragment_window_releases_held_packets(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(annotator_module, "FRAGMENT_WINDOW_PACKETS", 2)
    a = Annotator(FakeIndex())  # type: ignore[arg-type]
    batch = batch_of(
        (frag(1480, False, False), 0),
        *[(udp("10.0.0.1", 40000, "10.0.0.2", 53), 1000 * i) for i in range(1, 5)],
    )
    out = list(a.feed(batch))
    assert [r.frame for r in out] == [1, 2, 3, 4, 5]  # released before finish()
    assert out[0].src_port is None


def test_icmp_error_is_icmp_traffic_that_quotes_udp():
    d = Decoded(
        1,
        "10.0.0.9",
        "10.0.0.5",
        "icmp",
        1,
        quoted=Endpoints("udp", "10.0.0.5", "10.0.0.9", 51000, 53),
    )
    _, (r,) = run(d)
    assert (r.proto, r.src_port, r.service) == ("icmp", None, None)
    assert r.quoted is not None
    assert (r.quoted.service, r.quoted.service_port) == ("domain", 53)


def test_tunnel_outer_ports_label_the_packet_and_inner_go_in_inner():
    d = udp(
        "192.0.2.1",
        50001,
        "192.0.2.2",
        4789,
        inner=(Endpoints("udp", "10.1.0.1", "10.1.0.2", 40000, 123, tunnel="vxlan"),),
    )
    _, (r,) = run(d)
    assert (r.service, r.service_port) == ("vxlan", 4789)
    assert [(e.tunnel, e.service, e.service_port) for e in r.inner] == [("vxlan", "ntp", 123)]


def test_dnssd_types_get_their_registry_entries_and_instances():
    d = udp(
        "10.0.0.7",
        5353,
        "224.0.0.251",
        5353,
        dnssd=("_airplay._tcp", "_unknown-thing._udp"),
        dnssd_instances=("Kitchen._airplay._tcp.local",),
    )
    _, (r,) = run(d)
    airplay, unknown = r.dnssd
    assert (airplay.service, airplay.description) == (
        "airplay",
        "Protocol for streaming of audio/video content",
    )
    assert airplay.instances == ("Kitchen._airplay._tcp.local",)
    assert unknown.service is None and unknown.instances == ()


def test_non_ip_frames_have_null_ports_and_are_counted():
    a, (r,) = run(Decoded(1, proto="arp"))
    assert (r.proto, r.src_ip, r.src_port, r.service, r.status) == ("arp", None, None, None, None)
    assert a.counts.non_ip == 1 and a.counts.unlabelled == 1


def test_malformed_packets_are_counted_with_their_problem():
    a, (r,) = run(Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, problem="truncated UDP header"))
    assert r.problem == "truncated UDP header"
    assert a.counts.malformed == 1 and a.counts.problems == {"truncated UDP header": 1}
