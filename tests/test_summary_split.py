"""A classic pcap summarised in two halves by two processes: the one-process summary."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scapy.all as scapy_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsniff import summary_split
from portsniff.annotate.pipeline import AnnotateRun
from portsniff.cli_annotate import stream_meta_registry
from portsniff.cli_summary import _Summarising, _vector_summary
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.summary import Timeline
from tests.annotate.test_vector import workload


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def _finish(run: AnnotateRun, summary: Any) -> dict[str, Any]:
    # As build_summary finishes it.
    for f in run.files:
        summary.add_file(f.as_dict(), f.linktypes)
    summary.problems.update(run.counts.problems)
    out: dict[str, Any] = summary.to_dict()
    return out


def one_process(index: RegistryIndex, path: Path, bpf: str | None = None) -> dict[str, Any]:
    run = AnnotateRun([str(path)], index, workers=1, bpf=bpf)
    return _finish(run, _vector_summary(run, stream_meta_registry(index)))


def two_halves(
    index: RegistryIndex, path: Path, at: int, bpf: str | None = None
) -> tuple[dict[str, Any], bool]:
    run = AnnotateRun([str(path)], index, workers=2, bpf=bpf)
    meta = stream_meta_registry(index)
    summary, why = summary_split.summarise(run, meta, lambda: _Summarising(meta), at)
    return _finish(run, summary), why is None


def record_starts(path: Path) -> list[int]:
    data = path.read_bytes()
    out, pos = [], 24
    while pos + 16 <= len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return out


def test_generated_workload_joins_at_any_point(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 30_000, 11)
    whole = one_process(index, path)
    starts = record_starts(path)
    size = path.stat().st_size
    for at in (starts[1], starts[len(starts) // 3] + 7, size // 2, starts[-2], size - 3):
        got, joined = two_halves(index, path, at)
        assert got == whole, at
        # This workload has no gap a flow could be forgotten in (past the last record's
        # start the first half reads everything: nothing to join).
        assert joined == (at <= starts[-1]), at


def test_a_filter_applies_to_both_halves(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 20_000, 3)
    starts = record_starts(path)
    for bpf in ("udp", "tcp port 443 or icmp"):
        got, joined = two_halves(index, path, starts[len(starts) // 2], bpf)
        assert joined and got == one_process(index, path, bpf), bpf


def test_summary_command_uses_two_halves(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portsniff.annotate import parallel
    from portsniff.cli import main

    path = workload(tmp_path, 20_000, 5)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", path.stat().st_size // 4)
    calls: list[bool] = []
    real = summary_split.summarise

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        calls.append(got[1] is None)
        return got

    monkeypatch.setattr(summary_split, "summarise", spy)
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.json"
        assert (
            main(
                [
                    "summary",
                    str(path),
                    "--format",
                    "json",
                    "-o",
                    str(out),
                    "-q",
                    "--workers",
                    workers,
                ]
            )
            == 0
        )
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    assert calls == [True]


def test_many_short_flows_stop_the_child(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the first half's rows make many flows, the child is stopped (its join would
    cost more than it saves) and this process reads on; long conversations still join.
    Either way the summary is the one-process summary."""
    import subprocess
    import sys

    from portsniff.annotate import parallel
    from tests.conftest import ROOT

    short = tmp_path / "short.pcap"
    generate = [sys.executable, str(ROOT / "bench" / "gen_workload.py"), "--seed", "2"]
    subprocess.run(
        [*generate, "--packets", "20000", "--flows", "20000", "--out", str(short)], check=True
    )
    monkeypatch.setattr(summary_split, "PROBE_ROWS", 2000)
    meta = stream_meta_registry(index)
    for path, stopped in ((short, True), (workload(tmp_path, 20_000, 4), False)):
        monkeypatch.setattr(parallel, "CHUNK_BYTES", path.stat().st_size // 16)
        run = AnnotateRun([str(path)], index, workers=2)
        summary, why = summary_split.summarise(run, meta, lambda: _Summarising(meta))
        assert _finish(run, summary) == one_process(index, path)
        if stopped:
            assert why is not None and why.startswith("many short flows"), why
        else:
            assert why is None


@pytest.mark.parametrize("link", ["vxlan", "gre", "geneve"])
def test_tunnelled_traffic_stops_the_child(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str
) -> None:
    """A capture of tunnelled packets (an overlay, a traffic mirror) is read by one
    process: the child's guesses of inner flows begun before its half seldom join. The
    summary is the one-process summary."""
    import subprocess
    import sys

    from portsniff.annotate import parallel
    from tests.conftest import ROOT

    path = tmp_path / f"{link}.pcap"
    generate = [sys.executable, str(ROOT / "bench" / "gen_workload.py"), "--seed", "3"]
    subprocess.run(
        [*generate, "--packets", "20000", "--flows", "200", "--link", link, "--out", str(path)],
        check=True,
    )
    monkeypatch.setattr(summary_split, "PROBE_ROWS", 2000)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", path.stat().st_size // 16)
    meta = stream_meta_registry(index)
    run = AnnotateRun([str(path)], index, workers=2)
    summary, why = summary_split.summarise(run, meta, lambda: _Summarising(meta))
    assert _finish(run, summary) == one_process(index, path)
    assert why is not None and why.startswith("tunnelled traffic"), why


# -- crafted traffic: flows across the join, handshakes cut by it, idle gaps, fragments -----

CLIENTS = ["10.0.0.1", "10.0.0.2", "192.168.1.9"]
SERVERS = [
    ("10.0.1.1", 443, "tcp"),
    ("10.0.1.2", 53, "udp"),
    ("10.0.1.3", 5353, "udp"),
    ("10.0.1.4", 80, "tcp"),
    ("10.0.1.5", 123, "udp"),
]
FLAGS = {"S": 0x02, "SA": 0x12, "A": 0x10, "PA": 0x18, "FA": 0x11, "R": 0x04}


@st.composite
def traffic(draw: st.DrawFn, back: bool = True) -> list[tuple[float, bytes]]:
    """Frames of a few conversations; time may go back (``back``)."""
    n = draw(st.integers(4, 60))
    steps = [0.0, 0.001, 0.5, 2.0, 700.0, 4000.0] + ([-1.0] if back else [])
    ts = 1_700_000_000.0
    out: list[tuple[float, bytes]] = []
    for _ in range(n):
        ts += draw(st.sampled_from(steps))
        c = draw(st.sampled_from(CLIENTS))
        sip, sport, proto = draw(st.sampled_from(SERVERS))
        cport = draw(st.sampled_from([40000, 40001, sport]))
        up = draw(st.booleans())
        a, ap, b, bp = (c, cport, sip, sport) if up else (sip, sport, c, cport)
        ip = scapy_all.IP(src=a, dst=b)
        size = draw(st.sampled_from([0, 10, 1600]))
        if proto == "tcp":
            flags = FLAGS[draw(st.sampled_from(sorted(FLAGS)))]
            pkt = ip / scapy_all.TCP(sport=ap, dport=bp, flags=flags) / (b"x" * size)
        else:
            pkt = ip / scapy_all.UDP(sport=ap, dport=bp) / (b"y" * size)
        frame = scapy_all.Ether() / pkt
        if draw(st.integers(0, 9)) == 0:
            frame = scapy_all.Ether() / scapy_all.Dot1Q(vlan=7) / pkt
        if len(pkt) > 1500 and draw(st.booleans()):
            parts = scapy_all.fragment(pkt, fragsize=1000)
            if draw(st.booleans()):
                parts = parts[::-1]
            for part in parts:
                out.append((ts, bytes(scapy_all.Ether() / part)))
                ts += draw(st.sampled_from([0.0, 0.001, 40.0]))
            continue
        out.append((ts, bytes(frame)))
    return out


def write(path: Path, frames: list[tuple[float, bytes]]) -> list[int]:
    """A classic pcap of (time, Ethernet frame); the records' offsets."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    starts = []
    pos = 24
    for ts, data in frames:
        sec = int(ts)
        rec = struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(data), len(data)) + data
        starts.append(pos)
        pos += len(rec)
        out.append(rec)
    path.write_bytes(b"".join(out))
    return starts


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.booleans().flatmap(lambda back: traffic(back)), cut=st.floats(0.0, 1.0))
def test_crafted_traffic_two_halves_equal_one(
    index: RegistryIndex, tmp_path: Path, frames: list[tuple[float, bytes]], cut: float
) -> None:
    path = tmp_path / "t.pcap"
    starts = write(path, frames)
    at = starts[min(int(cut * len(starts)), len(starts) - 1)]
    got, _ = two_halves(index, path, at)
    assert got == one_process(index, path)


def test_crafted_cases_join_or_fall_back(index: RegistryIndex, tmp_path: Path) -> None:
    """Each case is summarised exactly; those the join can settle are joined."""
    e, ip, tcp, udp = scapy_all.Ether, scapy_all.IP, scapy_all.TCP, scapy_all.UDP
    c, s = "10.0.0.1", "10.0.1.1"
    hs = [
        ip(src=c, dst=s) / tcp(sport=40000, dport=443, flags="S"),
        ip(src=s, dst=c) / tcp(sport=443, dport=40000, flags="SA"),
        ip(src=c, dst=s) / tcp(sport=40000, dport=443, flags="A"),
    ]
    fin = ip(src=c, dst=s) / tcp(sport=40000, dport=443, flags="FA")
    # Both ports assigned and the first packet to 5353: the second half's first packet
    # goes the other way (its decision differs from the first half's).
    m1 = ip(src="10.0.0.9", dst="10.0.0.8") / udp(sport=123, dport=5353)
    m2 = ip(src="10.0.0.8", dst="10.0.0.9") / udp(sport=5353, dport=123)
    cases: dict[str, tuple[list[Any], bool]] = {
        "handshake across": (hs, True),
        "ambiguous udp across": ([m1, m2, m2, m1], True),
        "closed then reused": ([*hs, fin, hs[0], hs[1]], True),
        "closed then data then SYN": ([*hs, fin, hs[2], hs[0]], False),
    }
    for name, (pkts, joinable) in cases.items():
        frames = [(1_700_000_000.0 + k, bytes(e() / p)) for k, p in enumerate(pkts)]
        path = tmp_path / "case.pcap"
        starts = write(path, frames)
        whole = one_process(index, path)
        joins = []
        for at in starts[1:]:
            got, joined = two_halves(index, path, at)
            assert got == whole, (name, at)
            joins.append(joined)
        if joinable:
            assert all(joins), name
        else:
            assert not all(joins), name


def test_idle_gaps_across_the_join(index: RegistryIndex, tmp_path: Path) -> None:
    """With timestamps that never go back, forgetting idle flows is followed across the
    join; otherwise a gap long enough to forget a flow in makes the parent read on."""
    e, ip, udp = scapy_all.Ether, scapy_all.IP, scapy_all.UDP
    a = ip(src="10.0.0.9", dst="10.0.0.8") / udp(sport=123, dport=5353)
    b = ip(src="10.0.0.8", dst="10.0.0.9") / udp(sport=5353, dport=123)
    other = ip(src="10.0.0.7", dst="10.0.0.6") / udp(sport=40000, dport=53)
    cases = {
        # A new flow at 900 s makes one process forget a/b (idle 899 s): b decides anew.
        "forgotten": ([(0.0, a), (1.0, a), (900.0, other), (901.0, b)], True),
        # No new flow in between: a/b is remembered however long it was idle.
        "remembered": ([(0.0, a), (1.0, a), (901.0, b), (902.0, a)], True),
        # Time went back: the parent cannot follow expiry, and reads the half itself.
        "time went back": ([(0.0, a), (1.0, a), (0.5, other), (1000.0, b)], False),
    }
    x = ip(src="10.0.0.5", dst="10.0.0.4") / udp(sport=40001, dport=53)
    y = ip(src="10.0.0.3", dst="10.0.0.2") / udp(sport=40002, dport=53)
    cases["the child forgets as one process does"] = (
        [(0.0, a), (1.0, a), (10.0, x), (1000.0, y), (1001.0, x), (1002.0, b)],
        True,
    )
    # The child meets a/b again at 700 s (new to it, not to one process) and forgets x
    # there; one process remembers x, whose packet at 701 s goes the other way.
    x_back = ip(src="10.0.0.4", dst="10.0.0.5") / udp(sport=53, dport=40001)
    m1 = ip(src="10.0.0.5", dst="10.0.0.4") / udp(sport=123, dport=5353)
    m2 = ip(src="10.0.0.4", dst="10.0.0.5") / udp(sport=5353, dport=123)
    cases["the child forgets where one process does not"] = (
        [(0.0, a), (1.0, a), (10.0, m1), (700.0, b), (701.0, m2), (702.0, x_back)],
        False,
    )
    # The child's flow table forgets k (idle past 3600 s) while its labeller remembers
    # it: k's second flow is made from a head row, whose service the join counts it for.
    k = ip(src="10.0.0.1", dst="10.0.1.1") / scapy_all.TCP(sport=40000, dport=443, flags="A")
    cases["a head's later flow"] = (
        [(0.0, k), (1.0, k), (2.0, k), (3.0, x), (3700.0, x), (3800.0, k)],
        True,
    )
    for name, (frames, joinable) in cases.items():
        path = tmp_path / "gap.pcap"
        starts = write(path, [(1_700_000_000.0 + t, bytes(e() / p)) for t, p in frames])
        got, joined = two_halves(index, path, starts[2])
        assert got == one_process(index, path), name
        assert joined == joinable, name


def stretched(path: Path, factor: float) -> Path:
    """A copy of a classic pcap with every gap between packets ``factor`` times longer."""
    data = bytearray(path.read_bytes())
    first = prev = None
    now = 0
    for pos in record_starts(path):
        sec, usec = struct.unpack_from("<II", data, pos)
        t = sec * 1_000_000 + usec
        now = t if prev is None else now + round((t - prev) * factor)
        first = t if first is None else first
        prev = t
        struct.pack_into("<II", data, pos, now // 1_000_000, now % 1_000_000)
    out = path.with_name(f"{path.stem}-x{factor:g}.pcap")
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("factor", [500, 2000])
def test_hours_of_traffic_join(index: RegistryIndex, tmp_path: Path, factor: int) -> None:
    """Traffic of hours: both halves forget idle flows (the labeller after 10 min, the
    flow table after an hour) and make them again, their slots given to other flows:
    equal to one process (joined, unless the flows made again are too many to pay)."""
    path = stretched(workload(tmp_path, 120_000, 11), factor)
    whole = one_process(index, path)
    starts = record_starts(path)
    for at in (starts[len(starts) // 3], starts[len(starts) // 2]):
        got, joined = two_halves(index, path, at)
        assert joined or factor > 500, at
        assert got == whole, at


# -- the head rows' timelines ---------------------------------------------------------------


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.floats(0, 5000), st.integers(1, 1500)),
        min_size=1,
        max_size=400,
    ),
    cuts=st.lists(st.integers(0, 400), max_size=5),
    compact=st.integers(1, 64),
)
def test_head_timelines_equal_a_timeline_of_the_rows(
    rows: list[tuple[int, float, int]], cuts: list[int], compact: int
) -> None:
    from portsniff.annotate.vector import LabelledBatch
    from portsniff.timestamps import seconds

    sums = summary_split.HeadSums()
    old = summary_split._COMPACT
    summary_split._COMPACT = compact
    try:
        bounds = sorted({0, len(rows), *(min(c, len(rows)) for c in cuts)})
        for a, b in itertools.pairwise(bounds):
            part = rows[a:b]
            n = len(part)
            lb = LabelledBatch.__new__(LabelledBatch)
            lb.head = np.array([r[0] for r in part], np.int32)
            lb.wirelen = np.array([r[2] for r in part], np.int64)
            lb.ts_ns = np.array([round(r[1] * 1e9) for r in part], np.int64)
            lb.vlan = {}
            lb.vlan_tag = np.full(n, -1, np.int32)
            sums.add(lb, np.arange(n))
    finally:
        summary_split._COMPACT = old
    groups = [[0, 1], [2], [3, 4, 5]]
    got = sums.timelines(groups)
    for g, slots in enumerate(groups):
        want = Timeline()
        for slot, ts, nbytes in rows:
            if slot in slots:
                want.add(seconds(round(ts * 1e9)), nbytes)
        if not want.bins:
            assert got[g] is None
        else:
            tl = got[g]
            assert tl is not None and (tl.width, tl.bins) == (want.width, want.bins)


@given(
    st.sampled_from([4, 6]),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.sampled_from(["tcp", "udp"]),
)
def test_a_labeller_key_names_its_flow_table_key(
    version: int, a: bytes, b: bytes, a_port: int, b_port: int, proto: str
) -> None:
    """A labeller flow key (misc word, then each end's address as two big-endian words)
    gives the flow table's key of the same two ends."""
    import ipaddress

    from portsniff.decode.packet import PROTOS
    from portsniff.flows import table_key

    if version == 4:
        a, b = a[:4] + bytes(12), b[:4] + bytes(12)
    misc = (PROTOS.index(proto) << 48) | (version << 40) | (version << 32) | (a_port << 16) | b_port
    key = struct.pack("=5Q", misc, *struct.unpack(">QQ", a), *struct.unpack(">QQ", b))
    text = [str(ipaddress.ip_address(x[:4] if version == 4 else x)) for x in (a, b)]
    want = table_key(None, proto, (text[0], a_port), (text[1], b_port))
    assert summary_split._ends_key(key) == want


# -- several files: the halves meet at a file's start, or inside a classic pcap ------------


def write_pcapng(path: Path, frames: list[tuple[float, bytes]]) -> None:
    """A pcapng of (time, Ethernet frame)."""
    from portsniff.capture.writer import PcapngWriter

    with path.open("wb") as fh:
        w = PcapngWriter(fh)
        iface = w.add_interface(1, 65535)
        for ts, data in frames:
            w.write_packet(iface, round(ts * 1e9), len(data), data)
        w.close()


def several(
    index: RegistryIndex, paths: list[Path], at: int | None, bpf: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """The one-process summary of ``paths`` and the two halves' (split at ``at``)."""
    names = [str(p) for p in paths]
    run = AnnotateRun(names, index, workers=1, bpf=bpf, keep_going=True)
    whole = _finish(run, _vector_summary(run, stream_meta_registry(index)))
    run = AnnotateRun(names, index, workers=2, bpf=bpf, keep_going=True)
    meta = stream_meta_registry(index)
    summary, why = summary_split.summarise(run, meta, lambda: _Summarising(meta), at)
    return whole, _finish(run, summary), why


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    frames=st.booleans().flatmap(lambda back: traffic(back)),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
    kinds=st.lists(st.booleans(), min_size=4, max_size=4),
    at=st.floats(0.0, 1.0),
)
def test_files_two_halves_equal_one(
    index: RegistryIndex,
    tmp_path: Path,
    frames: list[tuple[float, bytes]],
    cuts: list[float],
    kinds: list[bool],
    at: float,
) -> None:
    """Traffic cut into files (classic pcap or pcapng; conversations go on across them),
    split anywhere: at a file's start, inside a classic pcap, or inside a pcapng (then
    at the nearer file boundary)."""
    bounds = sorted({0, len(frames), *(int(c * len(frames)) for c in cuts)})
    paths = []
    for j, (a, b) in enumerate(itertools.pairwise(bounds)):
        if kinds[j]:
            path = tmp_path / f"part{j}.pcapng"
            write_pcapng(path, frames[a:b])
        else:
            path = tmp_path / f"part{j}.pcap"
            write(path, frames[a:b])
        paths.append(path)
    total = sum(p.stat().st_size for p in paths)
    whole, got, _ = several(index, paths, int(at * total))
    assert got == whole


def test_files_join_at_a_file_start(index: RegistryIndex, tmp_path: Path) -> None:
    """Generated traffic in three files: the child takes the last files whole (or the
    rest of a classic pcap and the files after it); each is joined."""
    path = workload(tmp_path, 30_000, 8)
    data = path.read_bytes()
    starts = record_starts(path)
    cut = [starts[len(starts) // 3], starts[2 * len(starts) // 3]]
    parts = []
    for j, (a, b) in enumerate(zip([24, *cut], [*cut, len(data)], strict=True)):
        part = tmp_path / f"p{j}.pcap"
        part.write_bytes(data[:24] + data[a:b])
        parts.append(part)
    sizes = [p.stat().st_size for p in parts]
    for at in (sizes[0], sizes[0] + sizes[1], sizes[0] + 1000, sizes[0] + sizes[1] // 2):
        whole, got, why = several(index, parts, at)
        assert why is None, (at, why)
        assert got == whole, at
    # The files together equal the one file.
    whole, got, why = several(index, parts, sizes[0], "udp")
    assert why is None and got == whole


def test_files_damaged_or_missing_are_reported_alike(index: RegistryIndex, tmp_path: Path) -> None:
    """A damaged file (read up to the damage) and a file that cannot be read are
    reported as one process reports them, whichever half they fall in."""
    path = workload(tmp_path, 12_000, 9)
    data = path.read_bytes()
    starts = record_starts(path)
    cut = starts[len(starts) // 2]
    good = tmp_path / "a.pcap"
    good.write_bytes(data[:cut])
    damaged = tmp_path / "b.pcap"
    damaged.write_bytes(data[:24] + data[cut : cut + 200_000] + b"\xff" * 40)
    missing = tmp_path / "c.pcap"
    last = tmp_path / "d.pcap"
    last.write_bytes(data[:24] + data[cut:])
    paths = [good, damaged, missing, last]
    sizes = [p.stat().st_size if p.exists() else 0 for p in paths]
    for at in (sizes[0], sizes[0] + 100_000, sizes[0] + sizes[1]):
        whole, got, _ = several(index, paths, at)
        assert got == whole, at
        assert [f["error"] is not None for f in got["capture"]["files"]] == [
            False,
            False,
            True,
            False,
        ]
        assert got["capture"]["files"][1]["damage"], at


def test_summary_command_splits_files(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``summary DIR --workers 2`` of rotated files (pcap and pcapng) is joined and
    prints what one process prints."""
    from portsniff.annotate import parallel
    from portsniff.cli import main

    path = workload(tmp_path, 20_000, 6)
    data = path.read_bytes()
    starts = record_starts(path)
    d = tmp_path / "rotated"
    d.mkdir()
    cut = starts[len(starts) // 2]
    (d / "a.pcap").write_bytes(data[:cut])
    frames = []
    for a, b in itertools.pairwise([*starts[len(starts) // 2 :], len(data)]):
        sec, usec = struct.unpack_from("<II", data, a)
        frames.append((sec + usec / 1e6, data[a + 16 : b]))
    write_pcapng(d / "b.pcapng", frames)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", len(data) // 4)
    calls: list[str | None] = []
    real = summary_split.summarise

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        calls.append(got[1])
        return got

    monkeypatch.setattr(summary_split, "summarise", spy)
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.json"
        argv = ["summary", str(d), "--format", "json", "-o", str(out), "-q", "--workers", workers]
        assert main(argv) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    assert calls == [None]


def test_one_pcapng_joins_at_any_point(index: RegistryIndex, tmp_path: Path) -> None:
    """A pcapng is split at a block found after any byte; the child learns the interfaces
    from the file's first blocks. Where an interface is described after packets (the
    child cannot know it) or the first half is damaged, this process reads on."""
    from tests.capture.test_pcapng import idb

    src = workload(tmp_path, 20_000, 12)
    data = src.read_bytes()
    starts = record_starts(src)
    frames = []
    for a, b in itertools.pairwise([*starts, len(data)]):
        sec, usec = struct.unpack_from("<II", data, a)
        frames.append((sec + usec / 1e6, data[a + 16 : b]))
    path = tmp_path / "w.pcapng"
    write_pcapng(path, frames)
    size = path.stat().st_size
    for at in (100, size // 3 + 1, size // 2 + 2, size - 40):
        whole, got, why = several(index, [path], at)
        assert got == whole, at
        # From inside the last block on, the first half is all there is.
        assert why == (None if at < size - 40 else "the first half is the whole capture"), at
    # A second interface described after packets: the child's interfaces differ.
    blob = path.read_bytes()
    late = tmp_path / "late.pcapng"
    cut = blob.index(struct.pack("<I", 6), size // 4)  # an EPB's start (type 6, then length)
    while struct.unpack_from("<I", blob, cut + 4)[0] % 4 or cut % 4:
        cut = blob.index(struct.pack("<I", 6), cut + 1)
    late.write_bytes(blob[:cut] + idb(1, 0) + blob[cut:])
    whole, got, why = several(index, [late], size // 2)
    assert got == whole and why == "the halves do not meet at one record"
    # Damage in the first half: one process stops there; so does this one.
    broken = tmp_path / "broken.pcapng"
    broken.write_bytes(blob[:cut] + struct.pack("<II", 6, 7) + blob[cut + 8 :])
    whole, got, why = several(index, [broken], size // 2)
    assert got == whole and why == "the first half is damaged"
    assert got["capture"]["files"][0]["damage"]


def test_fragmented_traffic_joins(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many fragmented datagrams, each in order: the child remembers its own first
    fragments (new to the first half, or not: ids used again) and the halves join; with a
    memory of first fragments smaller than the datagrams, the summary is still one
    process's."""
    from portsniff.annotate import annotator as annotator_module
    from portsniff.annotate import vector as vector_module

    def datagrams(ids: int) -> tuple[Path, list[int]]:
        frames: list[tuple[float, bytes]] = []
        ts = 1_700_000_000.0
        for k in range(300):
            ip = scapy_all.IP(src=f"10.0.0.{k % 7 + 1}", dst="10.0.1.1", id=k % ids)
            pkt = ip / scapy_all.UDP(sport=40000 + k % 5, dport=2049) / (b"n" * 2500)
            for part in scapy_all.fragment(pkt, fragsize=1000):
                frames.append((ts, bytes(scapy_all.Ether() / part)))
                ts += 0.001
        path = tmp_path / f"frag{ids}.pcap"
        return path, write(path, frames)

    # Ids unique, or used again in the other half (a key both halves remember).
    for ids in (300, 20):
        path, starts = datagrams(ids)
        # At a datagram's first fragment (3 a datagram): none straddles the halves.
        assert len(starts) == 900
        got, joined = two_halves(index, path, starts[450])
        assert joined and got == one_process(index, path), ids
    for module in (annotator_module, vector_module, summary_split):
        monkeypatch.setattr(module, "_MAX_FRAGMENT_KEYS", 40)
    for at in (starts[450], starts[len(starts) // 5]):
        got, _ = two_halves(index, path, at)
        assert got == one_process(index, path), at
