"""Interfaces of this namespace, their link types, and the capture permission check."""

from __future__ import annotations

import struct

import pytest

from portsniff.live import interfaces as ifs

STATUS_ROOT = "Name:\tx\nCapEff:\t000001ffffffffff\n"
STATUS_NONE = "Name:\tx\nCapEff:\t0000000000000000\n"
STATUS_RAW = f"Name:\tx\nCapEff:\t{1 << ifs.CAP_NET_RAW:016x}\n"


def test_lo_is_listed_up_with_its_address() -> None:
    assert "lo" in ifs.interface_names()
    assert ifs.exists("lo") and ifs.exists("any")
    assert ifs.is_up("lo") is True
    (lo,) = [i for i in ifs.list_interfaces() if i.name == "lo"]
    assert lo.loopback and lo.up and lo.linktype == 1
    assert "127.0.0.1/8" in lo.addresses


def test_unknown_interfaces() -> None:
    assert not ifs.exists("nosuchif0")
    assert ifs.is_up("nosuchif0") is None
    assert not ifs.exists("x" * 40)  # longer than IFNAMSIZ
    assert not ifs.exists("")


def test_fallback_addresses_match_iproute2() -> None:
    via_ip = ifs._addresses_ip()
    if via_ip is None:
        pytest.skip("iproute2's ip is not installed")
    fallback = ifs._addresses_fallback(["lo"])
    assert set(fallback["lo"]) == set(via_ip["lo"])


def test_linktypes() -> None:
    assert ifs.linktype_of("any") == ifs.LINKTYPE_LINUX_SLL
    assert ifs.linktype_of("nosuchif0") == 1  # unknown: compile as Ethernet


def test_effective_caps_from_status() -> None:
    assert ifs.effective_caps(STATUS_RAW) == 1 << ifs.CAP_NET_RAW
    assert ifs.effective_caps("garbage") == 0
    assert ifs.effective_caps("CapEff:\tzz\n") == 0


def test_permission_from_caps() -> None:
    assert ifs.capture_permission(None, STATUS_ROOT).permitted
    denied = ifs.capture_permission(None, STATUS_NONE)
    assert not denied.permitted and "CAP_NET_RAW" in denied.reason


def test_file_caps_parse() -> None:
    raw_bit = 1 << ifs.CAP_NET_RAW
    v2 = struct.pack("<IIIII", 0x02000001, raw_bit, 0, 0, 0)
    assert ifs.parse_file_caps(v2) >> ifs.CAP_NET_RAW & 1
    v3 = struct.pack("<IIIIII", 0x03000001, 0, 0, 1, 0, 0)
    assert ifs.parse_file_caps(v3) == 1 << 32
    assert ifs.parse_file_caps(b"\x00") == 0
    assert ifs.file_caps("/nonexistent/tcpdump") == 0
