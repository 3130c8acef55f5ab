"""Compare two versions of the registry: which records were added, removed or changed.

A record's identity is its *key*: service name, port number and transport protocol, as
IANA writes them. Three details of the registry shape the key:

* Reserved and Unassigned rows have no service name. Their key is then the port number
  (or range) and protocol alone, which is still unique: IANA lists each reserved port
  or unassigned range once per protocol. When IANA splits an unassigned range to make
  room for a new assignment, the old range shows as *removed* and the remaining pieces
  as *added* — that is what happened, so the diff says so rather than guessing a link.
* A few keys repeat inside one version (the DNS-SD name ``rdp`` appears twice with no
  port or protocol). Equal keys are paired in file order: the first ``rdp`` of the old
  version with the first of the new one, and so on; surplus ones are added/removed.
* Service names are compared case-insensitively (IANA treats them so, RFC 6335
  section 5.1), so a change of capitalisation is a *change*, not a removal plus an
  addition.

Field values are compared after collapsing runs of whitespace: IANA's CSV and XML wrap
long texts differently, and re-wrapping is not a change to the registry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from portsniff.registry.record import FIELDS, ServiceRecord

Key = tuple[str, str, str]


def record_key(record: ServiceRecord) -> Key:
    """``(service name casefolded, port number, transport protocol)``."""
    return (
        record.service_name.strip().casefold(),
        record.port_number.strip(),
        record.transport_protocol.strip().lower(),
    )


def _norm(value: str) -> str:
    return " ".join(value.split())


def changed_fields(old: ServiceRecord, new: ServiceRecord) -> tuple[str, ...]:
    """The field names (``FIELDS`` order) whose values differ beyond whitespace."""
    return tuple(name for name in FIELDS if _norm(getattr(old, name)) != _norm(getattr(new, name)))


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One record present in both versions whose fields differ."""

    old: ServiceRecord
    new: ServiceRecord
    fields: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "service_name": self.new.service_name,
            "port_number": self.new.port_number,
            "transport_protocol": self.new.transport_protocol,
            "fields": list(self.fields),
            "old": {name: getattr(self.old, name) for name in self.fields},
            "new": {name: getattr(self.new, name) for name in self.fields},
        }


@dataclass(frozen=True, slots=True)
class RegistryDiff:
    """What changed between two versions, each list in the order of its own file."""

    added: tuple[ServiceRecord, ...]
    removed: tuple[ServiceRecord, ...]
    changed: tuple[RecordChange, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        """True when the two versions hold the same records."""
        return not (self.added or self.removed or self.changed)

    def counts(self) -> dict[str, int]:
        """``{"added": n, "removed": n, "changed": n, "unchanged": n}``."""
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
        }

    def as_dict(self) -> dict[str, object]:
        """Counts plus the records themselves (IANA field names)."""
        return {
            **self.counts(),
            "added_records": [r.as_dict() for r in self.added],
            "removed_records": [r.as_dict() for r in self.removed],
            "changed_records": [c.as_dict() for c in self.changed],
        }


def diff_registries(old: Sequence[ServiceRecord], new: Sequence[ServiceRecord]) -> RegistryDiff:
    """Compare ``old`` with ``new`` (see the module docstring for how records are paired)."""
    old_by_key: dict[Key, list[int]] = defaultdict(list)
    for i, record in enumerate(old):
        old_by_key[record_key(record)].append(i)
    # Pair the n-th occurrence of a key in ``new`` with the n-th in ``old``.
    taken: dict[Key, int] = defaultdict(int)
    matched_old: set[int] = set()
    added: list[ServiceRecord] = []
    changed: list[RecordChange] = []
    unchanged = 0
    for record in new:
        key = record_key(record)
        candidates = old_by_key.get(key, [])
        n = taken[key]
        if n >= len(candidates):
            added.append(record)
            continue
        taken[key] = n + 1
        previous = old[candidates[n]]
        matched_old.add(candidates[n])
        fields = changed_fields(previous, record)
        if fields:
            changed.append(RecordChange(previous, record, fields))
        else:
            unchanged += 1
    removed = tuple(r for i, r in enumerate(old) if i not in matched_old)
    return RegistryDiff(tuple(added), removed, tuple(changed), unchanged)
