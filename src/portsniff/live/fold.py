"""Summaries of a live capture folded in large blocks.

Reads from the capture tool give blocks of a few thousand packets, and the columnar
summary pays some costs per block in proportion to the flows it holds; folding the
labelled blocks into the summary a second or so at a time pays them far less often.
The summary is the same: it does not depend on where blocks are cut.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from portsniff.annotate.vector import LabelledBatch
    from portsniff.summary_vector import VectorSummaryBuilder

#: Labelled packets held before they are folded into the summary.
FOLD_PACKETS = 100_000

_SKIP = {"file", "labels", "vlan", "records"}


def concat_batches(batches: list[LabelledBatch]) -> LabelledBatch:
    """One LabelledBatch holding the rows of ``batches`` (same file), in order."""
    from portsniff.annotate.vector import LabelledBatch

    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    columns: dict[str, Any] = {
        f.name: np.concatenate([getattr(b, f.name) for b in batches])
        for f in dataclasses.fields(LabelledBatch)
        if f.name not in _SKIP
    }
    vlan: dict[int, tuple[int, ...]] = {}
    records: dict[int, Any] = {}
    at = 0
    for b in batches:
        vlan.update((at + i, v) for i, v in b.vlan.items())
        records.update((at + i, r) for i, r in b.records.items())
        at += len(b)
    return LabelledBatch(
        file=first.file, labels=first.labels, vlan=vlan, records=records, **columns
    )


class FoldedSummary:
    """Holds labelled blocks and folds them into ``builder`` ``fold_packets`` at a time
    (call :meth:`flush` before finishing the summary)."""

    def __init__(self, builder: VectorSummaryBuilder, fold_packets: int = FOLD_PACKETS) -> None:
        self.builder = builder
        self.fold_packets = fold_packets
        self._held: list[LabelledBatch] = []
        self._count = 0

    def add_batch(self, lb: LabelledBatch) -> None:
        """Hold ``lb``; fold what is held once it reaches ``fold_packets``."""
        if not len(lb):
            return
        self._held.append(lb)
        self._count += len(lb)
        if self._count >= self.fold_packets:
            self.flush()

    def flush(self) -> None:
        """Fold everything held into the summary."""
        if self._held:
            self.builder.add_batch(concat_batches(self._held))
            self._held = []
            self._count = 0
