"""IANA XML parser: the official file, IANA's CSV mapping, unsafe XML and fuzzing."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.caveat import CAVEAT
from portsniff.errors import RegistryError
from portsniff.registry.parse_xml import parse_iana_xml
from portsniff.registry.record import ServiceRecord
from tests.registry._helpers import parsed

REGISTRY_ID = "service-names-port-numbers"
HEAD = (
    '<?xml version="1.0"?>\n<registry xmlns="http://www.iana.org/assignments" '
    f'id="{REGISTRY_ID}">\n<updated>2026-01-02</updated>\n'
).encode()
TAIL = b"</registry>\n"


def xml(body: str) -> bytes:
    return HEAD + body.encode() + TAIL


def test_official_xml(official_xml: Path) -> None:
    reg = parsed(official_xml)
    assert reg.source.kind == "iana-xml"
    assert reg.source.records == len(reg.records) == 14533
    assert reg.source.updated == "2026-08-17"
    assert reg.caveat is not None and reg.caveat.startswith(CAVEAT)
    assert reg.caveat.endswith("REGISTERED OR NOT.")


def test_xml_matches_csv_of_same_records(official_xml: Path, official_csv: Path) -> None:
    """The XML is six months newer; all but the records changed since agree exactly."""
    xml_records = parsed(official_xml).records
    csv_records = set(parsed(official_csv).records)
    same = sum(1 for r in xml_records if r in csv_records)
    # 42 records were added and 30 changed between the versions (registry README).
    assert same >= len(xml_records) - 42 - 30


def test_mapping_of_people_references_and_notes() -> None:
    reg = parse_iana_xml(
        xml(
            """
  <record date="2017-02-22" updated="2019-12-16">
    <name>smtp</name><protocol>tcp</protocol>
    <assignee><xref type="person" data="IESG"/></assignee>
    <xref type="person" data="IETF_Chair"/>
    <xref type="note" data="1"/>
    <description>Simple  Mail<br/><br/>
      Transfer</description>
    <xref type="rfc" data="rfc5321"/>
    <xref type="rfc" data="rfc8765">RFC8765, Section 6.1</xref>
    <xref type="uri" data="https://example.org/x"/>
    <xref type="text">n/a</xref>
    <number>25</number>
    <sc>1145656131</sc>
    <unauthorized>Known Unauthorized Use on port 25</unauthorized>
    <note>De-assigned, previously by <xref type="person" data="Bernie_Volz"/>
      <paragraph>Defined TXT keys:</paragraph></note>
  </record>
  <record><name>tcpmux</name><protocol>udp</protocol>
    <xref type="person" data="Mark_Lottor"/><description>TCP Port Service Multiplexer</description>
    <number>1</number></record>
"""
        ),
        "x.xml",
    )
    assert reg.records == (
        ServiceRecord(
            "smtp",
            "25",
            "tcp",
            "Simple Mail Transfer",
            "[IESG]",
            "[IETF_Chair]",
            "2017-02-22",
            "2019-12-16",
            "[1][RFC5321][RFC8765, Section 6.1][https://example.org/x][n/a]",
            "1145656131",
            "Known Unauthorized Use on port 25",
            "De-assigned, previously by [Bernie_Volz] Defined TXT keys:",
        ),
        # Without <assignee>, IANA's CSV repeats the record's people in both columns.
        ServiceRecord(
            "tcpmux", "1", "udp", "TCP Port Service Multiplexer",
            "[Mark_Lottor]", "[Mark_Lottor]", "", "", "", "", "", "",
        ),
    )  # fmt: skip
    assert reg.source.updated == "2026-01-02"
    assert reg.caveat is None


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<registry xmlns="http://www.iana.org/assignments"><record><description>&lol2;</description><number>1</number></record></registry>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<registry xmlns="http://www.iana.org/assignments"><record><description>&x;</description><number>1</number></record></registry>"""


@pytest.mark.parametrize("data", [BOMB, EXTERNAL])
def test_unsafe_xml_is_refused(data: bytes) -> None:
    with pytest.raises(RegistryError, match=r"bomb\.xml: refused unsafe XML"):
        parse_iana_xml(data, "bomb.xml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HEAD + b"<record><number>1</number>", r"line \d+, column \d+: malformed XML"),
        (b"<registry><record/></registry>", "not an IANA registry"),
        (
            b'<registry xmlns="http://www.iana.org/assignments" id="protocol-numbers"/>',
            "not the port registry",
        ),
        (
            xml("<record><number>70000</number><description>x</description></record>"),
            "record 1: bad port",
        ),
        (
            xml("<record><name>a</name><protocol>ip</protocol></record>"),
            "record 1: unknown transport",
        ),
        (xml(""), "no registry records"),
    ],
)
def test_damage_names_file_and_place(data: bytes, message: str) -> None:
    with pytest.raises(RegistryError, match=rf"^x\.xml: .*{message}"):
        parse_iana_xml(data, "x.xml")


def test_truncated_official_xml_is_rejected(official_xml: Path) -> None:
    data = official_xml.read_bytes()
    with pytest.raises(RegistryError, match="malformed XML"):
        parse_iana_xml(data[: len(data) - 200], "cut.xml")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    for blob in (data, HEAD + data + TAIL):
        try:
            reg = parse_iana_xml(blob, "fuzz.xml")
        except RegistryError:
            continue
        assert reg.records


def test_mutated_real_data(official_xml: Path) -> None:
    data = official_xml.read_bytes()[:6000] + b"\n</registry>\n"

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, len(data)), st.binary(max_size=8), st.integers(0, 30))
    def check(at: int, insert: bytes, cut: int) -> None:
        with contextlib.suppress(RegistryError):
            parse_iana_xml(data[:at] + insert + data[at + cut :], "mutated.xml")

    check()


def test_unknown_encoding_is_a_registry_error() -> None:
    """Found by the fuzz pass: an XML declaration naming an encoding Python lacks."""
    data = b'<?xml version="1.0" encoding="U-TF-8"?>\n<registry/>'
    with pytest.raises(RegistryError, match="unreadable XML"):
        parse_iana_xml(data, "x.xml")
