"""--workers: chunks of a pcap decoded in worker processes (beyond the consumer's), and a
consumer process, give the same summary and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    two, run = summary(index, [path], 4)
    assert run.decode_workers == 2
    assert one == two
    assert run.files[0].packets == 6_000
    # With a filter, and with a small capture in front (read in process).
    small = str(CAPTURES / "ics-bacnet-enip.pcap")
    assert summary(index, [small, path], 1, "tcp")[0] == summary(index, [small, path], 3, "tcp")[0]
    # Two processes: the second is the consumer's, none decodes.
    assert summary(index, [path], 2)[1].decode_workers == 0


def test_damaged_tail_is_reported_the_same(
    index: RegistryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = workload(tmp_path, 3_000, 5).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 100])
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 40_000)
    one, r1 = summary(index, [str(cut)], 1)
    two, r2 = summary(index, [str(cut)], 3)
    assert one == two
    assert r1.files[0].damage == r2.files[0].damage and r1.files[0].damage is not None


def test_guess_skips_to_a_record_boundary(tmp_path: Path) -> None:
    path = workload(tmp_path, 500, 1)
    units = parallel.plan(str(path), "fast", None, chunk=10_000)
    assert len(units) > 5 and units[0].exact and not units[1].exact
    starts = [parallel.decode_unit(units[0]).next_start]
    res = parallel.decode_unit(units[1])
    assert res.start == starts[0]  # the guess found the exact boundary


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 1600), min_size=20, max_size=60),
    st.sampled_from([b"\0", b"\x11", b"\xff"]),
    st.floats(0.0, 1.0),
)
def test_guess_of_whole_packets_with_uniform_payloads(
    sizes: list[int], fill: bytes, cut: float
) -> None:
    """Packets captured whole (captured length = wire length) with zeroed or uniform
    payloads: a chain read 4 bytes off, or in zero bytes, looks plausible to the record
    checks alone; the guess is the first real record at or after the byte."""
    import struct

    from portsniff.capture.pcap import PcapParser

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records, starts, pos = [], [], 24
    for k, n in enumerate(sizes):
        frame = b"\x00\x11\x22\x33\x44\x55" * 2 + b"\x08\x00" + fill * n
        records.append(struct.pack("<IIII", 1_700_000_000 + k, 960_000 + k, len(frame), len(frame)))
        records.append(frame)
        starts.append(pos)
        pos += 16 + len(frame)
    data = header + b"".join(records)
    parser = PcapParser(header, "t")
    at = 24 + int(cut * (starts[len(starts) // 2] - 24))
    want = next(s for s in starts if s >= at)
    sample = data[at : at + 2 * parser.max_caplen + 64 * 16 + 4096]
    eof = at + len(sample) >= len(data)
    assert parallel._guess_start(sample, parser, at, 2 * parser.max_caplen + 1, eof) == want


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_cli_annotate_workers_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], fmt: str
) -> None:
    """Decoding workers plus a writing process (to a file and to a real stdout) write
    exactly what one process writes."""
    from portsniff.annotate import stage
    from portsniff.cli import main

    path = str(workload(tmp_path, 8_000, 11))
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 60_000)
    started = []
    real_start = stage.start
    monkeypatch.setattr(stage, "start", lambda *a: started.append(1) or real_start(*a))
    outs = {}
    for workers in ("1", "2", "3", "auto"):
        out = tmp_path / f"out-{workers}"
        assert main(["annotate", path, "--format", fmt, "--workers", workers, "-o", str(out)]) == 0
        outs[workers] = out.read_bytes()
    assert outs["1"] == outs["2"] == outs["3"] == outs["auto"]
    from portsniff.cli import resolve_workers

    # "2", "3" and "auto" (with more than one CPU) start a writing process.
    expected = (2 + (resolve_workers(0) > 1)) if stage.available() else 0
    assert len(started) == expected
    assert outs["1"].count(b"\n") > 8_000
    capfd.readouterr()
    assert main(["annotate", path, "--format", fmt, "--workers", "2"]) == 0
    assert capfd.readouterr().out.encode() == outs["1"]


def test_cli_summary_workers_give_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portsniff.cli import main

    path = str(workload(tmp_path, 8_000, 12))
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 60_000)
    docs = []
    for workers in ("1", "2", "3"):
        out = tmp_path / f"summary-{workers}.json"
        assert (
            main(["summary", path, "--format", "json", "--workers", workers, "-o", str(out)]) == 0
        )
        docs.append(json.loads(out.read_text()))
    assert docs[0] == docs[1] == docs[2]
    assert docs[0]["capture"]["packets"] == 8_000


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_cli_workers_must_be_a_count_or_auto(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    from portsniff.cli import main

    for command in ("annotate", "summary"):
        with pytest.raises(SystemExit) as exc:
            main([command, str(CAPTURES / "ics-bacnet-enip.pcap"), "--workers", bad])
        assert exc.value.code == 2
        assert "--workers" in capsys.readouterr().err
