"""A block writer and its record writer fed the same packets under a text stream."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portsniff.annotate.vector import LabelledBatch, VectorAnnotator
from portsniff.registry.index import RegistryIndex
from tests.annotate.test_vector import decoded


def written(
    index: RegistryIndex,
    path: Path,
    fast_writer: Callable[[Any], Any],
    slow_writer: Callable[[Any], Any],
    encoding: str,
    tweak: Callable[[int, LabelledBatch], None] | None = None,
) -> tuple[bytes, bytes]:
    """The bytes the block writer put under a text stream of ``encoding`` (text written
    before and after), and the record writer's text encoded the same way. ``tweak``
    may change each batch (with its block's number) before both writers see it."""
    vec = VectorAnnotator(index)
    raw = io.BytesIO()
    fast = io.TextIOWrapper(raw, encoding=encoding, newline="")
    slow = io.StringIO()
    fw, sw = fast_writer(fast), slow_writer(slow)
    fast.write("# before\n")
    slow.write("# before\n")
    for k, batch in enumerate(decoded(path, 1 << 15)):
        for lb in vec.feed(batch):
            if tweak is not None:
                tweak(k, lb)
            fw.write_batch(lb)
            for r in lb.iter_records():
                sw.write(r)
    fast.write("# after\n")
    slow.write("# after\n")
    fast.flush()
    return raw.getvalue(), slow.getvalue().encode(encoding)
