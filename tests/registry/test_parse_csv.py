"""IANA CSV parser: the official file, the format's corners, truncation and fuzzing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.errors import RegistryError
from portsniff.registry.parse_csv import normalise, parse_iana_csv, write_iana_csv
from portsniff.registry.record import IANA_HEADER, ServiceRecord
from tests.registry._helpers import parsed

HEADER = ",".join(IANA_HEADER).encode() + b"\r\n"


def test_official_csv(official_csv: Path) -> None:
    reg = parsed(official_csv)
    data = official_csv.read_bytes()
    assert reg.source.kind == "iana-csv"
    assert reg.source.records == len(reg.records) == 14499
    assert reg.source.updated == "2026-02-13"  # the newest date in the file
    assert reg.source.sha256 == hashlib.sha256(data).hexdigest()
    assert reg.caveat is None
    first = reg.records[0]
    assert (first.port_number, first.transport_protocol, first.description) == (
        "0",
        "tcp",
        "Reserved",
    )
    assert all(r.description == normalise(r.description) for r in reg.records)


def test_quoted_multiline_bom_and_month_dates() -> None:
    data = (
        b"\xef\xbb\xbf"
        + HEADER
        + b'whoispp,63,tcp,"whois++\n\nIANA assigned   this",[A],[A],2004-11,,,,,\r\n'
        + b",100,udp,Reserved,,,,2024-12-20,[RFC6335],,,\r\n"
    )
    reg = parse_iana_csv(data, "x.csv")
    assert reg.records[0].description == "whois++ IANA assigned this"
    assert reg.records[0].registration_date == "2004-11"
    assert reg.records[1] == ServiceRecord(
        "", "100", "udp", "Reserved", "", "", "", "2024-12-20", "[RFC6335]", "", "", ""
    )
    assert reg.source.updated == "2024-12-20"


def test_columns_found_by_name() -> None:
    names = list(IANA_HEADER)
    names[0], names[1] = names[1], names[0]
    data = ",".join(names).encode() + b"\r\n80,http,tcp,WWW,,,,,,,,\r\n"
    assert parse_iana_csv(data, "x.csv").records[0].service_name == "http"


def test_missing_header_is_named() -> None:
    data = b"Service Name,Port Number,Description\r\nhttp,80,WWW\r\n"
    with pytest.raises(RegistryError, match=r"x\.csv: line 1: .*'Transport Protocol'"):
        parse_iana_csv(data, "x.csv")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'http,80,tcp,"World Wide\n', "line 2"),  # unterminated quote
        (b"http,80,tcp,WWW,,,,,,,,", "line 2"),  # no line end after the last record
        (b"http,80,tcp,WWW,,,,\r\n", "line 2"),  # too few fields
        (b"http,80,tcp,WWW,,,,,,,,\r\nbad,99999,tcp,x,,,,,,,,\r\n", "line 3"),
        (b"http,80,xyz,WWW,,,,,,,,\r\n", "line 2"),
        (b"http,80,tcp,WWW,,,yesterday,,,,,\r\n", "line 2"),
    ],
)
def test_damage_names_file_and_line(body: bytes, where: str) -> None:
    with pytest.raises(RegistryError, match=rf"x\.csv: {where}"):
        parse_iana_csv(HEADER + body, "x.csv")


def test_truncated_official_csv_is_rejected(official_csv: Path) -> None:
    data = official_csv.read_bytes()
    with pytest.raises(RegistryError, match="truncated"):
        parse_iana_csv(data[: len(data) // 2], str(official_csv))


def test_header_only_is_rejected() -> None:
    with pytest.raises(RegistryError, match="no registry records"):
        parse_iana_csv(HEADER, "x.csv")


def test_write_round_trip(official_csv: Path) -> None:
    records = parsed(official_csv).records[:300]
    again = parse_iana_csv(write_iana_csv(records), "again.csv").records
    assert again == records


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    for blob in (data, HEADER + data):
        try:
            reg = parse_iana_csv(blob, "fuzz.csv")
        except RegistryError:
            continue
        assert reg.records


def test_mutated_real_data(official_csv: Path) -> None:
    data = official_csv.read_bytes()[:4000]

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, len(data)), st.binary(max_size=8), st.integers(0, 30))
    def check(at: int, insert: bytes, cut: int) -> None:
        blob = data[:at] + insert + data[at + cut :]
        try:
            reg = parse_iana_csv(blob, "mutated.csv")
        except RegistryError:
            return
        assert reg.records

    check()
