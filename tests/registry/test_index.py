"""The merged index over the official registry: labels, names, notes and figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from portsniff.caveat import CAVEAT
from portsniff.registry.index import RegistryIndex, alias_target, unauthorized_ports
from portsniff.registry.parse_csv import parse_iana_csv, write_iana_csv
from portsniff.registry.parse_services import parse_services
from portsniff.registry.record import PortLabel, ServiceRecord
from tests.registry._helpers import parsed

_INDEXES: dict[Path, RegistryIndex] = {}


@pytest.fixture
def xml_index(official_xml: Path) -> RegistryIndex:
    if official_xml not in _INDEXES:
        _INDEXES[official_xml] = RegistryIndex.build([parsed(official_xml)])
    return _INDEXES[official_xml]


def record(
    name: str, port: str, proto: str, desc: str = "d", notes: str = "", unauth: str = ""
) -> ServiceRecord:
    return ServiceRecord(name, port, proto, desc, "", "", "", "", "", "", unauth, notes)


def test_alias_attaches_to_its_target(xml_index: RegistryIndex) -> None:
    label = xml_index.lookup("udp", 44818)
    assert label.service == "EtherNet-IP-2"
    assert label.names == ("EtherNet-IP-2",)
    assert label.aliases == ("EtherNet/IP-2",)
    assert label.status == "assigned"


def test_two_names_and_unauthorized_note(xml_index: RegistryIndex) -> None:
    label = xml_index.lookup("tcp", 4444)
    assert label.names == ("krb524", "nv-video")
    assert label.unauthorized_use == "krb524 assigned the port, nv used it without an assignment"
    assert xml_index.lookup("tcp", 465).names == ("urd", "submissions")


def test_range_record_and_named_port(xml_index: RegistryIndex) -> None:
    flagged = xml_index.lookup("tcp", 6003)
    assert (flagged.service, flagged.unauthorized_use) == (
        "x11",
        "Known Unauthorized Use on port 6003",
    )
    plain = xml_index.lookup("tcp", 6004)
    assert (plain.service, plain.unauthorized_use) == ("x11", None)
    assert xml_index.records_for("tcp", 6004)[0].port_number == "6000-6063"


def test_unassigned_but_flagged(xml_index: RegistryIndex) -> None:
    label = xml_index.lookup("tcp", 796)
    assert (label.status, label.service, label.port_class) == ("unassigned", None, "system")
    assert label.unauthorized_use == "Unauthorized Use Known on port 796"
    assert xml_index.lookup("tcp", 797).unauthorized_use is None


def test_dynamic_port_is_implicitly_unassigned(xml_index: RegistryIndex) -> None:
    label = xml_index.lookup("udp", 50000)
    assert (label.status, label.port_class, label.service, label.source) == (
        "unassigned", "dynamic", None, None,
    )  # fmt: skip
    assert label.describe() == "udp/50000 (dynamic, unassigned)"


def test_reserved_and_sources(xml_index: RegistryIndex, official_xml: Path) -> None:
    assert xml_index.lookup("tcp", 0).status == "reserved"
    assert xml_index.lookup("tcp", 80).source == f"iana-xml:{official_xml}"
    assert xml_index.caveat.startswith(CAVEAT)
    assert xml_index.updated == "2026-08-17"
    assert [s.kind for s in xml_index.sources] == ["iana-xml"]


def test_protocolless_records_cover_tcp_and_udp(xml_index: RegistryIndex) -> None:
    assert xml_index.lookup("tcp", 6400).service == "boe-cms"
    assert xml_index.lookup("udp", 6400).service == "boe-cms"
    assert xml_index.lookup("sctp", 6400).service is None


def test_names_and_dnssd(xml_index: RegistryIndex) -> None:
    airplay = xml_index.by_name("AirPlay")
    assert airplay and all(r.port_number == "" for r in airplay)
    assert {r.transport_protocol for r in airplay} == {"tcp", "udp"}
    assert [r.transport_protocol for r in xml_index.by_name("_airplay._tcp")] == ["tcp"]
    assert xml_index.dnssd("airplay") == airplay
    assert xml_index.by_name("EtherNet/IP-2") and not xml_index.dnssd("EtherNet/IP-2")
    assert xml_index.by_name("no-such-service-name") == ()


def test_stats_official_xml(xml_index: RegistryIndex) -> None:
    s = xml_index.stats()
    assert s["records"] == 14533
    assert s["assigned_pairs"] == 11621
    assert s["assigned_pairs_by_transport"] == {"tcp": 5958, "udp": 5566, "sctp": 88, "dccp": 9}
    assert (s["range_records"], s["alias_records"], s["unauthorized_records"]) == (766, 184, 112)


def test_stats_official_csv(official_csv: Path) -> None:
    s = RegistryIndex.build([parsed(official_csv)]).stats()
    assert (s["records"], s["assigned_pairs"]) == (14499, 11606)


def test_csv_view_of_xml_gives_equal_index(xml_index: RegistryIndex, official_xml: Path) -> None:
    xml_reg = parsed(official_xml)
    csv_reg = parse_iana_csv(write_iana_csv(xml_reg.records), "as.csv")
    assert csv_reg.records == xml_reg.records
    csv_index = RegistryIndex.build([csv_reg])
    assert csv_index.stats() == xml_index.stats()
    for transport in ("tcp", "udp", "sctp", "dccp"):
        a, _ = xml_index.label_table(transport)
        b, _ = csv_index.label_table(transport)

        def strip(labels: list[PortLabel]) -> list[tuple[object, ...]]:
            return [
                (x.service, x.names, x.aliases, x.status, x.unauthorized_use, x.description)
                for x in labels
            ]

        assert strip(a) == strip(b)


def test_excerpt_rows_in_the_index(seed_excerpt: Path, official_xml: Path) -> None:
    excerpt = parsed(seed_excerpt)
    both = RegistryIndex.build([excerpt, parsed(official_xml)])
    # The official XML outranks the text excerpt wherever both list a pair.
    assert both.lookup("udp", 44818).source.startswith("iana-xml:")  # type: ignore[union-attr]
    alone = RegistryIndex.build([excerpt])
    assert alone.lookup("udp", 44818).aliases == ("EtherNet/IP-2",)
    assert alone.lookup("udp", 45001).status == "reserved"
    assert alone.caveat == excerpt.caveat
    assert alone.by_name("airplay")[0].transport_protocol == "udp"


def test_label_table_agrees_with_lookup(xml_index: RegistryIndex) -> None:
    labels, table = xml_index.label_table("tcp")
    assert table.shape == (65536,) and str(table.dtype) == "int32"
    for port in (0, 1, 80, 465, 796, 4444, 6003, 6004, 6400, 44818, 49151, 49152, 65535):
        assert labels[table[port]] == xml_index.lookup("tcp", port)
    assert xml_index.label_table("tcp")[0] is labels  # built once


def _uncached(index: RegistryIndex, transport: str, port: int) -> PortLabel:
    """The label as the registry's records make it, port by port (no shared shapes)."""
    src, records = index._winner(transport, port)
    return index._label(transport, port, records, src.label if src else None, index.complete)


@pytest.mark.parametrize(("transport", "step"), [("tcp", 1), ("udp", 3), ("sctp", 7), ("dccp", 7)])
def test_lookup_equals_the_records_label_on_every_port(
    xml_index: RegistryIndex, transport: str, step: int
) -> None:
    """Labels of one record set share their shape: each port's label is still its own
    (port, class, unauthorized-use note), equal field by field, records included."""
    for port in range(0, 65536, step):
        got = xml_index.lookup(transport, port)
        want = _uncached(xml_index, transport, port)
        assert got == want, port
        assert got.records == want.records, port


def test_lookup_with_sources_of_every_kind_equals_the_records_label() -> None:
    services = parse_services(b"web 80/tcp\nlocal 9999/tcp\nrange 6000/tcp\n", "/etc/services")
    index = RegistryIndex.build([services])
    for port in (0, 79, 80, 81, 6000, 9999, 49152, 65535):
        assert index.lookup("tcp", port) == _uncached(index, "tcp", port)


def test_precedence_richest_kind_then_order() -> None:
    services = parse_services(b"web 80/tcp\nlocal 9999/tcp\n", "/etc/services")
    wireshark = parse_services(b"# Wireshark\nhttp-ws 80/tcp\n", "ws")
    csv = parse_iana_csv(write_iana_csv([record("http", "80", "tcp")]), "iana.csv")
    index = RegistryIndex.build([services, wireshark, csv])
    assert index.lookup("tcp", 80).service == "http"
    assert index.lookup("tcp", 9999).source == "services:/etc/services"
    assert index.by_name("web")[0].port_number == "80"
    assert index.caveat == CAVEAT  # no source states it
    first = parse_iana_csv(write_iana_csv([record("a", "7", "tcp")]), "1.csv")
    second = parse_iana_csv(write_iana_csv([record("b", "7", "tcp")]), "2.csv")
    assert RegistryIndex.build([first, second]).lookup("tcp", 7).service == "a"
    assert RegistryIndex.build([second, first]).lookup("tcp", 7).service == "b"


def test_unauthorized_ports_reading() -> None:
    assert unauthorized_ports(
        record("", "788-799", "", unauth="Unauthorized Use Known on port 796")
    ) == ((796, 796),)
    assert unauthorized_ports(
        record("", "4489-4499", "", unauth="Known UNAUTHORIZED USE: Ports 4490 and 4491")
    ) == ((4490, 4490), (4491, 4491))
    assert unauthorized_ports(
        record("", "33436-33655", "", unauth="Known Unauthorized Use on ports 33436-33534")
    ) == ((33436, 33534),)
    assert unauthorized_ports(
        record(
            "f",
            "79",
            "tcp",
            unauth="Unauthorized use by some mail users (see [RFC4146] for details)",
        )
    ) == ((79, 79),)
    assert unauthorized_ports(
        record("t", "7012", "tcp", unauth="Known Unauthorized Use on 7011")
    ) == ((7012, 7012),)
    assert unauthorized_ports(record("t", "7012", "tcp")) == ()
    assert RegistryIndex.unauthorized_ports is unauthorized_ports


def test_alias_target() -> None:
    assert alias_target(record("x", "1", "tcp", notes='This entry is an alias to "y".')) == "y"
    assert alias_target(record("x", "1", "tcp")) is None


def test_bad_queries() -> None:
    index = RegistryIndex.build(
        [parse_iana_csv(write_iana_csv([record("a", "7", "tcp")]), "1.csv")]
    )
    with pytest.raises(ValueError, match="transport"):
        index.lookup("icmp", 7)
    with pytest.raises(ValueError, match="port"):
        index.lookup("tcp", 70000)


def test_ports_a_partial_registry_does_not_list_are_unlisted(seed_excerpt, official_xml) -> None:
    """The excerpt lists only some UDP ports: it cannot say tcp/80 is unassigned."""
    from portsniff.registry.cache import load_index

    partial = load_index([seed_excerpt])
    assert partial.lookup("tcp", 80).status == "unlisted"
    assert partial.lookup("udp", 50000).status == "unassigned"  # dynamic: never assigned
    assert partial.lookup("udp", 45001).status == "reserved"
    labels, table = partial.label_table("tcp")
    assert labels[int(table[80])].status == "unlisted"
    full = load_index([official_xml, seed_excerpt])
    assert full.lookup("tcp", 80).status == "assigned"
    assert full.lookup("tcp", 1).status == "assigned"
    assert full.lookup("tcp", 4).status == "unassigned"


@pytest.mark.parametrize("transport", ["tcp", "udp", "sctp", "dccp"])
def test_assigned_table_agrees_with_lookup_on_every_port(
    transport: str, official_xml: Path, seed_excerpt: Path
) -> None:
    """The numpy table the vector labeller uses says what ``lookup`` says, port by port,
    for the official registry and for several ranked sources (compiled and parsed)."""
    from portsniff.registry.cache import load_index

    services = parse_services(b"web 80/tcp\nlocal 9999/tcp\nx 5000/udp\n", "/etc/services")
    for index in (
        load_index([official_xml]),
        load_index([seed_excerpt]),
        RegistryIndex.build([services, parsed(seed_excerpt)]),
        RegistryIndex.build([parsed(seed_excerpt), parsed(official_xml), services]),
    ):
        table = index.assigned_table(transport)
        want = [index.lookup(transport, p).status == "assigned" for p in range(65536)]
        assert table.tolist() == want
        assert index.assigned_table(transport) is table  # built once


def test_damaged_port_masks_are_recomputed(official_xml: Path) -> None:
    from portsniff.registry import cache

    first = cache.load_index([official_xml]).assigned_table("udp").copy()
    sha = cache.load_index([official_xml]).sources[0].sha256
    path = cache.masks_path(sha)
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF  # flip bits: same length, wrong digest
    path.write_bytes(bytes(blob))
    assert cache.load_masks(sha) is None
    again = cache.load_index([official_xml]).assigned_table("udp")
    assert again.tolist() == first.tolist()
    assert cache.load_masks(sha) is not None  # rewritten


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_lookup_is_the_same_once_the_covered_table_is_built(
    transport: str, official_xml: Path, seed_excerpt: Path
) -> None:
    """With ``covered_table`` built, ports no source lists skip the sources: every port's
    label is still what the sources say (a partial registry, and ranked sources)."""
    from portsniff.registry.cache import load_index

    services = parse_services(b"web 80/tcp\nx 5000/udp\n", "/etc/services")
    for make in (
        lambda: load_index([seed_excerpt]),
        lambda: RegistryIndex.build([services, parsed(seed_excerpt), parsed(official_xml)]),
    ):
        plain, fast = make(), make()
        covered = fast.covered_table(transport)
        assert fast.covered_table(transport) is covered  # built once
        assert not covered.all()
        assert [fast.lookup(transport, p) for p in range(65536)] == [
            plain.lookup(transport, p) for p in range(65536)
        ]
