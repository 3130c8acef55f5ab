"""PacketRecord.as_dict converts exactly the fields that need it."""

from __future__ import annotations

from dataclasses import fields

from portsniff.annotate import records
from portsniff.annotate.records import PACKET_FIELDS, PacketRecord


def test_nested_fields_are_every_non_scalar_field() -> None:
    nested = {
        f.name
        for f in fields(PacketRecord)
        if f.name in PACKET_FIELDS and ("tuple" in str(f.type) or "Label" in str(f.type))
    }
    assert nested == set(records._NESTED_FIELDS)
