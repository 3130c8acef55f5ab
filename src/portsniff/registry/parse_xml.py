"""IANA's XML format of the port registry, rendered into the CSV's 12 columns.

The mapping is the one IANA uses for its CSV (checked record by record against it):
``<assignee>`` person -> Assignee; other person xrefs -> Contact (a record without
``<assignee>`` lists its people once, and the CSV repeats them in both columns); other
xrefs -> Reference as ``[text]`` if the xref has text, else ``[RFC6335]`` for RFCs and
``[data]`` otherwise; ``date``/``updated`` attributes -> Registration/Modification Date;
``<sc>`` -> Service Code; ``<unauthorized>`` -> Unauthorized Use Reported; ``<note>`` ->
Assignment Notes. Person ids are kept as ``[id]``, as in the CSV.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from portsniff.errors import RegistryError
from portsniff.registry.parse_csv import check_record, make_parsed, normalise
from portsniff.registry.parse_text import extract_caveat
from portsniff.registry.record import ParsedRegistry, ServiceRecord

KIND = "iana-xml"
NS = "{http://www.iana.org/assignments}"
REGISTRY_ID = "service-names-port-numbers"


def _xref(x: Element) -> str:
    text = normalise("".join(x.itertext()))
    if text:
        return f"[{text}]"
    data = x.get("data", "")
    return f"[{data.upper()}]" if x.get("type") == "rfc" else f"[{data}]"


def _mixed(e: Element) -> str:
    """Text of an element with inline xrefs as ``[...]`` and breaks/paragraphs as newlines."""
    parts = [e.text or ""]
    for child in e:
        tag = child.tag.removeprefix(NS)
        if tag == "xref":
            parts.append(_xref(child))
        elif tag == "br":
            parts.append("\n")
        elif tag == "paragraph":
            parts.append("\n" + _mixed(child))
        else:
            parts.append(_mixed(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _record(e: Element) -> ServiceRecord:
    def text(tag: str) -> str:
        child = e.find(NS + tag)
        return normalise(_mixed(child)) if child is not None else ""

    people: list[str] = []
    refs: list[str] = []
    for x in e.findall(NS + "xref"):
        (people if x.get("type") == "person" else refs).append(_xref(x))
    assignee_el = e.find(NS + "assignee")
    if assignee_el is not None:
        assignee = "".join(_xref(x) for x in assignee_el.iter(NS + "xref"))
        contact = "".join(people)
    else:
        assignee = contact = "".join(people)
    return ServiceRecord(
        service_name=text("name"),
        port_number=text("number"),
        transport_protocol=text("protocol"),
        description=text("description"),
        assignee=assignee,
        contact=contact,
        registration_date=normalise(e.get("date", "")),
        modification_date=normalise(e.get("updated", "")),
        reference="".join(refs),
        service_code=text("sc"),
        unauthorized_use_reported=text("unauthorized"),
        assignment_notes=text("note"),
    )


def parse_iana_xml(data: bytes, path: str) -> ParsedRegistry:
    """Parse IANA's ``service-names-port-numbers.xml`` safely (no DTDs, no entities)."""
    import defusedxml
    import defusedxml.ElementTree as SafeET

    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except ParseError as exc:
        line, col = exc.position
        raise RegistryError(f"{path}: line {line}, column {col}: malformed XML") from None
    except defusedxml.DefusedXmlException as exc:
        raise RegistryError(f"{path}: refused unsafe XML ({type(exc).__name__})") from None
    except (ValueError, UnicodeError, LookupError) as exc:  # LookupError: unknown encoding
        raise RegistryError(f"{path}: unreadable XML ({exc})") from None
    if root.tag != NS + "registry":
        raise RegistryError(f"{path}: not an IANA registry (root element {root.tag!r})")
    if root.get("id", REGISTRY_ID) != REGISTRY_ID:
        raise RegistryError(f"{path}: IANA registry {root.get('id')!r} is not the port registry")
    records = []
    for i, e in enumerate(root.iter(NS + "record"), 1):
        records.append(check_record(_record(e), path, f"record {i}"))
    updated_el = root.find(NS + "updated")
    updated = normalise(updated_el.text or "") if updated_el is not None else ""
    caveat = None
    for note in root.findall(NS + "note"):
        caveat = extract_caveat("".join(note.itertext()))
        if caveat:
            break
    return make_parsed(KIND, path, data, records, updated or None, caveat)
