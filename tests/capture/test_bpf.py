"""BPF filters through libpcap: counts equal tcpdump's, errors are FilterError."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from portsniff.capture import bpf
from portsniff.capture.bpf import compile_filter
from portsniff.capture.reader import open_capture
from portsniff.capture.writer import PcapngWriter
from portsniff.errors import EngineUnavailable, FilterError

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("pcap") is None, reason="libpcap is not installed"
)

UDP_DNS = bytes.fromhex(
    "ffffffffffff00010203040508004500001c000100004011000001020304050607080035003500080000"
)
TCP_80 = bytes.fromhex(
    "ffffffffffff000102030405080045000028000100004006000001020304050607080400005000000000"
    "000000005002200000000000"
)


def count(path: Path, expression: str) -> int:
    with open_capture(str(path)) as reader:
        flt = compile_filter(expression, reader.interfaces[0].linktype)
        with flt:
            return sum(int(flt.mask(block).sum()) for block in reader.blocks())


def tcpdump_count(path: Path, expression: str) -> int:
    out = subprocess.run(
        ["tcpdump", "-nn", "-r", str(path), expression],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return len(out.splitlines())


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.parametrize(
    ("name", "expression"),
    [
        ("pcapplusplus__DnsPackets.pcap", "udp port 53"),
        ("pcapplusplus__DnsPackets.pcap", "udp and not port 53"),
        ("pcapplusplus__raw_ip.pcap", "udp port 53"),  # LINKTYPE_RAW 101 is DLT_RAW 12
        ("zeek__linux_dlt_sll2.pcap", "icmp"),
        ("pcapplusplus__null_loopback.pcap", "udp"),
        ("zeek__vlan-qinqinq.pcap", "vlan and vlan and vlan"),
        ("zeek__wikipedia.pcap", "tcp port 80"),
    ],
)
def test_counts_equal_tcpdump(shared_captures: Path, name: str, expression: str) -> None:
    path = shared_captures / name
    expected = tcpdump_count(path, expression)
    assert expected > 0
    assert count(path, expression) == expected


def test_bad_expression_is_filter_error() -> None:
    with pytest.raises(FilterError, match=r"^bad filter 'tcp port foo': .*foo"):
        compile_filter("tcp port foo", 1)
    with pytest.raises(FilterError, match="bad filter 'udp and': "):
        compile_filter("udp and", 1)


def test_matches_one_packet() -> None:
    with compile_filter("udp port 53", 1) as flt:
        assert flt.matches(UDP_DNS, len(UDP_DNS), len(UDP_DNS))
        assert not flt.matches(TCP_80, len(TCP_80), len(TCP_80))
        # Cut before the UDP header: the filter cannot see the port.
        assert not flt.matches(UDP_DNS, 20, len(UDP_DNS))


def test_mask_with_mixed_link_types(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcapng"
    with path.open("wb") as f:
        w = PcapngWriter(f)
        eth = w.add_interface(1, 65535)
        raw = w.add_interface(101, 65535)
        for i, (iface, data) in enumerate(
            [
                (eth, UDP_DNS),
                (raw, UDP_DNS[14:]),
                (eth, TCP_80),
                (raw, TCP_80[14:]),
                (raw, UDP_DNS[14:]),
            ]
        ):
            w.write_packet(iface, i, len(data), data)
        w.close()
    with open_capture(str(path)) as reader, compile_filter("udp port 53", 1) as flt:
        masks = [flt.mask(block) for block in reader.blocks()]
    assert np.concatenate(masks).tolist() == [True, True, False, False, True]


def test_link_type_that_cannot_take_the_filter(tmp_path: Path) -> None:
    with (
        compile_filter("ether host 01:02:03:04:05:06", 1) as flt,
        pytest.raises(FilterError, match="for link type 101"),
    ):
        flt.matches(UDP_DNS[14:], 28, 28, linktype=101)


def test_closed_filter_frees_programs() -> None:
    flt = compile_filter("udp", 1)
    flt.close()
    flt.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        flt.matches(UDP_DNS, len(UDP_DNS), len(UDP_DNS))


def test_missing_libpcap_is_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str, *args: object, **kwargs: object) -> ctypes.CDLL:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(bpf, "_LIB", None)
    monkeypatch.setattr(bpf.ctypes, "CDLL", no_library)
    with pytest.raises(EngineUnavailable, match=r"apt-get install libpcap0\.8"):
        compile_filter("udp", 1)
