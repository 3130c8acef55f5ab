"""Tests of portsniff.registry.diff."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.registry.diff import RecordChange, changed_fields, diff_registries, record_key
from portsniff.registry.record import FIELDS, ServiceRecord


def rec(name: str, port: str, proto: str, description: str = "d", **kw: str) -> ServiceRecord:
    fields = dict.fromkeys(FIELDS, "")
    fields.update(
        service_name=name, port_number=port, transport_protocol=proto, description=description
    )
    fields.update(kw)
    return ServiceRecord(**fields)


def test_identical_versions_have_no_differences() -> None:
    records = [rec("http", "80", "tcp"), rec("", "0", "tcp", "Reserved")]
    diff = diff_registries(records, list(records))
    assert diff.empty
    assert diff.counts() == {"added": 0, "removed": 0, "changed": 0, "unchanged": 2}


def test_added_removed_and_changed_fields() -> None:
    old = [rec("a", "1", "tcp"), rec("b", "2", "tcp"), rec("c", "3", "udp", assignee="[X]")]
    new = [
        rec("a", "1", "tcp"),
        rec("c", "3", "udp", "new text", assignee="[Y]"),
        rec("d", "4", "tcp"),
    ]
    diff = diff_registries(old, new)
    assert [r.service_name for r in diff.added] == ["d"]
    assert [r.service_name for r in diff.removed] == ["b"]
    assert len(diff.changed) == 1
    change = diff.changed[0]
    assert change.fields == ("description", "assignee")
    assert change.as_dict()["old"] == {"description": "d", "assignee": "[X]"}
    assert change.as_dict()["new"] == {"description": "new text", "assignee": "[Y]"}
    assert diff.unchanged == 1


def test_rewrapped_text_is_not_a_change() -> None:
    old = rec("a", "1", "tcp", "Some long\ndescription  here")
    new = rec("a", "1", "tcp", "Some long description here")
    assert changed_fields(old, new) == ()
    assert diff_registries([old], [new]).empty


def test_capitalisation_of_a_name_is_a_change_not_a_replacement() -> None:
    diff = diff_registries([rec("BACnet", "47808", "udp")], [rec("bacnet", "47808", "udp")])
    assert not diff.added and not diff.removed
    assert diff.changed[0].fields == ("service_name",)


def test_unnamed_rows_are_keyed_by_port_and_protocol() -> None:
    # An unassigned range split by a new assignment: old range removed, pieces added.
    old = [rec("", "45001", "udp", "Reserved"), rec("", "272-279", "", "Unassigned")]
    new = [
        rec("", "45001", "udp", "Reserved"),
        rec("", "272-274", "", "Unassigned"),
        rec("new-svc", "275", "tcp"),
        rec("", "276-279", "", "Unassigned"),
    ]
    diff = diff_registries(old, new)
    assert [r.port_number for r in diff.removed] == ["272-279"]
    assert [r.port_number for r in diff.added] == ["272-274", "275", "276-279"]
    assert diff.unchanged == 1


def test_duplicate_keys_pair_in_file_order() -> None:
    old = [rec("rdp", "", "", "first"), rec("rdp", "", "", "second")]
    new = [rec("rdp", "", "", "first"), rec("rdp", "", "", "second!"), rec("rdp", "", "", "3")]
    diff = diff_registries(old, new)
    assert [c.new.description for c in diff.changed] == ["second!"]
    assert [r.description for r in diff.added] == ["3"]
    assert diff.unchanged == 1
    assert record_key(old[0]) == ("rdp", "", "")


names = st.sampled_from(["", "a", "A", "b", "http", "x11"])
ports = st.sampled_from(["", "1", "80", "6000-6063"])
protos = st.sampled_from(["", "tcp", "udp"])
texts = st.sampled_from(["", "x", "y", "x  y", "x\ny"])
records = st.builds(rec, names, ports, protos, texts, assignee=texts)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=12), st.lists(records, max_size=12))
def test_diff_accounts_for_every_record(old: list[ServiceRecord], new: list[ServiceRecord]) -> None:
    diff = diff_registries(old, new)
    assert diff.unchanged + len(diff.changed) + len(diff.added) == len(new)
    assert diff.unchanged + len(diff.changed) + len(diff.removed) == len(old)
    assert all(c.fields and record_key(c.old) == record_key(c.new) for c in diff.changed)
    assert diff_registries(new, old).counts()["added"] == len(diff.removed)
    assert diff_registries(old, old).empty


def test_change_as_dict_lists_only_changed_fields() -> None:
    old = rec("a", "1", "tcp")
    change = RecordChange(old, replace(old, contact="[Z]"), ("contact",))
    assert change.as_dict()["fields"] == ["contact"]
    assert change.as_dict()["new"] == {"contact": "[Z]"}


@pytest.fixture(scope="module")
def shared_versions() -> tuple[object, object]:
    from portsniff.registry.load import load_registry_file
    from tests.conftest import shared_path

    csv_path: Path = shared_path("registry", "service-names-port-numbers.csv")
    xml_path: Path = shared_path("registry", "service-names-port-numbers.xml")
    return load_registry_file(csv_path), load_registry_file(xml_path)


def test_official_csv_to_xml_matches_the_readme(shared_versions: tuple[object, object]) -> None:
    """../shared/registry/README.md: the XML has 42 added, 8 removed and 30 changed."""
    csv_reg, xml_reg = shared_versions
    diff = diff_registries(csv_reg.records, xml_reg.records)  # type: ignore[attr-defined]
    assert (len(diff.added), len(diff.removed), len(diff.changed)) == (42, 8, 30)
    assert len(xml_reg.records) - len(csv_reg.records) == 34  # type: ignore[attr-defined]
    # The removed rows are unassigned ranges that new assignments split up.
    assert all(not r.service_name for r in diff.removed)
    back = diff_registries(xml_reg.records, csv_reg.records)  # type: ignore[attr-defined]
    assert (len(back.added), len(back.removed), len(back.changed)) == (8, 42, 30)
