"""IANA's page rendered as a text table: header block, collapsed cells, split rows."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.caveat import CAVEAT
from portsniff.errors import RegistryError
from portsniff.registry.parse_text import extract_caveat, parse_iana_text
from portsniff.registry.record import IANA_HEADER, ServiceRecord
from tests.registry._helpers import parsed

TABLE = "| " + " | ".join(IANA_HEADER) + " |\n|" + "---|" * len(IANA_HEADER) + "\n"


def table(*rows: str) -> bytes:
    return ("Title\n- Last Updated\n- 2026-03-27\n" + TABLE + "\n".join(rows) + "\n").encode()


def collapsed(*cells: str) -> str:
    """A row as the renderer writes it: non-empty cells first, then empty padding."""
    full = [c for c in cells if c] + [""] * (len(IANA_HEADER) - len([c for c in cells if c]))
    return "| " + " | ".join(full) + " |"


def test_excerpt_header(seed_excerpt: Path) -> None:
    reg = parsed(seed_excerpt)
    assert reg.source.kind == "iana-text"
    assert reg.source.updated == "2026-03-27"
    assert reg.source.records == len(reg.records) == 101
    assert reg.caveat is not None and reg.caveat.startswith(CAVEAT)
    assert "*" not in reg.caveat and "PLEASE NOTE" not in reg.caveat


def test_excerpt_rows_equal_official_records(
    seed_excerpt: Path, official_xml: Path, official_csv: Path
) -> None:
    official = parsed(official_xml).records + parsed(official_csv).records
    by_key: dict[tuple[str, str, str, str], list[ServiceRecord]] = {}
    for r in official:
        key = (r.service_name, r.port_number, r.transport_protocol, r.description)
        by_key.setdefault(key, []).append(r)
    exact = 0
    for row in parsed(seed_excerpt).records:
        matches = by_key[
            (row.service_name, row.port_number, row.transport_protocol, row.description)
        ]
        if row in matches:
            exact += 1
            continue
        # The rendering drops empty cells, so a row with one date cannot say whether it
        # was the registration or the modification date: only that may differ.
        dates = {row.registration_date, row.modification_date} - {""}
        assert len(dates) == 1, row
        moved = replace(
            row, registration_date=row.modification_date, modification_date=row.registration_date
        )
        assert moved in matches, row
    assert exact >= 90  # the rest are the lone-date rows checked above


def test_cells_matched_by_content() -> None:
    reg = parse_iana_text(
        table(
            collapsed("", "45001", "udp", "Reserved"),
            collapsed("udp", "", "", "User Datagram Protocol"),
            collapsed("dist-opencl", "", "", "Distributed OpenCL", "[W_D]", "[W_D]", "2013-04-10", "", "", "", "", "Defined TXT keys: None"),
            collapsed("core-rd", "", "udp", "Resource Directory", "[IESG]", "[IETF_Chair]", "2021-03-16", "", "[RFC9176]", "", "", "Defined TXT keys: None"),
            collapsed("", "788-799", "", "Unassigned", "", "", "", "", "", "", "Unauthorized Use Known on port 796", ""),
            collapsed("x", "6000-6063", "tcp", "X", "[A]", "[B]", "2001-01", "2002-02-02", "", "", "Known Unauthorized Use on port 6003", "note"),
            collapsed("", "2", "tcp", "Reserved", "", "", "", "2025-02-13", "", "", "", "De-assigned on 2025-02-13"),
            collapsed("discard", "9", "dccp", "Discard", "[E_K]", "[E_K]", "", "", "[RFC4340]", "1145656131", "", ""),
            collapsed("example", "", "", "Example Service Type", "", "", "", "", "", "", "", "Not a real service type."),
        ),
        "x.txt",
    )  # fmt: skip
    got = [tuple(r.as_dict().values()) for r in reg.records]
    assert got == [
        ("", "45001", "udp", "Reserved", "", "", "", "", "", "", "", ""),
        ("udp", "", "", "User Datagram Protocol", "", "", "", "", "", "", "", ""),
        ("dist-opencl", "", "", "Distributed OpenCL", "[W_D]", "[W_D]", "2013-04-10", "", "", "", "", "Defined TXT keys: None"),
        ("core-rd", "", "udp", "Resource Directory", "[IESG]", "[IETF_Chair]", "2021-03-16", "", "[RFC9176]", "", "", "Defined TXT keys: None"),
        ("", "788-799", "", "Unassigned", "", "", "", "", "", "", "Unauthorized Use Known on port 796", ""),
        ("x", "6000-6063", "tcp", "X", "[A]", "[B]", "2001-01", "2002-02-02", "", "", "Known Unauthorized Use on port 6003", "note"),
        ("", "2", "tcp", "Reserved", "", "", "", "2025-02-13", "", "", "", "De-assigned on 2025-02-13"),
        ("discard", "9", "dccp", "Discard", "[E_K]", "[E_K]", "", "", "[RFC4340]", "1145656131", "", ""),
        ("example", "", "", "Example Service Type", "", "", "", "", "", "", "", "Not a real service type."),
    ]  # fmt: skip


def test_split_rows_pipes_in_cells_and_positional_tables() -> None:
    row = collapsed(
        "iax",
        "4569",
        "udp",
        "Inter-Asterisk",
        "[B]",
        "[B]",
        "",
        "",
        "[RFC5456]",
        "",
        "",
        "keys: auth plaintext | md5 | rsa",
    )
    split = row.replace(" [B] | [B]", "\n[B] | [B]")
    positional = "| http | 80 | tcp | WWW | [T] | [T] |  | 2020-01-01 |  |  |  | a note |"
    reg = parse_iana_text(table(split, positional), "x.txt")  # fmt: skip
    assert reg.records[0].assignment_notes == "keys: auth plaintext | md5 | rsa"
    assert reg.records[0].assignee == "[B]"
    assert reg.records[1].modification_date == "2020-01-01"
    assert reg.records[1].registration_date == ""
    assert reg.records[1].assignment_notes == "a note"


def test_last_row_cut_after_a_cell_keeps_its_cells() -> None:
    data = table(collapsed("a", "1", "tcp", "A")) + b"| b | udp | B | [P] | [P] | keys: None |"
    reg = parse_iana_text(data, "x.txt")
    assert reg.records[-1] == ServiceRecord(
        "b", "", "udp", "B", "[P]", "[P]", "", "", "", "", "", "keys: None"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (table(collapsed("a", "1", "tcp", "A")) + b"| b | udp | B | [P] | [P", "truncated"),
        (table("| a | 1 | tcp |", collapsed("b", "2", "tcp", "B")), "line 6: row has"),
        (b"no table here\n", "no '| Service Name"),
        (b"| Service Name | Port Number |\n", "no 'Transport Protocol' column"),
        (table(collapsed("a b c", "tcp", "x y")), "cannot match"),
        (table(collapsed("a", "99999", "tcp", "A")), "bad port"),
        (table(), "no registry records"),
    ],
)
def test_damage(data: bytes, message: str) -> None:
    with pytest.raises(RegistryError, match=rf"^x\.txt: .*{message}"):
        parse_iana_text(data, "x.txt")


def test_extract_caveat() -> None:
    box = "* PLEASE NOTE THE FOLLOWING: *\n* ASSIGNMENT   OF A PORT *\n* NUMBER. *\n**********\n"
    assert extract_caveat("x\n" + box) == "ASSIGNMENT OF A PORT NUMBER."
    assert extract_caveat("nothing") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    for blob in (data, table() + data):
        try:
            reg = parse_iana_text(blob, "fuzz.txt")
        except RegistryError:
            continue
        assert reg.records


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "b-c",
                "80",
                "6000-6063",
                "tcp",
                "udp",
                "[P]",
                "[RFC1]",
                "2020-01-01",
                "free text",
                "",
                "|",
                "\n",
            ]
        ),
        max_size=16,
    )
)
def test_arbitrary_rows(cells: list[str]) -> None:
    with contextlib.suppress(RegistryError):
        parse_iana_text(table("| " + " | ".join(cells) + " |"), "fuzz.txt")


def test_mutated_real_data(seed_excerpt: Path) -> None:
    data = seed_excerpt.read_bytes()

    @settings(max_examples=100, deadline=None)
    @given(st.integers(0, len(data)), st.binary(max_size=8), st.integers(0, 30))
    def check(at: int, insert: bytes, cut: int) -> None:
        with contextlib.suppress(RegistryError):
            parse_iana_text(data[:at] + insert + data[at + cut :], "mutated.txt")

    check()
