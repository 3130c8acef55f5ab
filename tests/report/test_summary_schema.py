"""docs/summary.schema.json describes what ``--format json`` writes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from portsniff.report.summaries import ReportOptions
from portsniff.report.summary_json import render
from tests.report.summary_samples import HOSTILE, empty_summary, sample_summary

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "summary.schema.json"


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def validate(doc: Any) -> None:
    jsonschema.Draft202012Validator(schema()).validate(doc)


def as_json(summary: Any, top: int | None = None) -> Any:
    buf = io.StringIO()
    render(summary, buf, ReportOptions(top=top))
    return json.loads(buf.getvalue())


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema()["required"]) == {
        "caveat",
        "registry",
        "capture",
        "services",
        "unknown_ports",
        "flows",
        "dnssd",
        "transports",
    }


@pytest.mark.parametrize("top", [None, 1, 3])
def test_sample_validates(top: int | None) -> None:
    doc = as_json(sample_summary(), top)
    validate(doc)
    if top is None:
        assert len(doc["flows"]) == len(sample_summary().flows)


def test_empty_validates() -> None:
    validate(as_json(empty_summary()))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_and_unicode_validate(hostile: str) -> None:
    validate(as_json(sample_summary(hostile=hostile)))
    validate(as_json(sample_summary(unicode=True)))


def test_schema_rejects_what_it_should() -> None:
    doc = as_json(sample_summary())
    bad = json.loads(json.dumps(doc))
    bad["services"][0]["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    del bad["caveat"]
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["flows"][0]["resp_port"] = 70000
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_flow_properties_are_flowrecord_fields() -> None:
    from portsniff.flows import FLOW_FIELDS

    flow = schema()["$defs"]["flow"]
    assert list(flow["properties"]) == list(FLOW_FIELDS)
    assert flow["required"] == list(FLOW_FIELDS)
