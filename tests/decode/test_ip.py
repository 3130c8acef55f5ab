"""Address texts of the reference decoder."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from portsniff.decode.ip import ipv4_text, ipv6_text

# Words drawn so that zero runs of every length and place are common.
_WORD = st.one_of(
    st.just(0), st.just(0), st.sampled_from([1, 0x10, 0xFFFF]), st.integers(0, 0xFFFF)
)


@given(st.lists(_WORD, min_size=8, max_size=8))
def test_ipv6_text_is_ipaddress_text(words: list[int]) -> None:
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    assert ipv6_text.__wrapped__(raw) == str(ipaddress.IPv6Address(raw))


@given(st.binary(min_size=16, max_size=16))
def test_ipv6_text_of_any_bytes(raw: bytes) -> None:
    assert ipv6_text.__wrapped__(raw) == str(ipaddress.IPv6Address(raw))


def test_ipv6_text_edges() -> None:
    cases = {
        bytes(16): "::",
        bytes(15) + b"\x01": "::1",
        b"\x00\x01" + bytes(14): "1::",
        bytes.fromhex("20010db8000000010000000000000001"): "2001:db8:0:1::1",
        bytes.fromhex("20010db8000000000001000000000001"): "2001:db8::1:0:0:1",
        bytes.fromhex("fe80000000000000021122fffe334455"): "fe80::211:22ff:fe33:4455",
    }
    for raw, text in cases.items():
        assert ipv6_text(raw) == text == str(ipaddress.IPv6Address(raw))
    mapped = bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 1])
    assert ipv6_text(mapped) == str(ipaddress.IPv6Address(mapped))


def test_ipv4_text() -> None:
    assert ipv4_text(bytes([192, 0, 2, 255])) == "192.0.2.255"
