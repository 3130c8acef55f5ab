"""services(5) files: /etc/services and Wireshark's services."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.errors import RegistryError
from portsniff.registry.index import RegistryIndex
from portsniff.registry.parse_services import alias_note, parse_services

ETC = b"""# Network services, Internet style
#
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
discard\t\t9/tcp\t\tsink null
discard\t\t9/udp\t\tsink null
rtmp\t\t1/ddp\t\t\t# Routing Table Maintenance Protocol

x11\t\t6000/tcp\tx11-0\t\t# X Window System
"""
WIRESHARK = b"""# This is a local copy of the IANA port-numbers file.
#
# Wireshark uses it to resolve port numbers into human readable
# service names, e.g. TCP port 80 -> http.
#
discard\t\t9/tcp/udp/sctp/dccp\t# Discard
x11\t\t6000-6063/tcp/udp\t# X Window System
"""


def test_etc_services_with_aliases() -> None:
    reg = parse_services(ETC, "/etc/services")
    assert reg.source.kind == "services"
    got = [
        (r.service_name, r.port_number, r.transport_protocol, r.assignment_notes)
        for r in reg.records
    ]
    assert ("tcpmux", "1", "tcp", "") in got
    assert ("sink", "9", "udp", alias_note("discard")) in got
    assert ("null", "9", "tcp", alias_note("discard")) in got
    assert not any(r.service_name == "rtmp" for r in reg.records)  # AppleTalk has no IP port
    assert reg.records[0].description == "TCP port service multiplexer"
    label = RegistryIndex.build([reg]).lookup("tcp", 9)
    assert (label.service, label.aliases) == ("discard", ("sink", "null"))
    assert label.source == "services:/etc/services"


def test_wireshark_services() -> None:
    reg = parse_services(WIRESHARK, "ws/services")
    assert reg.source.kind == "wireshark-services"
    assert [r.transport_protocol for r in reg.records if r.service_name == "discard"] == [
        "tcp", "udp", "sctp", "dccp",
    ]  # fmt: skip
    x11 = [r for r in reg.records if r.service_name == "x11"]
    assert {r.port_number for r in x11} == {"6000-6063"}
    assert RegistryIndex.build([reg]).lookup("udp", 6010).service == "x11"


def test_installed_files() -> None:
    for path, kind in (
        (Path("/etc/services"), "services"),
        (Path("/usr/share/wireshark/services"), "wireshark-services"),
    ):
        if not path.exists():
            continue
        reg = parse_services(path.read_bytes(), str(path))
        assert reg.source.kind == kind
        assert any(r.service_name == "ssh" and r.port_number == "22" for r in reg.records)  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [(b"lonely\n", "line 2: expected 'name port/protocol'"), (b"http www/tcp\n", "line 2: expected port/protocol"), (b"big 70000/tcp\n", "line 2: bad port")],
)  # fmt: skip
def test_damage(line: bytes, message: str) -> None:
    with pytest.raises(RegistryError, match=rf"^s: {message}"):
        parse_services(b"ok 1/tcp\n" + line, "s")


def test_only_comments_is_rejected() -> None:
    with pytest.raises(RegistryError, match="no registry records"):
        parse_services(b"# nothing\n", "s")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    for blob in (data, WIRESHARK + data):
        try:
            reg = parse_services(blob, "fuzz")
        except RegistryError:
            continue
        assert reg.records


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab1-/# \tctpudps\n", max_size=80))
def test_arbitrary_lines(text: str) -> None:
    with contextlib.suppress(RegistryError):
        parse_services(text.encode(), "fuzz")
