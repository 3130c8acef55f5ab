"""--workers: chunks of a pcap decoded in worker processes give the same summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portsniff.annotate import parallel
from portsniff.annotate.pipeline import AnnotateRun
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from portsniff.summary import Summary
from portsniff.summary_vector import VectorSummaryBuilder
from tests.annotate.test_vector import workload
from tests.conftest import CAPTURES


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def summary(
    index: RegistryIndex, paths: list[str], workers: int, bpf: str | None = None
) -> tuple[dict[str, object], AnnotateRun]:
    run = AnnotateRun(paths, index, workers=workers, bpf=bpf, keep_going=True)
    b = VectorSummaryBuilder("caveat", [])
    for lb in run.batches():
        b.add_batch(lb)
    for f in run.files:
        b.add_file(f.as_dict(), f.linktypes)
    s: Summary = b.finish()
    d = s.to_dict()
    d["flows"] = sorted(json.dumps(f, sort_keys=True) for f in d["flows"])
    return d, run


def test_chunks_equal_one_reader(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(workload(tmp_path, 6_000, 9))
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 50_000)  # dozens of chunks, many guesses
    one, _ = summary(index, [path], 1)
    two, run = summary(index, [path], 2)
    assert one == two
    assert run.files[0].packets == 6_000
    # With a filter, and with a small capture in front (read in process).
    small = str(CAPTURES / "ics-bacnet-enip.pcap")
    assert summary(index, [small, path], 1, "tcp")[0] == summary(index, [small, path], 3, "tcp")[0]


def test_damaged_tail_is_reported_the_same(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = workload(tmp_path, 3_000, 5).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 100])
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 40_000)
    one, r1 = summary(index, [str(cut)], 1)
    two, r2 = summary(index, [str(cut)], 2)
    assert one == two
    assert r1.files[0].damage == r2.files[0].damage and r1.files[0].damage is not None


def test_guess_skips_to_a_record_boundary(tmp_path: Path) -> None:
    path = workload(tmp_path, 500, 1)
    units = parallel.plan(str(path), "fast", None, chunk=10_000)
    assert len(units) > 5 and units[0].exact and not units[1].exact
    starts = [parallel.decode_unit(units[0]).next_start]
    res = parallel.decode_unit(units[1])
    assert res.start == starts[0]  # the guess found the exact boundary
