"""The pyshark engine (tshark's dissectors) against the reference decoder.

tshark cannot give the project's ``problem`` texts, so problems are left out of the
comparison (every other column and detail is compared). The remaining differences are
named one by one in ``KNOWN_DIFFERENCES`` with the reason; any other difference fails.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from pathlib import Path

import pytest

from portsniff.capture.reader import open_capture
from portsniff.decode import pyshark_engine
from portsniff.decode.batch import DecodedBatch
from portsniff.decode.engines import open_engine
from portsniff.decode.fast import batch_differences, reference_batch
from portsniff.decode.pyshark_engine import PysharkEngine
from portsniff.errors import EngineUnavailable, UsageError

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

# pyshark runs at ~100-300 packets/s here (tshark start-up dominates small files), so the
# comparison uses a subset of the real captures that covers every feature the rules
# name (link types, VLAN/QinQ, MPLS, fragments, tunnels, ICMP quotes, IPv6 extension
# headers, SCTP/DCCP, DNS-SD, truncation) and leaves out the big plain-traffic files
# (many-protocols 4709 packets, bacnet_example 3257, cipdip 1913, ...).
SUBSET = (
    "pcapplusplus__null_loopback.pcap",
    "pcapplusplus__raw_ip.pcap",
    "tcpdump__LINKTYPE_IPV4.pcap",
    "tcpdump__LINKTYPE_IPV6.pcap",
    "pcapplusplus__SllPacket.pcap",
    "zeek__linux_dlt_sll2.pcap",
    "tcpdump__nflog.pcap",
    "tcpdump__LINKTYPE_PKTAP.pcap",
    "libpcap__http_PPI.pcap",
    "zeek__radiotap.pcap",
    "zeek__wlanmon.pcap",
    "tcpdump__vsock-1.pcapng",
    "tcpdump__unsupported-link-type-160.pcap",
    "tcpdump__timestamp_invalid_nano.pcap",
    "gopacket__le_test102.pcapng",
    "zeek__trunc_trunc-hdr.pcap",
    "zeek__trunc_ip4-trunc.pcap",
    "tcpdump__tcp_rst_data-trunc.pcap",
    "tcpdump__udp-length-heapoverflow.pcap",
    "zeek__vlan-qinqinq.pcap",
    "pcapplusplus__QinQ_802.1_AD.pcapng",
    "zeek__mixed-vlan-mpls.pcap",
    "tcpdump__vxlan.pcap",
    "tcpdump__geneve.pcap",
    "zeek__tunnels_Teredo.pcap",
    "zeek__tunnels_6in4.pcap",
    "tcpdump__pptp.pcap",
    "pcapplusplus__ip4_fragments.pcap",
    "pcapplusplus__ip6_fragments.pcap",
    "zeek__ipv6-fragmented-dns.pcap",
    "zeek__icmp_icmp-destunreach-udp.pcap",
    "zeek__icmp_icmp6-destunreach-ip6ext-udp.pcap",
    "libpcap__ipv6_ext_headers.pcap",
    "tcpdump__dccp_partial_csum_v4_longer.pcap",
    "zeek__communityid_sctp.pcap",
    "tcpdump__dns_tcp.pcap",
    "zeek__dns_mdns.pcap",
    "testing_tools__mdns.pcap",
    "pcapplusplus__DnsPackets.pcap",
)

#: file -> (rows that differ, or None for "from the first differing row on", why).
KNOWN_DIFFERENCES: dict[str, tuple[frozenset[int] | None, str]] = {
    "gopacket__le_test102.pcapng": (
        None,
        "pyshark 0.6 raises KeyError on the frame tshark shows for a pcapng custom block "
        "(it has no frame.time_epoch) and its frame generator ends there",
    ),
}


def _without_problems(batch: DecodedBatch) -> DecodedBatch:
    """``batch`` with every ``problem`` dropped (details kept only if still needed)."""
    for i, d in list(batch.details.items()):
        d = dataclasses.replace(d, problem=None)
        if d.vlan or d.fragment or d.inner or d.quoted or d.dnssd or d.dnssd_instances:
            del batch.details[i]
            batch.set_decoded(i, d)  # (an IP tunnel goes to the columns)
        else:
            del batch.details[i]
    return batch


def _differing_rows(lines: list[str]) -> set[int]:
    return {int(line.split()[1]) for line in lines if line.startswith("row ")}


def _compare(path: Path) -> list[str]:
    engine = PysharkEngine(str(path))
    out: list[str] = []
    try:
        with open_capture(str(path)) as reader:
            for block in reader.blocks():
                got = _without_problems(engine.decode(block))
                want = _without_problems(reference_batch(block))
                out.extend(batch_differences(got, want, limit=10_000))
    finally:
        engine.close()
    return out


@pytest.mark.slow
def test_subset_equals_reference_except_named_differences(shared_captures: Path) -> None:
    unexpected: list[str] = []
    for name in SUBSET:
        diff = _compare(shared_captures / name)
        known = KNOWN_DIFFERENCES.get(name)
        if known is None:
            unexpected.extend(f"{name}: {line}" for line in diff[:5])
            continue
        rows, why = known
        assert diff, f"{name}: the named difference is gone ({why}): update KNOWN_DIFFERENCES"
        if rows is not None:
            extra = _differing_rows(diff) - rows
            unexpected.extend(f"{name}: unexpected row {i}" for i in sorted(extra))
    assert unexpected == []


def test_known_differences_are_in_the_subset() -> None:
    assert set(KNOWN_DIFFERENCES) <= set(SUBSET)


def _tshark_children() -> list[str]:
    """Live tshark/dumpcap processes whose parent is this test process."""
    found = []
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path("/proc", pid, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == me and fields.get("Name", "").strip() in (
            "tshark",
            "dumpcap",
        ):
            found.append(pid)
    return found


def test_close_leaves_no_tshark_and_no_warnings(shared_captures: Path) -> None:
    path = shared_captures / "tcpdump__vxlan.pcap"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = open_engine("pyshark", str(path))
        with open_capture(str(path)) as reader:
            batch = engine.decode(next(reader.blocks()))
        engine.close()
        engine.close()  # closing twice is harmless
    assert len(batch) == 10
    d = batch.detail(0)
    assert d is not None and d.inner[0].tunnel == "vxlan"
    assert _tshark_children() == []
    # pyshark's own EK field-mapping cache opens a file it never closes: not ours.
    ours = [w for w in caught if "ek_field_mapping" not in str(w.message)]
    assert ours == []


def test_missing_tshark_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyshark_engine.shutil, "which", lambda _name: None)
    with pytest.raises(EngineUnavailable, match="apt-get install tshark"):
        PysharkEngine("x.pcap")


def test_missing_pyshark_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module(name: str) -> object:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(pyshark_engine.importlib, "import_module", no_module)
    with pytest.raises(EngineUnavailable, match=r"pip install 'portsniff\[pyshark\]'"):
        PysharkEngine("x.pcap")


def test_stdin_is_refused() -> None:
    with pytest.raises(UsageError, match="files only"):
        PysharkEngine("<stdin>")
