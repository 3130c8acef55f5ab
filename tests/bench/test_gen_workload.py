"""The benchmark workload's link wrappings: the same traffic inside, every engine's view."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from portsniff.capture.reader import open_capture
from portsniff.decode.batch import PROTO_CODE
from portsniff.decode.fast import FastEngine, batch_differences, reference_batch
from tests.conftest import ROOT


def _generate(tmp_path: Path, link: str) -> Path:
    out = tmp_path / f"{link}.pcap"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gen_workload.py"),
            "--packets",
            "3000",
            "--flows",
            "200",
            "--link",
            link,
            "--out",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out


def _view(path: Path) -> tuple[Counter[tuple[int, ...]], Counter[int]]:
    """The packets' (proto, ports) and VLAN tags as the reference decodes them; the fast
    engine decodes every block alike, with no packet left to the reference."""
    packets: Counter[tuple[int, ...]] = Counter()
    tags: Counter[int] = Counter()
    engine = FastEngine(str(path))
    with open_capture(str(path)) as reader:
        for block in reader.blocks():
            ref = reference_batch(block)
            assert batch_differences(engine.decode(block), ref) == []
            for i in range(len(ref)):
                packets[(int(ref.proto[i]), int(ref.src_port[i]), int(ref.dst_port[i]))] += 1
                tags[len(ref.vlan(i))] += 1
    # IPv4 fragments (their Decoded kept beside the columns) are all the reference did.
    assert engine.fallbacks == 0
    return packets, tags


@pytest.mark.parametrize("link", ["qinq", "mpls", "pppoe"])
def test_links_wrap_the_same_traffic(tmp_path: Path, link: str) -> None:
    plain, plain_tags = _view(_generate(tmp_path, "ethernet"))
    wrapped, tags = _view(_generate(tmp_path, link))
    assert wrapped == plain
    if link == "qinq":
        arp = sum(n for (proto, *_), n in plain.items() if proto == PROTO_CODE["arp"])
        assert arp > 0
        assert tags == Counter({2: 3000 - arp, 0: arp})  # ARP broadcasts go untagged
    else:
        assert tags == Counter({0: 3000})
    assert plain_tags[1] > 0  # the plain workload's few tagged flows


@pytest.mark.parametrize("link", ["vxlan", "gre", "ipip", "geneve"])
def test_tunnels_carry_the_same_traffic(tmp_path: Path, link: str) -> None:
    """Inside VXLAN, GRE, IP or Geneve, the same IP packets: the tunnels' inner headers are the plain
    workload's packets, the fast engine's as the reference's."""
    plain, _ = _view(_generate(tmp_path, "ethernet"))
    path = _generate(tmp_path, link)
    carried: Counter[tuple[int, ...]] = Counter()
    engine = FastEngine(str(path))
    with open_capture(str(path)) as reader:
        for block in reader.blocks():
            batch = engine.decode(block)
            assert batch_differences(batch, reference_batch(block)) == []
            for i in range(len(batch)):
                d = batch.detail(i)
                if d is not None and d.inner and d.inner[0].src_ip is not None:
                    e = d.inner[0]
                    ports = [-1 if p is None else p for p in (e.src_port, e.dst_port)]
                    carried[(PROTO_CODE[e.proto], *ports)] += 1
    non_ip = (PROTO_CODE["arp"], PROTO_CODE["other"])
    assert carried == Counter({k: n for k, n in plain.items() if k[0] not in non_ip})
    assert engine.fallbacks < 100  # (inner fragments may go to the reference)
