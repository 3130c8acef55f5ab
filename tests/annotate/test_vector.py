"""The columnar annotator gives exactly the reference annotator's records."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsniff.annotate import annotator as annotator_module
from portsniff.annotate import vector as vector_module
from portsniff.annotate.annotator import Annotator
from portsniff.annotate.records import PacketRecord
from portsniff.annotate.side import FlowSides
from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.capture.reader import open_capture
from portsniff.decode.batch import PROTO_CODE, DecodedBatch
from portsniff.decode.fast import FastEngine
from portsniff.decode.packet import Decoded, Endpoints, Fragment
from portsniff.errors import PortsniffError
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from tests.conftest import CAPTURES, ROOT

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".gz", ".zst")


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def decoded(path: Path, block_bytes: int) -> Iterator[DecodedBatch]:
    try:
        reader = open_capture(str(path), block_bytes=block_bytes)
    except PortsniffError:
        return
    with reader:
        engine = FastEngine(str(path))
        for block in reader.blocks():
            yield engine.decode(block)


def both(
    index: RegistryIndex,
    batches: list[DecodedBatch],
    masks: list[np.ndarray | None] | None = None,
    **limits: float,
) -> tuple[list[PacketRecord], list[PacketRecord], Annotator, VectorAnnotator]:
    flows = FlowSides(**limits) if limits else None  # type: ignore[arg-type]
    ref = Annotator(index, flows=flows)
    vec = VectorAnnotator(index, **limits)  # type: ignore[arg-type]
    a: list[PacketRecord] = []
    b: list[PacketRecord] = []
    for k, batch in enumerate(batches):
        mask = masks[k] if masks else None
        a.extend(ref.feed(batch, mask))
        b.extend(vec.records(batch, mask))
    a.extend(ref.finish())
    b.extend(vec.finish_records())
    return a, b, ref, vec


def assert_same(
    a: list[PacketRecord], b: list[PacketRecord], ref: Annotator, vec: VectorAnnotator
) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x == y
    assert ref.counts == vec.counts


def capture_files() -> list[Path]:
    return sorted(p for p in CAPTURES.iterdir() if p.name.endswith(CAPTURE_SUFFIXES))


@pytest.mark.parametrize("path", capture_files(), ids=lambda p: p.name)
def test_project_captures(index: RegistryIndex, path: Path) -> None:
    for block_bytes in (8 << 20, 2048):
        assert_same(*both(index, list(decoded(path, block_bytes))))


def test_shared_captures_one_by_one_and_all_in_one(
    index: RegistryIndex, shared_captures: Path
) -> None:
    files = sorted(p for p in shared_captures.iterdir() if p.name.endswith(CAPTURE_SUFFIXES))
    assert files
    for path in files:
        assert_same(*both(index, list(decoded(path, 8 << 20))))
    # One annotator across every file: flow memory spans files, timestamps jump.
    batches = [b for path in files for b in decoded(path, 4096)]
    assert_same(*both(index, batches))


def workload(tmp_path: Path, packets: int, seed: int) -> Path:
    out = tmp_path / f"w{packets}-{seed}.pcap"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gen_workload.py"),
            "--packets",
            str(packets),
            "--seed",
            str(seed),
            "--flows",
            "300",
            "--out",
            str(out),
        ],
        check=True,
    )
    return out


def test_generated_workload(index: RegistryIndex, tmp_path: Path) -> None:
    path = workload(tmp_path, 30_000, 7)
    for block_bytes in (8 << 20, 1 << 16):
        a, b, ref, vec = both(index, list(decoded(path, block_bytes)))
        assert_same(a, b, ref, vec)
        assert len(a) == 30_000
        assert any(r.basis == "syn" for r in a) and any(r.vlan for r in a)
        assert vec.slow_blocks == 0


def test_generated_workload_with_masks_and_small_memory(
    index: RegistryIndex, tmp_path: Path
) -> None:
    path = workload(tmp_path, 8_000, 3)
    batches = list(decoded(path, 1 << 15))
    rng = np.random.default_rng(5)
    masks: list[np.ndarray | None] = [rng.random(len(b)) < 0.7 for b in batches]
    # Tiny limits: flows are forgotten (idle and over the limit) all the time.
    a, b, ref, vec = both(index, batches, masks, max_flows=50, idle_timeout=0.05)
    assert_same(a, b, ref, vec)
    assert vec.evicted > 0 and vec.slow_blocks > 0


@pytest.mark.parametrize("block_bytes", [1 << 15, 8 << 20])
def test_flows_forgotten_inside_blocks_decided_at_once(
    index: RegistryIndex, tmp_path: Path, block_bytes: int
) -> None:
    """Traffic longer than the idle timeout: flows are forgotten inside blocks (those
    longer than the timeout labelled in parts), which are decided at once all the same."""
    path = workload(tmp_path, 20_000, 11)  # about 2 s of traffic
    batches = list(decoded(path, block_bytes))
    a, b, ref, vec = both(index, batches, idle_timeout=0.3)
    assert_same(a, b, ref, vec)
    assert vec.evicted > 100 and vec.slow_blocks == 0
    if block_bytes > 1 << 20:
        assert len(batches) <= 2 and vec.pieces > 5


# -- synthetic batches: fragments, tunnels, quotes, SYN re-decisions, time jumps -----------

ADDRS = ["10.0.0.1", "10.0.0.2", "192.0.2.7", "2001:db8::1", "2001:db8::2"]
PORTS = [53, 80, 123, 443, 5353, 47808, 1024, 40000, 50000, 65535]


@st.composite
def packets(draw: st.DrawFn) -> Decoded:
    kind = draw(st.sampled_from(["plain", "plain", "plain", "frag", "inner", "quoted", "other"]))
    v6 = draw(st.booleans())
    pool = ADDRS[3:] if v6 else ADDRS[:3]
    src, dst = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    proto = draw(st.sampled_from(["tcp", "udp", "sctp", "dccp"]))
    sp, dp = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
    flags = draw(st.sampled_from([0x02, 0x12, 0x10, 0x11, 0x04, 0x18])) if proto == "tcp" else None
    if kind == "other":
        return Decoded(
            linktype=1,
            src_ip=src,
            dst_ip=dst,
            proto="icmp",
            ip_proto=1,
            problem=draw(st.sampled_from([None, "truncated IPv4 header"])),
        )
    if kind == "frag":
        key = (src, dst, draw(st.integers(0, 2)), 17)
        first = draw(st.booleans())
        return Decoded(
            linktype=1,
            src_ip=src,
            dst_ip=dst,
            proto="udp",
            ip_proto=17,
            src_port=sp if first else None,
            dst_port=dp if first else None,
            fragment=Fragment(key, 0 if first else 1480, first),
        )
    d = Decoded(
        linktype=1,
        src_ip=src,
        dst_ip=dst,
        proto=proto,
        ip_proto={"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33}[proto],
        src_port=sp,
        dst_port=dp,
        tcp_flags=flags,
        # No tag, one (a trunk), two (a provider's), three (left in the Decoded).
        vlan=tuple(draw(st.lists(st.integers(0, 4095), max_size=3))),
    )
    if kind == "inner":
        return draw(tunnelled(src, dst, sp, d.vlan))
    if kind == "quoted":
        q = Endpoints(proto, dst, src, dp, sp)
        return Decoded(linktype=1, src_ip=src, dst_ip=dst, proto="icmp", ip_proto=1, quoted=q)
    return d


@st.composite
def tunnelled(draw: st.DrawFn, src: str, dst: str, sp: int, vlan: tuple[int, ...]) -> Decoded:
    """A packet carried by a tunnel: mostly one inner IP header (the tunnels' columns),
    sometimes more (nested), a non-IP frame, or a problem (a Decoded of its own), the
    inner flows shared between them."""
    inner: list[Endpoints] = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        pool = draw(st.sampled_from([ADDRS[:3], ADDRS[3:]]))
        iproto = draw(st.sampled_from(["udp", "udp", "tcp", "sctp", "icmp"]))
        ported = iproto != "icmp"
        inner.append(
            Endpoints(
                iproto,
                draw(st.sampled_from(pool)),
                draw(st.sampled_from(pool)),
                draw(st.sampled_from(PORTS)) if ported else None,
                draw(st.sampled_from(PORTS)) if ported else None,
                draw(st.sampled_from(["vxlan", "vxlan", "gre", "geneve"])),
            )
        )
    if draw(st.integers(0, 9)) == 0:
        inner.append(Endpoints("other", None, None, None, None, "vxlan"))
    return Decoded(
        linktype=1,
        src_ip=src,
        dst_ip=dst,
        proto="udp",
        ip_proto=17,
        src_port=sp,
        dst_port=4789,
        vlan=vlan,
        inner=tuple(inner),
        problem=draw(st.sampled_from([None] * 9 + ["truncated VXLAN header"])),
    )


def batch_of(items: list[tuple[Decoded, int]], first_frame: int) -> DecodedBatch:
    b = DecodedBatch.empty("<synthetic>", first_frame, len(items))
    for i, (d, ts_ns) in enumerate(items):
        b.ts_ns[i] = ts_ns
        b.wirelen[i] = b.caplen[i] = 60 + i % 7
        b.set_decoded(i, d)
    assert all(int(b.proto[i]) in PROTO_CODE.values() for i in range(len(items)))
    return b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(packets(), st.integers(0, 3_000_000_000)), min_size=1, max_size=60),
    st.lists(st.integers(1, 25), min_size=1, max_size=6),
    st.sampled_from([(1_000_000, 600.0), (4, 1.0), (2, 0.5)]),
)
def test_synthetic_batches(
    index: RegistryIndex,
    items: list[tuple[Decoded, int]],
    cuts: list[int],
    limits: tuple[int, float],
) -> None:
    max_flows, idle = limits
    batches = rising_batches(items, cuts)
    assert_same(*both(index, batches, max_flows=max_flows, idle_timeout=idle))


def rising_batches(items: list[tuple[Decoded, int]], cuts: list[int]) -> list[DecodedBatch]:
    """Batches of ``items`` cut after ``cuts`` rows (repeated); timestamps mostly rise,
    with jumps back and forth (several captures in one run)."""
    rising: list[tuple[Decoded, int]] = []
    t = 1_700_000_000 * 10**9
    for d, step in items:
        t += step if step % 5 else -step
        rising.append((d, t))
    batches: list[DecodedBatch] = []
    at = 0
    for c in cuts * 10:
        if at >= len(rising):
            break
        batches.append(batch_of(rising[at : at + c], at + 1))
        at += c
    if at < len(rising):
        batches.append(batch_of(rising[at:], at + 1))
    return batches


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(packets(), st.integers(0, 60_000_000)), min_size=30, max_size=80),
    st.lists(st.integers(1, 4), min_size=1, max_size=6),
    st.sampled_from([0.02, 0.05, 0.1]),
)
def test_flows_forgotten_in_short_blocks(
    index: RegistryIndex, items: list[tuple[Decoded, int]], cuts: list[int], idle: float
) -> None:
    """Blocks shorter than the idle timeout in which remembered flows are forgotten
    (decided at once), and longer ones (call by call), with time going back now and
    then: the reference's records."""
    batches = rising_batches(items, cuts)
    assert_same(*both(index, batches, idle_timeout=idle))


def labelled_synthetic(
    index: RegistryIndex,
    items: list[tuple[Decoded, int]],
    cuts: list[int],
    limits: tuple[int, float],
) -> tuple[VectorAnnotator, list[LabelledBatch]]:
    """A labeller with ``limits`` (max flows, idle timeout) and its batches of
    :func:`rising_batches`."""
    max_flows, idle = limits
    vec = VectorAnnotator(index, max_flows=max_flows, idle_timeout=idle)
    out: list[LabelledBatch] = []
    for batch in rising_batches(items, cuts):
        out.extend(vec.feed(batch))
    out.extend(vec.finish())
    return vec, out


def dns_query(src: str) -> tuple[Decoded, int]:
    """A DNS query from ``src`` port 40000 to 192.0.2.53, 5 ns after the one before."""
    d = Decoded(
        linktype=1,
        src_ip=src,
        dst_ip="192.0.2.53",
        proto="udp",
        ip_proto=17,
        src_port=40000,
        dst_port=53,
    )
    return d, 5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(packets(), st.integers(0, 3_000_000_000)), min_size=1, max_size=60),
    st.lists(st.integers(1, 25), min_size=1, max_size=6),
    st.sampled_from([(1_000_000, 600.0), (4, 1.0), (2, 0.5)]),
)
def test_flow_column_names_one_flow_per_slot(
    index: RegistryIndex,
    items: list[tuple[Decoded, int]],
    cuts: list[int],
    limits: tuple[int, float],
) -> None:
    """A row's ``flow`` names its endpoints (direction included) from the batch whose
    ``new_flows`` lists the slot on, even when flows are forgotten and slots used again."""
    vec, out = labelled_synthetic(index, items, cuts, limits)
    named: dict[int, tuple[object, ...]] = {}
    for lb in out:
        assert lb.flow_space == vec._space
        for slot in lb.new_flows.tolist():
            named.pop(2 * slot, None)
            named.pop(2 * slot + 1, None)
        for i in range(len(lb)):
            f = int(lb.flow[i])
            rec = lb.record(i)
            if f < 0:  # rows labelled one by one, and rows without two ports
                assert i in lb.records or rec.src_port is None or rec.dst_port is None
                continue
            assert i not in lb.records
            ends = (rec.proto, rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port)
            mirror = (rec.proto, rec.dst_ip, rec.dst_port, rec.src_ip, rec.src_port)
            assert named.setdefault(f, ends) == ends
            assert named.setdefault(f ^ 1, mirror) == mirror


def test_fragment_window_gives_up_in_order(
    index: RegistryIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (annotator_module, vector_module):
        monkeypatch.setattr(module, "FRAGMENT_WINDOW_PACKETS", 5)
    key = ("10.0.0.1", "10.0.0.2", 9, 17)
    late = Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, fragment=Fragment(key, 8, False))
    first = Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, 5353, 53, fragment=Fragment(key, 0, True))
    plain = Decoded(1, "10.0.0.3", "10.0.0.2", "udp", 17, 40000, 53)
    seqs = [
        [late] + [plain] * 3 + [first],  # resolved inside the window
        [late] + [plain] * 8 + [first],  # given up, then the first comes too late
        [late, late] + [plain] * 2,  # both wait past the end of the batch
    ]
    for seq in seqs:
        items = [(d, 1_700_000_000 * 10**9 + i * 1000) for i, d in enumerate(seq)]
        for cut in (1, 2, 3, len(items)):
            batches = [batch_of(items[a : a + cut], a + 1) for a in range(0, len(items), cut)]
            a, b, ref, vec = both(index, batches)
            assert_same(a, b, ref, vec)
            assert [r.frame for r in b] == list(range(1, len(items) + 1))


def test_fragments_in_order_are_vector_rows(index: RegistryIndex) -> None:
    """Fragments whose first came before them are labelled with the block (their records
    are the reference's, made from the columns); one met before its first sends the
    block's fragments one by one."""
    key = ("10.0.0.1", "10.0.0.2", 9, 17)
    first = Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, 5353, 53, fragment=Fragment(key, 0, True))
    mid = Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, fragment=Fragment(key, 1480, True))
    last = Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, fragment=Fragment(key, 2960, False))
    for seq, in_order in (([first, mid, last], True), ([mid, first, last], False)):
        items = [(d, 1_700_000_000 * 10**9 + i * 1000) for i, d in enumerate(seq)]
        a, b, ref, vec = both(index, [batch_of(items, 1)])
        assert_same(a, b, ref, vec)
        assert [(r.fragment, r.src_port, r.dst_port) for r in b] == [(True, 5353, 53)] * 3
        (lb,) = VectorAnnotator(index).feed(batch_of(items, 1))
        # (One by one, the records say what the column does not.)
        assert lb.fragment.all() == in_order == (not lb.records) == (lb.flow >= 0).all()
    assert vec.counts.fragments == 3


@st.composite
def fragmented(draw: st.DrawFn) -> list[Decoded]:
    """Datagrams in fragments (ids reused now and then), mostly in order, some fragments
    moved ahead of their first or lost, with plain packets between."""
    out: list[Decoded] = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.integers(0, 4)) == 0:
            out.append(Decoded(1, "10.0.0.3", "10.0.0.2", "udp", 17, 40000, 53))
            continue
        src = draw(st.sampled_from(["10.0.0.1", "10.0.0.5"]))
        key = (src, "10.0.0.2", draw(st.integers(0, 6)), 17)
        sp, dp = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
        parts = [
            Decoded(1, src, "10.0.0.2", "udp", 17, sp, dp, fragment=Fragment(key, 0, True)),
            *(
                Decoded(1, src, "10.0.0.2", "udp", 17, fragment=Fragment(key, 1480 * k, k < n))
                for n in [draw(st.integers(1, 3))]
                for k in range(1, n + 1)
            ),
        ]
        order = draw(st.sampled_from(["in order", "in order", "in order", "swapped", "lost"]))
        if order == "swapped":
            parts[0], parts[1] = parts[1], parts[0]
        elif order == "lost":
            parts = parts[1:]
        out.extend(parts)
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fragmented(), st.lists(st.integers(1, 12), min_size=1, max_size=4), st.integers(1, 6))
def test_fragments_with_few_remembered_firsts(
    index: RegistryIndex, seq: list[Decoded], cuts: list[int], remembered: int
) -> None:
    """Fragments with a small memory of first fragments (the oldest forgotten, as the
    reference forgets them), in order or not: the reference's records and counts."""
    with pytest.MonkeyPatch.context() as mp:
        for module in (annotator_module, vector_module):
            mp.setattr(module, "_MAX_FRAGMENT_KEYS", remembered)
        # (Steps of 1001 ns: time only rises.)
        assert_same(*both(index, rising_batches([(d, 1001) for d in seq], cuts)))


def test_a_first_forgotten_in_its_own_block(index: RegistryIndex) -> None:
    """With room for one first fragment, a block's second datagram makes the reference
    forget the first one's: its later fragment waits (and is given up), as one by one."""
    k1, k2 = ("10.0.0.1", "10.0.0.2", 1, 17), ("10.0.0.1", "10.0.0.2", 2, 17)
    seq = [
        Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, 5353, 53, fragment=Fragment(k1, 0, True)),
        Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, 123, 53, fragment=Fragment(k2, 0, True)),
        Decoded(1, "10.0.0.1", "10.0.0.2", "udp", 17, fragment=Fragment(k1, 1480, False)),
    ]
    items = [(d, 1_700_000_000 * 10**9 + i * 1000) for i, d in enumerate(seq)]
    with pytest.MonkeyPatch.context() as mp:
        for module in (annotator_module, vector_module):
            mp.setattr(module, "_MAX_FRAGMENT_KEYS", 1)
        a, b, ref, vec = both(index, [batch_of(items, 1)])
    assert_same(a, b, ref, vec)
    assert b[2].src_port is None and vec.counts.unresolved_fragments == 1


def test_concat_of_slices_is_the_batch(index: RegistryIndex) -> None:
    """Slices of a batch joined again give its records (VLAN tags and special rows
    renumbered with them)."""
    vec = VectorAnnotator(index)
    for path in capture_files():
        batches = [lb for b in decoded(path, 8 << 20) for lb in vec.feed(b)]
        batches.extend(vec.finish())
        for lb in batches:
            n = len(lb)
            cuts = [0, n // 3, n // 3, n // 2 + 1, n]
            parts = [lb.slice(a, b) for a, b in pairwise(cuts)]
            joined = LabelledBatch.concat([p for p in parts if len(p)] or [lb])
            assert list(joined.iter_records()) == list(lb.iter_records()), path.name
