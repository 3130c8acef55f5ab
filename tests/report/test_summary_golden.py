"""Golden files for every summary format: a hand-built summary, and (when the sample
captures are there) the real pipeline on each of ``captures/`` and on the directory.

Regenerate after an intended change with ``PORTSNIFF_UPDATE_GOLDEN=1 pytest
tests/report/test_summary_golden.py`` and review the diff. Goldens are deterministic:
text at width 120 without colour, paths relative to the project root.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from portsniff.report.summaries import ReportOptions, reporter
from portsniff.report.summary_csv import write_tables
from portsniff.summary import Summary
from tests.conftest import CAPTURES, ROOT
from tests.report.summary_samples import sample_summary

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("PORTSNIFF_UPDATE_GOLDEN") == "1"
REGISTRY = "src/portsniff/data/iana-registry-excerpt.txt"
EXT = {"text": "txt", "markdown": "md", "csv": "csv", "json": "json", "html": "html"}
OPTIONS = ReportOptions(width=120, color=False)
SCHEMA = json.loads((ROOT / "docs" / "summary.schema.json").read_text(encoding="utf-8"))


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run with PORTSNIFF_UPDATE_GOLDEN=1 to write it")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def rendered(summary: Summary, fmt: str) -> str:
    buf = io.StringIO()
    reporter(fmt)(summary, buf, OPTIONS)
    text = buf.getvalue()
    if fmt == "json":
        jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(text))
    return text


@pytest.mark.parametrize("fmt", list(EXT))
def test_sample_golden(fmt: str) -> None:
    check(f"sample.{EXT[fmt]}", rendered(sample_summary(), fmt))


def test_sample_tables_golden(tmp_path: Path) -> None:
    for path in write_tables(sample_summary(), tmp_path, OPTIONS):
        check(f"sample-tables/{path.name}", path.read_text(encoding="utf-8"))


# -- the real pipeline on the sample captures -------------------------------------------


def _captures() -> list[str]:
    if not CAPTURES.is_dir():
        return []
    return sorted(
        p.name
        for p in CAPTURES.iterdir()
        if p.suffix in (".pcap", ".pcapng") and p.name != "not-a-capture.pcap"
    )


def pipeline(paths: list[str], monkeypatch: pytest.MonkeyPatch) -> Summary:
    from portsniff.cli_summary import build_summary

    if not _captures():
        pytest.skip(f"no sample captures in {CAPTURES} (python captures/make_captures.py)")
    monkeypatch.chdir(ROOT)
    args = argparse.Namespace(paths=paths, registry=[REGISTRY], engine="fast", filter=None)
    summary: Any
    summary, _damaged = build_summary(args)
    assert isinstance(summary, Summary)
    return summary


@pytest.mark.parametrize("capture", _captures() or ["(none)"])
def test_capture_golden(capture: str, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pipeline([f"captures/{capture}"], monkeypatch)
    stem = capture.rsplit(".", 1)[0]
    for fmt in ("text", "markdown", "csv", "json"):
        check(f"captures/{stem}.{EXT[fmt]}", rendered(summary, fmt))


def test_capture_directory_golden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    summary = pipeline(["captures"], monkeypatch)
    assert any(f.get("error") for f in summary.files), "not-a-capture.pcap is reported"
    for fmt in EXT:
        check(f"captures/all.{EXT[fmt]}", rendered(summary, fmt))
    for path in write_tables(summary, tmp_path, OPTIONS):
        check(f"captures/all-tables/{path.name}", path.read_text(encoding="utf-8"))
