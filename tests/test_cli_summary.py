"""The summary command: how many flows it keeps, and that its reports do not change."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from portsniff import summary as summary_module
from portsniff.cli_summary import build_summary, kept_flows
from portsniff.report.summaries import DEFAULT_TOP, ReportOptions, reporter
from tests.annotate.test_vector import workload


def test_kept_flows_are_what_the_report_shows() -> None:
    def args(fmt: str, top: int | None = None) -> argparse.Namespace:
        return argparse.Namespace(format=fmt, top=top)

    assert kept_flows(args("json")) is None  # every flow is listed
    assert kept_flows(args("csv")) is None
    for fmt in ("text", "markdown", "html"):
        assert kept_flows(args(fmt)) == DEFAULT_TOP
    assert kept_flows(args("json", 7)) == 7


@pytest.mark.parametrize("fmt", ["markdown", "html", "json"])
def test_reports_of_the_kept_flows_equal_those_of_all(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary that keeps only its top flows (pruned as often as can be) writes the
    report of the one that keeps them all: the same top flows and conversation count."""
    from portsniff.cli import build_parser

    path = workload(tmp_path, 20_000, 9)
    monkeypatch.setattr(summary_module, "PRUNE_SLACK", 0)
    top = None if fmt != "json" else 5
    argv = ["summary", str(path), "--format", fmt, "-q"] + ([] if top is None else ["--top", "5"])
    args = build_parser().parse_args(argv)
    kept, _ = build_summary(args)
    monkeypatch.setattr("portsniff.cli_summary.kept_flows", lambda a: None)
    whole, _ = build_summary(args)
    assert kept.flows_dropped > 0 and whole.flows_dropped == 0
    assert kept.flow_total == whole.flow_total
    outs = []
    for s in (kept, whole):
        out = io.StringIO()
        reporter(fmt)(s, out, ReportOptions(top=top))
        outs.append(out.getvalue())
    assert outs[0] == outs[1]
