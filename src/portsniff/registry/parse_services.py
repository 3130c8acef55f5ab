"""services(5) files: the system's ``/etc/services`` and Wireshark's ``services``.

Lines read ``name port/proto [alias ...] [# comment]``; Wireshark merges protocols
(``80/tcp/udp/sctp``) and allows port ranges (``6000-6063/tcp/udp``). The comment becomes
the description. An alias becomes a record of its own whose Assignment Notes say
``This entry is an alias to "name".``, IANA's own wording, so that the index treats it
as IANA treats its historic alias names. Transports other than tcp/udp/sctp/dccp
(``ddp`` for AppleTalk) carry no IP ports and are left out.
"""

from __future__ import annotations

import re

from portsniff.errors import RegistryError
from portsniff.registry.parse_csv import check_record, decode_utf8, make_parsed, normalise
from portsniff.registry.record import TRANSPORTS, ParsedRegistry, ServiceRecord

KIND_SERVICES = "services"
KIND_WIRESHARK = "wireshark-services"

_ENTRY = re.compile(r"(?P<port>\d+(?:-\d+)?)/(?P<protos>[A-Za-z0-9]+(?:/[A-Za-z0-9]+)*)")


def is_wireshark(text: str) -> bool:
    """True when the file's leading comment block says it is Wireshark's services file."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return False
        if "wireshark" in stripped.lower():
            return True
    return False


def alias_note(name: str) -> str:
    """IANA's Assignment Notes wording for a historic alias of ``name``."""
    return f'This entry is an alias to "{name}".'


def _record(name: str, port: str, proto: str, description: str, notes: str) -> ServiceRecord:
    empty = ""
    return ServiceRecord(
        name, port, proto, description, empty, empty, empty, empty, empty, empty, empty, notes
    )


def parse_services(data: bytes, path: str) -> ParsedRegistry:
    """Parse a services(5) file; kind "wireshark-services" when its header names Wireshark."""
    text = decode_utf8(data, path)
    kind = KIND_WIRESHARK if is_wireshark(text) else KIND_SERVICES
    records: list[ServiceRecord] = []
    for n, line in enumerate(text.splitlines(), 1):
        body, _, comment = line.partition("#")
        words = body.split()
        if not words:
            continue
        where = f"line {n}"
        if len(words) < 2:
            raise RegistryError(f"{path}: {where}: expected 'name port/protocol'")
        m = _ENTRY.fullmatch(words[1])
        if m is None:
            raise RegistryError(f"{path}: {where}: expected port/protocol, found {words[1]!r}")
        name, port = words[0], m.group("port")
        description = normalise(comment)
        for proto in m.group("protos").lower().split("/"):
            if proto not in TRANSPORTS:
                continue
            record = _record(name, port, proto, description, "")
            records.append(check_record(record, path, where))
            records.extend(
                _record(alias, port, proto, description, alias_note(name))
                for alias in words[2:]
                if alias != name
            )
    return make_parsed(kind, path, data, records, None)
