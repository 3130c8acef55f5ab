"""Summaries of a live capture folded in large blocks.

Reads from the capture tool give blocks of a few thousand packets, and the columnar
summary pays some costs per block in proportion to the flows it holds; folding the
labelled blocks into the summary a second or so at a time pays them far less often.
The summary is the same: it does not depend on where blocks are cut. Blocks are not
joined across a flow slot's new use (LabelledBatch.one_flow_per_slot stays true: the
summary then groups rows by their labeller's flow), nor beyond the flow table's idle
timeout (flows expiring inside a longer block are counted packet by packet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portsniff.annotate.vector import LabelledBatch
    from portsniff.summary_vector import VectorSummaryBuilder

#: Labelled packets held before they are folded into the summary.
FOLD_PACKETS = 100_000


def concat_batches(batches: list[LabelledBatch]) -> LabelledBatch:
    """One LabelledBatch holding the rows of ``batches`` (same file), in order."""
    from portsniff.annotate.vector import LabelledBatch

    return LabelledBatch.concat(batches)


class FoldedSummary:
    """Holds labelled blocks and folds them into ``builder`` ``fold_packets`` at a time,
    blocks of one file together (call :meth:`flush` before finishing the summary)."""

    def __init__(self, builder: VectorSummaryBuilder, fold_packets: int = FOLD_PACKETS) -> None:
        self.builder = builder
        self.fold_packets = fold_packets
        self._held: list[LabelledBatch] = []
        self._count = 0
        self._lo = self._hi = 0  # the held rows' first and last timestamps (ns)
        # Imported here, not with the module: the CLI imports every command's module.
        from portsniff.annotate.vector import SlotUse

        self._slots = SlotUse()  # the flow slots the held blocks use

    def add_batch(self, lb: LabelledBatch) -> None:
        """Hold ``lb``; fold what is held once it reaches ``fold_packets``."""
        if not len(lb):
            return
        lo, hi = int(lb.ts_ns.min()), int(lb.ts_ns.max())
        if self._held and (
            lb.file != self._held[0].file or self._reuses(lb) or self._too_long(lo, hi)
        ):
            self.flush()  # blocks of one file only are joined
        if self._held:
            lo, hi = min(self._lo, lo), max(self._hi, hi)
        self._lo, self._hi = lo, hi
        self._held.append(lb)
        self._slots.add(lb)
        self._count += len(lb)
        if self._count >= self.fold_packets:
            self.flush()

    def _too_long(self, lo: int, hi: int) -> bool:
        """Whether the held rows and rows from ``lo`` to ``hi`` (ns) span more than the
        flow table's idle timeout."""
        span = max(self._hi, hi) - min(self._lo, lo)
        return span > self.builder.flow_table.idle_timeout * 1e9

    def _reuses(self, lb: LabelledBatch) -> bool:
        """Whether ``lb`` gives a new flow a slot that the held blocks use."""
        return lb.flow_space != self._held[0].flow_space or self._slots.reused_by(lb)

    def flush(self) -> None:
        """Fold everything held into the summary."""
        if self._held:
            self.builder.add_batch(concat_batches(self._held))
            self._held = []
            self._count = 0
            self._slots.clear()
