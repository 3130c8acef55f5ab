"""Consumer processes: batches cross intact, results and errors come back, nothing hangs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from portsniff.annotate import stage
from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.errors import CaptureError
from portsniff.registry.index import RegistryIndex
from portsniff.registry.sources import open_registry
from tests.annotate.test_vector import decoded, workload

pytestmark = pytest.mark.skipif(not stage.available(), reason="needs fork")


@pytest.fixture(scope="module")
def index() -> RegistryIndex:
    return open_registry(None)


def labelled(index: RegistryIndex, path: Path) -> tuple[VectorAnnotator, list[LabelledBatch]]:
    vec = VectorAnnotator(index)
    out: list[LabelledBatch] = []
    for batch in decoded(path, 1 << 15):
        out.extend(vec.feed(batch))
    out.extend(vec.finish())
    return vec, out


class Records:
    """Collects every record (as dicts) and says how many batches came."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.batches = 0

    def add(self, lb: LabelledBatch) -> None:
        self.batches += 1
        self.rows.extend(r.as_dict() for r in lb.iter_records())

    def finish(self) -> tuple[int, list[dict[str, Any]]]:
        return self.batches, self.rows


def test_batches_cross_intact(index: RegistryIndex, tmp_path: Path) -> None:
    vec, lbs = labelled(index, workload(tmp_path, 3_000, 4))
    child = stage.start(Records, vec.labels)
    assert child is not None
    for lb in lbs:
        child.add(lb)
    batches, rows = child.finish()
    assert batches == len(lbs)
    assert rows == [r.as_dict() for lb in lbs for r in lb.iter_records()]


def test_state_round_trip(index: RegistryIndex, tmp_path: Path) -> None:
    vec, lbs = labelled(index, workload(tmp_path, 500, 2))
    for lb in lbs:
        again = LabelledBatch.from_state(lb.state(), vec.labels)
        assert list(again.iter_records()) == list(lb.iter_records())


class Failing:
    def __init__(self, exc: BaseException, after: int = 0) -> None:
        self.exc, self.after = exc, after

    def add(self, lb: LabelledBatch) -> None:
        if self.after == 0:
            raise self.exc
        self.after -= 1

    def finish(self) -> None:
        return None


@pytest.mark.parametrize(
    ("exc", "raised", "message"),
    [
        (CaptureError("x.pcap: damaged at byte 9"), stage.StageError, "damaged at byte 9"),
        (RuntimeError("oops"), stage.StageError, "RuntimeError: oops"),
        (BrokenPipeError(), BrokenPipeError, None),
    ],
)
def test_consumer_errors_reach_the_parent(
    index: RegistryIndex, tmp_path: Path, exc: BaseException, raised: type, message: str | None
) -> None:
    vec, lbs = labelled(index, workload(tmp_path, 2_000, 3))
    child = stage.start(lambda: Failing(exc, after=1), vec.labels)
    assert child is not None
    with pytest.raises(raised, match=message):
        for lb in lbs * 50:  # the child stops after one batch; a send then fails
            child.add(lb)
        child.finish()


def test_a_dead_child_is_an_error_not_a_hang(index: RegistryIndex, tmp_path: Path) -> None:
    vec, lbs = labelled(index, workload(tmp_path, 500, 5))

    class Dies:
        def add(self, lb: LabelledBatch) -> None:
            os._exit(3)

        def finish(self) -> None:
            return None

    child = stage.start(Dies, vec.labels)
    assert child is not None
    with pytest.raises(stage.StageError, match=r"died|stopped"):
        for lb in lbs * 50:
            child.add(lb)
        child.finish()


def test_abort_stops_the_child(index: RegistryIndex, tmp_path: Path) -> None:
    vec, lbs = labelled(index, workload(tmp_path, 500, 6))
    child = stage.start(Records, vec.labels)
    assert child is not None
    child.add(lbs[0])
    child.abort()
    assert not child._process.is_alive()
