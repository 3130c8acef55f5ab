"""Choosing the parser by content, and file-level errors."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.errors import RegistryError
from portsniff.registry.load import load_registry_file, parse_registry_bytes, sniff_kind
from portsniff.registry.record import IANA_HEADER

CSV = ",".join(IANA_HEADER).encode() + b"\r\nhttp,80,tcp,WWW,,,,,,,,\r\n"


def test_sniff_official_files(official_xml: Path, official_csv: Path, seed_excerpt: Path) -> None:
    assert sniff_kind(official_xml.read_bytes()) == "iana-xml"
    assert sniff_kind(official_csv.read_bytes()) == "iana-csv"
    assert sniff_kind(seed_excerpt.read_bytes()) == "iana-text"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"<!DOCTYPE html><html><body>IANA</body></html>", "html"),
        (b"<?xml version='1.0'?><feed/>", "unknown"),
        (b"\xef\xbb\xbf" + CSV, "iana-csv"),
        (b"http 80/tcp www\n", "services"),
        (b"# Wireshark uses it\nhttp 80/tcp/udp # WWW\n", "wireshark-services"),
        (b"hello world\n", "unknown"),
    ],
)
def test_sniff_kind(data: bytes, kind: str) -> None:
    assert sniff_kind(data) == kind


def test_parser_chosen_by_content_not_name(tmp_path: Path, official_xml: Path) -> None:
    misnamed = tmp_path / "registry.csv"
    misnamed.write_bytes(official_xml.read_bytes())
    assert load_registry_file(misnamed).source.kind == "iana-xml"
    other = tmp_path / "registry.xml"
    other.write_bytes(CSV)
    reg = load_registry_file(other)
    assert (reg.source.kind, reg.source.path) == ("iana-csv", str(other))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such registry file"),
        ("dir", "is a directory"),
        (b"", "empty file"),
        (b"<html><head></head></html>", "an HTML page"),
        (b"\x00\x01binary", "unknown registry format"),
    ],
)
def test_file_errors_name_the_file(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "reg"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(RegistryError, match=rf"^{re.escape(str(path))}: {message}"):
        load_registry_file(path)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(sniff_kind(data), str)
    with contextlib.suppress(RegistryError):
        parse_registry_bytes(data, "fuzz")
