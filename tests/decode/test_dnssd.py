"""DNS-SD names in DNS messages (portsniff.decode.dnssd)."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import DNS, DNSQR, DNSRR, DNSRRSRV

from portsniff.decode.dnssd import dns_payload, read_name, service_names, service_of


def names(*labels: str) -> list[bytes]:
    return [label.encode() for label in labels]


def test_service_type_and_instance() -> None:
    assert service_of(names("Kitchen", "_airplay", "_tcp", "local")) == (
        "_airplay._tcp",
        "Kitchen._airplay._tcp.local",
    )


def test_type_alone_has_no_instance() -> None:
    assert service_of(names("_ipp", "_tcp", "local")) == ("_ipp._tcp", None)


def test_subtype_has_no_instance() -> None:
    assert service_of(names("_printer", "_sub", "_http", "_tcp", "local")) == ("_http._tcp", None)


def test_dns_sd_meta_names_are_not_service_types() -> None:
    assert service_of(names("_services", "_dns-sd", "_udp", "local")) == (None, None)
    assert service_of(names("b", "_dns-sd", "_udp", "example", "com")) == (None, None)


def test_protocol_label_is_case_insensitive_and_case_is_kept() -> None:
    assert service_of(names("_HTTP", "_TCP", "local")) == ("_HTTP._TCP", None)


def test_names_without_service_labels() -> None:
    assert service_of(names("www", "example", "com")) == (None, None)
    assert service_of(names("_tcp", "local")) == (None, None)
    assert service_of(names("_", "_tcp", "local")) == (None, None)
    assert service_of([]) == (None, None)


def test_dots_and_backslashes_in_instance_labels_are_escaped() -> None:
    labels = [b"My.Printer\\2", b"_ipp", b"_tcp", b"local"]
    assert service_of(labels) == ("_ipp._tcp", "My\\.Printer\\\\2._ipp._tcp.local")


def test_undecodable_utf8_is_replaced() -> None:
    assert (
        service_of([b"\xff\xfe", b"_ipp", b"_tcp", b"local"])[1] == "\ufffd\ufffd._ipp._tcp.local"
    )


def test_message_with_question_answer_srv_txt_and_ptr_rdata() -> None:
    msg = DNS(
        qr=1,
        qd=DNSQR(qname="_ipp._tcp.local", qtype="PTR"),
        an=[
            DNSRR(rrname="_services._dns-sd._udp.local", type="PTR", rdata="_airplay._tcp.local"),
            DNSRR(rrname="_ipp._tcp.local", type="PTR", rdata="Office._ipp._tcp.local"),
        ],
        ar=[
            DNSRRSRV(rrname="Den._raop._tcp.local", target="den.local", port=7000),
            DNSRR(rrname="Hall._spotify-connect._tcp.local", type="TXT", rdata=[b"a=b"]),
            DNSRR(rrname="ignored._foo._tcp.local", type="A", rdata="10.0.0.1"),
        ],
    )
    types, instances = service_names(bytes(msg))
    assert types == ("_airplay._tcp", "_ipp._tcp", "_raop._tcp", "_spotify-connect._tcp")
    assert instances == (
        "Den._raop._tcp.local",
        "Hall._spotify-connect._tcp.local",
        "Office._ipp._tcp.local",
    )


def test_duplicates_are_removed_case_insensitively_first_spelling_wins() -> None:
    msg = DNS(
        qd=[
            DNSQR(qname="_IPP._tcp.local"),
            DNSQR(qname="_ipp._TCP.local"),
            DNSQR(qname="_a._udp.local"),
        ]
    )
    assert service_names(bytes(msg)) == (("_a._udp", "_IPP._tcp"), ())


def _header(qd: int = 0, an: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 0, 0x8400, qd, an, 0, 0)


def test_compression_pointers_are_followed() -> None:
    # question "_hap._tcp.local", answer owner = pointer to it, rdata "Lamp" + pointer
    question = b"\x04_hap\x04_tcp\x05local\x00" + struct.pack("!HH", 12, 1)
    rdata = b"\x04Lamp\xc0\x0c"
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 120, len(rdata)) + rdata
    msg = _header(qd=1, an=1) + question + answer
    assert service_names(msg) == (("_hap._tcp",), ("Lamp._hap._tcp.local",))


def test_pointer_loops_end() -> None:
    assert read_name(_header() + b"\xc0\x0c", 12) is None  # points at itself
    assert read_name(_header() + b"\xc0\x0e\xc0\x0c", 12) is None  # two pointers in a cycle
    assert read_name(_header() + b"\x01a\xc0\x0c", 12) is None  # label then back to itself
    assert service_names(_header(qd=1) + b"\xc0\x0c\x00\x0c\x00\x01") == ((), ())


def test_reserved_label_types_and_overlong_names_are_malformed() -> None:
    assert read_name(b"\x40abc\x00", 0) is None
    assert read_name(b"\x80abc\x00", 0) is None
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\x00"
    assert read_name(long_name, 0) is None


def test_what_was_read_before_an_error_counts() -> None:
    good = b"\x04_ssh\x04_tcp\x05local\x00" + struct.pack("!HH", 12, 1)
    msg = _header(qd=3) + good + b"\x3fshort"
    assert service_names(msg) == (("_ssh._tcp",), ())


def test_every_truncation_of_a_message_is_safe() -> None:
    msg = bytes(
        DNS(
            qr=1,
            qd=DNSQR(qname="_ipp._tcp.local", qtype="PTR"),
            an=DNSRR(rrname="_ipp._tcp.local", type="PTR", rdata="Office._ipp._tcp.local"),
        )
    )
    full = service_names(msg)
    assert full == (("_ipp._tcp",), ("Office._ipp._tcp.local",))
    for n in range(len(msg)):
        types, instances = service_names(msg[:n])
        assert set(types) <= set(full[0]) and set(instances) <= set(full[1])


def test_dns_payload_by_port_and_tcp_length_prefix() -> None:
    assert dns_payload("udp", 5353, 5353, b"abc") == b"abc"
    assert dns_payload("udp", 40000, 53, b"abc") == b"abc"
    assert dns_payload("udp", 40000, 8053, b"abc") is None
    assert dns_payload("tcp", 53, 40000, b"\x00\x03abcdef") == b"abc"
    assert dns_payload("tcp", 53, 40000, b"\x00") is None
    assert dns_payload("tcp", 5353, 40000, b"\x00\x03abc") is None
    assert dns_payload("sctp", 53, 53, b"abc") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    types, instances = service_names(data)
    assert all(isinstance(t, str) for t in types + instances)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=12), st.binary(max_size=200))
def test_arbitrary_bodies_with_many_records_never_raise(header: bytes, body: bytes) -> None:
    msg = header[:4] + b"\xff\xff" * 4 + body
    types, _instances = service_names(msg)
    assert len(types) <= len(body)


def test_real_mdns_capture(shared_captures: Path) -> None:
    from portsniff.decode.reference import decode_packet
    from tests.decode.test_vs_tshark import read_frames

    seen: set[str] = set()
    for frame in read_frames(shared_captures / "zeek__dns_mdns.pcap"):
        assert frame.linktype is not None
        seen.update(decode_packet(frame.linktype, frame.data, frame.wirelen).dnssd)
    assert seen == {"_ipp._tcp", "_ipps._tcp"}


def test_names_of_repeated_messages_are_kept_within_bounds() -> None:
    """A message met again gives the same names (kept, not parsed again); big messages
    are not kept, and the kept ones are bounded."""
    from portsniff.decode import dnssd

    small = bytes(DNS(qd=DNSQR(qname="_ipp._tcp.local", qtype="PTR")))
    big = bytes(
        DNS(
            qr=1,
            an=DNSRR(rrname="_ipp._tcp.local", type="PTR", rdata="P._ipp._tcp.local")
            / DNSRR(rrname="P._ipp._tcp.local", type="TXT", rdata="x" * 200)
            * 8,
        )
    )
    assert len(big) > dnssd._CACHED_SIZE
    first = service_names(small)
    assert first == (("_ipp._tcp",), ()) and service_names(small) is first
    assert service_names(big) == dnssd._service_names(big) and big not in dnssd._names_of
    for k in range(dnssd._CACHED + 10):
        service_names(small + bytes([k % 256, k // 256]))
    assert len(dnssd._names_of) <= dnssd._CACHED
