"""Folding labelled blocks into the summary in large blocks gives the same summary."""

from __future__ import annotations

import subprocess
import sys

import pytest

from portsniff.annotate.pipeline import AnnotateRun
from portsniff.annotate.vector import LabelledBatch
from portsniff.live.fold import FoldedSummary, concat_batches
from portsniff.registry.sources import open_registry
from portsniff.summary_vector import VectorSummaryBuilder
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> list[LabelledBatch]:
    capture = tmp_path_factory.mktemp("fold") / "w.pcap"
    subprocess.run(
        [sys.executable, str(shared_path("bench", "gen_pcap.py")), "--packets", "5000",
         "--seed", "7", "--flows", "200", "--out", str(capture)],
        check=True, capture_output=True,
    )  # fmt: skip
    index = open_registry([str(shared_path("registry", "service-names-port-numbers.xml"))])
    whole = list(AnnotateRun([str(capture)], index, vector=True).batches())
    # Cut into uneven blocks, as reads from a pipe are.
    out = []
    for lb in whole:
        a = 0
        for size in [1, 700, 13, 2048, 333] * 100:
            if a >= len(lb):
                break
            out.append(lb.slice(a, min(a + size, len(lb))))
            a += size
    return out


def test_concat_gives_back_the_rows(batches: list[LabelledBatch]) -> None:
    joined = concat_batches(batches)
    assert len(joined) == 5000
    # Rows with details (VLAN tags, fragments) keep their place.
    assert joined.tagged().any() and joined.fragment.any()
    assert list(joined.iter_records()) == [r for b in batches for r in b.iter_records()]


@pytest.mark.parametrize("fold", [1, 999, 100_000])
def test_folded_summary_is_the_summary(batches: list[LabelledBatch], fold: int) -> None:
    direct = VectorSummaryBuilder("caveat", [])
    for lb in batches:
        direct.add_batch(lb)
    folded_builder = VectorSummaryBuilder("caveat", [])
    folded = FoldedSummary(folded_builder, fold)
    for lb in batches:
        folded.add_batch(lb)
    folded.flush()
    a, b = direct.finish().to_dict(), folded_builder.finish().to_dict()
    assert a["capture"]["packets"] == 5000
    assert a == b
