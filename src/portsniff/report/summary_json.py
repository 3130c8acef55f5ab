"""The summary as one JSON document (schema: docs/summary.schema.json). Every flow is
listed unless ``--top`` is given."""

from __future__ import annotations

import json
from typing import TextIO

from portsniff.report.summaries import ReportOptions
from portsniff.summary import Summary


def render(summary: Summary, stream: TextIO, options: ReportOptions) -> None:
    json.dump(summary.to_dict(options.top), stream, ensure_ascii=False, indent=1)
    stream.write("\n")
