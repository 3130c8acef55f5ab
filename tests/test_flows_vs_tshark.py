"""Flows against tshark's ``tcp.stream`` / ``udp.stream`` on every shared capture.

Each of our TCP and UDP flows must hold exactly the frames of one tshark stream (so the
flow count and every flow's packets and bytes are equal). Deliberate differences, each
with a named test:

- ICMP errors are ICMP traffic, not part of the quoted flow (tshark's ``udp.stream``
  puts them in the quoted conversation): test_icmp_errors_are_not_in_the_quoted_flow.
- Non-first IP fragments belong to their datagram's flow (tshark without reassembly
  puts them in none): test_fragments_belong_to_their_datagrams_flow.
- Tunnelled packets count in the outer flow; their inner flows are listed separately
  with ``tunnel`` set: test_tunnels_count_in_the_outer_flow_and_list_inner_flows.
- tshark's application dissectors (HART-IP, SNMP, SIP/RTP, ...) create conversations that
  split one 5-tuple into several streams; we compare with a tshark that has only its
  link, IP, tunnel and transport dissectors enabled:
  test_application_dissectors_split_tsharks_streams.
- A packet whose transport header is cut short still counts in the flow its captured
  ports name; tshark gives it no stream: test_truncated_headers_count_in_their_flow.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from portsniff.annotate.pipeline import AnnotateRun
from portsniff.flows import FlowTable
from tests.conftest import SHARED
from tests.tshark import need_tshark, shared_capture, shared_capture_files, tshark_fields

FIELDS = ("frame.protocols", "tcp.stream", "udp.stream", "frame.len", "frame.time_epoch")
OPTS = ("-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE")
CAPTURES = SHARED / "captures"
FILES = shared_capture_files(CAPTURES) if CAPTURES.is_dir() else []


def our_flows(path: Path, official_index):
    table = FlowTable()
    records, uids = [], []
    for r in AnnotateRun([str(path)], official_index).records():
        records.append(r)
        uids.append(table.add(r))
    return records, uids, list(table.finish())


def tshark_streams(path: Path, records, transport_only: bool = True):
    """Per packet of ours: tshark's (proto, stream) of the outermost tcp/udp, or None."""
    rows = tshark_fields(str(path), FIELDS, OPTS, transport_only)
    out, j = [], 0
    same_count = len(rows) == len(records)
    for r in records:
        if same_count:
            out.append(_stream_of(rows[r.frame - 1]))
            continue
        # Skip tshark's frames that are not packets (pcapng custom blocks).
        while j < len(rows) and not (
            int(rows[j][3] or 0) == r.len and abs(float(rows[j][4] or 0) - r.ts) < 2e-6
        ):
            j += 1
        assert j < len(rows), f"{path.name}: frame {r.frame} has no tshark counterpart"
        out.append(_stream_of(rows[j]))
        j += 1
    return out


def _stream_of(row: list[str]) -> tuple[str, int] | None:
    """The (proto, stream) of a frame's outermost tcp/udp header, or None."""
    chain = row[0].split(":")
    first = next((p for p in chain if p in ("tcp", "udp", "sctp", "dccp")), None)
    stream = row[1] if first == "tcp" else row[2] if first == "udp" else ""
    return (first, int(stream)) if first and stream else None


def partitions(path: Path, official_index):
    records, uids, flows = our_flows(path, official_index)
    theirs = tshark_streams(path, records)
    mine_p: dict[str, set[int]] = defaultdict(set)
    their_p: dict[tuple[str, int], set[int]] = defaultdict(set)
    for r, uid, t in zip(records, uids, theirs, strict=True):
        if r.proto in ("icmp", "icmpv6") and r.quoted is not None:
            continue  # named difference: ICMP quotes
        if r.fragment and t is None:
            continue  # named difference: non-first fragments
        if r.problem and t is None:
            continue  # named difference: truncated transport headers
        if uid is not None and r.proto in ("tcp", "udp"):
            mine_p[uid].add(r.frame)
        if t is not None:
            their_p[t].add(r.frame)
    return records, flows, mine_p, their_p


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_tcp_and_udp_flows_equal_tsharks_streams(path: Path, official_index):
    need_tshark()
    records, flows, mine_p, their_p = partitions(path, official_index)
    mine = sorted(sorted(s) for s in mine_p.values())
    theirs = sorted(sorted(s) for s in their_p.values())
    assert mine == theirs
    # Packets and bytes of each flow are those of its frames.
    length = {r.frame: r.len for r in records}
    by_uid = {f.uid: f for f in flows}
    for uid, frames in mine_p.items():
        f = by_uid[uid]
        assert f.orig_pkts + f.resp_pkts >= len(frames)
        assert f.orig_bytes + f.resp_bytes >= sum(length[n] for n in frames)


def test_icmp_errors_are_not_in_the_quoted_flow(official_index):
    need_tshark()
    path = shared_capture("zeek__icmp_icmp-destunreach-udp.pcap")
    records, _, flows = our_flows(path, official_index)
    (r,) = records
    assert r.proto == "icmp" and r.quoted is not None
    assert tshark_streams(path, records, transport_only=False) == [
        ("udp", 0)
    ]  # tshark: part of the UDP stream
    assert [f.proto for f in flows] == ["icmp"]  # ours: an ICMP flow, no UDP flow


def test_fragments_belong_to_their_datagrams_flow(official_index):
    need_tshark()
    path = shared_capture("pcapplusplus__ip4_fragments.pcap")
    records, uids, flows = our_flows(path, official_index)
    theirs = tshark_streams(path, records)
    moved = [
        (r, u) for r, u, t in zip(records, uids, theirs, strict=True) if r.fragment and t is None
    ]
    assert moved
    by_uid = {f.uid: f for f in flows}
    for r, uid in moved:
        f = by_uid[uid]
        assert {f.orig_port, f.resp_port} == {r.src_port, r.dst_port}


def test_tunnels_count_in_the_outer_flow_and_list_inner_flows(official_index):
    need_tshark()
    path = shared_capture("tcpdump__vxlan.pcap")
    records, _, flows = our_flows(path, official_index)
    outer = [f for f in flows if f.tunnel is None]
    inner = [f for f in flows if f.tunnel == "vxlan"]
    assert outer and inner
    assert all(f.resp_port == 4789 for f in outer if f.proto == "udp")
    assert sum(f.orig_pkts + f.resp_pkts for f in outer) == len(records)


def test_application_dissectors_split_tsharks_streams(official_index):
    need_tshark()
    path = shared_capture("testing_tools__hart_ip.pcap")
    records, uids, _ = our_flows(path, official_index)
    full = tshark_streams(path, records, transport_only=False)
    bare = tshark_streams(path, records, transport_only=True)
    # The same 5-tuple (frames 4 and 5: 5095 <-> 49905) is two streams in full tshark...
    assert full[3] != full[4]
    # ...one in transport-only tshark, and one flow of ours.
    assert bare[3] == bare[4] and uids[3] == uids[4]


def test_truncated_headers_count_in_their_flow(official_index):
    need_tshark()
    path = shared_capture("tcpdump__udp-length-heapoverflow.pcap")
    records, _, flows = our_flows(path, official_index)
    (r,) = records
    assert r.problem and r.problem.startswith("truncated UDP header")
    assert tshark_streams(path, records) == [None]
    assert [(f.proto, f.orig_port, f.resp_port, f.orig_pkts) for f in flows] == [
        ("udp", 12336, 12336, 1)
    ]
