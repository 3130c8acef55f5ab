"""The scapy engine: the same batches as the reference decoder, packet for packet."""

from __future__ import annotations

import builtins
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsniff.capture.reader import open_capture
from portsniff.decode import scapy_engine
from portsniff.decode.engines import open_engine
from portsniff.decode.fast import batch_differences, block_from_packets, reference_batch
from portsniff.decode.packet import Endpoints
from portsniff.decode.scapy_engine import ScapyEngine
from portsniff.errors import EngineUnavailable, PortsniffError

ETH = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb"


def _ipv4(proto: int, payload: bytes, *, src: bytes = b"\x0a\x00\x00\x01", frag: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 7, frag, 64, proto, 0, src, b"\x0a\x00\x00\x02"
    )
    return header + payload


def _udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _eth(etype: int, payload: bytes) -> bytes:
    return ETH + struct.pack("!H", etype) + payload


def _assert_same(block: Any) -> None:
    got = ScapyEngine("<memory>").decode(block)
    assert batch_differences(got, reference_batch(block)) == []


def test_shared_captures_equal_reference(shared_captures: Path) -> None:
    """Every readable real capture: all columns, details and comments equal the reference."""
    checked = 0
    failures: list[str] = []
    for path in sorted(shared_captures.iterdir()):
        if path.suffix in (".md", ".tsv"):
            continue
        try:
            reader = open_capture(str(path))
        except PortsniffError:
            continue  # the two unreadable files: the reader's tests cover them
        engine = open_engine("scapy", str(path))
        with reader:
            for block in reader.blocks():
                diff = batch_differences(engine.decode(block), reference_batch(block), 3)
                failures.extend(f"{path.name}: {line}" for line in diff)
                checked += len(block)
        engine.close()
    assert checked > 10_000
    assert failures == []


def test_tunnels_quotes_fragments_vlan_in_memory() -> None:
    vxlan = b"\x08\x00\x00\x00\x00\x00\x64\x00" + _eth(0x0800, _ipv4(17, _udp(1234, 53)))
    quoted = _ipv4(17, _udp(5353, 53))
    icmp_error = b"\x03\x03\x00\x00\x00\x00\x00\x00" + quoted
    packets = [
        _eth(0x0800, _ipv4(17, _udp(40000, 4789, vxlan))),
        _eth(0x0800, _ipv4(1, icmp_error)),
        _eth(0x0800, _ipv4(17, _udp(1, 2, b"x" * 16), frag=0x2000)),
        _eth(0x0800, _ipv4(17, b"y" * 16, frag=3)),
        _eth(0x8100, b"\x00\x2a\x08\x00" + _ipv4(6, b"\x00\x50\x01\xbb" + bytes(16))),
        _eth(0x0800, _ipv4(33, b"\x13\x89\x00\x50" + bytes(12))),  # DCCP: scapy has no layer
        _eth(0x0800, _ipv4(4, _ipv4(17, _udp(7, 9)))),  # IP-in-IP
        _eth(0x0800, _ipv4(17, b"\x00")),  # truncated UDP
        _eth(0x0806, bytes(28)),
        b"\x00\x01",  # truncated Ethernet
    ]
    block = block_from_packets(packets)
    _assert_same(block)
    batch = ScapyEngine("<memory>").decode(block)
    vxlan, ipip = batch.detail(0), batch.detail(6)
    assert vxlan is not None and ipip is not None and 0 not in batch.details  # in columns
    assert vxlan.inner[0] == Endpoints("udp", "10.0.0.1", "10.0.0.2", 1234, 53, "vxlan")
    quote = batch.details[1].quoted
    assert quote is not None and (quote.src_port, quote.dst_port) == (5353, 53)
    assert 4 not in batch.details and batch.vlan(4) == (42,)  # one tag: a column
    assert (int(batch.src_port[5]), int(batch.dst_port[5])) == (5001, 80)
    assert ipip.inner[0].tunnel == "ipip"


def test_dnssd_names_from_scapy_dns() -> None:
    name = b"\x07Kitchen\x08_airplay\x04_tcp\x05local\x00"
    message = (
        struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0)
        + name
        + struct.pack("!HHIH", 12, 1, 120, 2)
        + b"\xc0\x0c"
    )
    block = block_from_packets([_eth(0x0800, _ipv4(17, _udp(5353, 5353, message)))])
    _assert_same(block)
    d = ScapyEngine("<memory>").decode(block).details[0]
    assert d.dnssd == ("_airplay._tcp",)
    assert d.dnssd_instances == ("Kitchen._airplay._tcp.local",)


LINKTYPES = [0, 1, 101, 108, 113, 127, 192, 228, 229, 239, 258, 276, 105, 9, 104, 147]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    linktype=st.sampled_from(LINKTYPES),
    data=st.binary(max_size=120),
    prefix=st.sampled_from([b"", _eth(0x0800, b""), _eth(0x86DD, b""), b"\x02\x00\x00\x00"]),
)
def test_arbitrary_bytes_decode_like_the_reference(
    linktype: int, data: bytes, prefix: bytes
) -> None:
    """Any bytes: a batch (never an exception), equal to the reference's."""
    _assert_same(block_from_packets([prefix + data], linktype))


def test_missing_scapy_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_scapy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("scapy"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(scapy_engine, "_SCAPY", None)
    monkeypatch.setattr(builtins, "__import__", no_scapy)
    with pytest.raises(EngineUnavailable, match=r"pip install 'scapy"):
        ScapyEngine("x.pcap")


def test_engine_protocol() -> None:
    engine = open_engine("scapy", "x.pcap")
    assert engine.name == "scapy"
    assert len(engine.decode(block_from_packets([]))) == 0
    engine.close()


@pytest.mark.parametrize(
    "data",
    [b"\x02\x00\x00\x00\x01\x00L\xfb", b"\x00\x00\x08\x00\x01\x00L\xfb"],
    ids=["radiotap-version-2", "radiotap-present-bits-beyond-header"],
)
def test_odd_radiotap_headers_decode_like_the_reference(data: bytes) -> None:
    """Found by hypothesis: scapy's RadioTap raised on these 8-byte headers."""
    from portsniff.decode.reference import decode_packet
    from portsniff.decode.scapy_engine import decode_frame

    assert decode_frame(127, data) == decode_packet(127, data)
