"""IANA's registry web page rendered as text: a header block, then a ``|`` table.

The renderer that made such tables drops empty cells and pads each row with empty cells
at its end, so a cell's column is not its position: a Reserved row reads
``| 45001 | udp | Reserved | ||||||||| `` and a DNS-SD row has no port. Each row's
non-empty cells are therefore matched to columns in order by their content (ports are
digits, protocols are tcp/udp/sctp/dccp, people and references are ``[...]``, dates are
ISO dates), choosing the most plausible of the possible matches. One case cannot be told
apart: a row with one date gives no sign of whether it is the registration or the
modification date; it is taken as the registration date, except for rows without a
service name (Reserved, Unassigned), which IANA dates when they change.
A table whose rows keep their empty cells in place is read by position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from portsniff.errors import RegistryError
from portsniff.registry.parse_csv import (
    check_record,
    decode_utf8,
    make_parsed,
    newest_date,
    normalise,
)
from portsniff.registry.record import IANA_HEADER, TRANSPORTS, ParsedRegistry, ServiceRecord

KIND = "iana-text"
NCOLS = len(IANA_HEADER)
NAME, PORT, PROTO, DESC, ASSIGNEE, CONTACT, REG, MOD, REF, SC, UNAUTH, NOTES = range(NCOLS)

_CAVEAT_START = re.compile(r"PLEASE\s+NOTE\s+THE\s+FOLLOWING\s*:?", re.I)
_BOX_END = re.compile(r"\*{8,}")
_PIPE = re.compile(r"(?<!\\)\|")
_PORT = re.compile(r"\d{1,5}(?:-\d{1,5})?")
_DATE = re.compile(r"\d{4}-\d{2}(?:-\d{2})?")
_BRACKETS = re.compile(r"(?:\[[^\[\]]*\])+")
_REFLIKE = re.compile(r"\[(?:RFC|draft|ITU|ISO|IEEE|https?:)", re.I)
_UNAUTH = re.compile(r"unauthori[sz]ed|unofficial", re.I)
_LAST_UPDATED = re.compile(r"^[-*\s]*Last\s+Updated\s*:?\s*(\S.*)?$", re.I)


def extract_caveat(text: str) -> str | None:
    """IANA's boxed ``PLEASE NOTE THE FOLLOWING`` statement, without the ``*`` box."""
    start = _CAVEAT_START.search(text)
    if start is None:
        return None
    end = _BOX_END.search(text, start.end())
    body = text[start.end() : end.start() if end else len(text)]
    caveat = normalise(body.replace("*", " "))
    return caveat or None


def _kind_of(cell: str) -> set[int]:
    """Columns a cell's content can belong to."""
    cols = {DESC, UNAUTH, NOTES}
    if _PORT.fullmatch(cell):
        cols |= {PORT, SC}
    if cell.lower() in TRANSPORTS:
        cols.add(PROTO)
    if _DATE.fullmatch(cell):
        cols |= {REG, MOD}
    if _BRACKETS.fullmatch(cell):
        cols |= {ASSIGNEE, CONTACT, REF}
    elif cell.isdigit():
        cols.add(SC)
    if (
        not any(c.isspace() for c in cell)
        and any(c.isalpha() for c in cell)
        and not cell.startswith("[")
        and not _DATE.fullmatch(cell)
    ):
        cols.add(NAME)
    return cols


def _penalty(cols: dict[int, str]) -> float | None:
    """How implausible one cell-to-column assignment is; None if it is impossible."""
    if NAME not in cols and PORT not in cols:
        return None
    p = 0.0
    if DESC not in cols:
        p += 5
    elif _PORT.fullmatch(cols[DESC]) or _DATE.fullmatch(cols[DESC]):
        p += 1
    if (ASSIGNEE in cols) != (CONTACT in cols):
        p += 6 if ASSIGNEE in cols else 9
    for c in (ASSIGNEE, CONTACT):
        if c in cols and _REFLIKE.match(cols[c]):
            p += 6
    if REF in cols:
        p += 1 if _REFLIKE.match(cols[REF]) else 3
    if (REG in cols) != (MOD in cols):
        # A lone date: named rows are dated when registered, nameless ones when changed.
        p += 3 if (MOD in cols) == (NAME in cols) else 0
    if PORT in cols and PROTO not in cols and NAME in cols:
        p += 2
    if SC in cols:
        p += 4
    if UNAUTH in cols:
        p += 0.5 if _UNAUTH.search(cols[UNAUTH]) else 4
    if NOTES in cols:
        p += 1 + (2 if _UNAUTH.search(cols[NOTES]) and UNAUTH not in cols else 0)
        p += 4 if cols[NOTES].isdigit() else 0  # a bare number is a service code
    return p


def _assignments(
    cells: list[str], kinds: list[set[int]], i: int, col: int, merges: int
) -> Iterator[dict[int, str]]:
    """Every in-order assignment of cells[i:] to columns >= col (merging up to ``merges``
    neighbouring cells when the table split one cell at a ``|`` inside it)."""
    if i == len(cells):
        if merges == 0:
            yield {}
        return
    if NCOLS - col < len(cells) - i - merges:
        return
    for c in range(col, NCOLS):
        for extra in range(merges + 1):
            if i + extra >= len(cells):
                break
            text = " | ".join(cells[i : i + extra + 1])
            allowed = kinds[i] if extra == 0 else _kind_of(text)
            if c not in allowed:
                continue
            for rest in _assignments(cells, kinds, i + extra + 1, c + 1, merges - extra):
                yield {c: text, **rest}


def _align(cells: list[str], merges: int) -> dict[int, str] | None:
    kinds = [_kind_of(c) for c in cells]
    best: tuple[float, dict[int, str]] | None = None
    for cols in _assignments(cells, kinds, 0, 0, merges):
        p = _penalty(cols)
        if p is not None and (best is None or p < best[0]):
            best = (p, cols)
    return best[1] if best else None


def _split(row: str) -> list[str]:
    body = row.strip()
    parts = _PIPE.split(body[1:-1])
    return [normalise(p.replace("\\|", "|")) for p in parts]


def _rows(lines: list[str], start: int, path: str) -> Iterator[tuple[int, str]]:
    """Join the table's physical lines into rows; yields (first line number, row text)."""
    current: list[str] = []
    first = start
    for n, line in enumerate(lines[start:], start + 1):
        stripped = line.strip()
        if not stripped:
            continue
        text = " ".join(current)
        complete = bool(current) and len(_PIPE.findall(text)) > NCOLS and text.endswith("|")
        if stripped.startswith("|") and (not current or complete):
            if current:
                yield first, text
            current, first = [stripped], n
        elif not current:
            raise RegistryError(f"{path}: line {n}: text after the table")
        else:
            current.append(stripped)
    if current:
        text = " ".join(current)
        # A last row cut inside a cell is lost; one cut after a cell's closing "|" has
        # lost at most the empty cells that pad it (checked by the caller).
        if len(_PIPE.findall(text)) < 3 or not text.endswith("|"):
            raise RegistryError(f"{path}: line {first}: last table row is cut short; truncated")
        yield first, text


def _header(lines: list[str], path: str) -> tuple[int, str | None, str | None]:
    """(index of the table's header line, Last Updated date, caveat)."""
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|"):
            names = [normalise(c) for c in _PIPE.split(line.strip().strip("|"))]
            for wanted in IANA_HEADER:
                if wanted not in names:
                    raise RegistryError(f"{path}: line {i + 1}: table has no {wanted!r} column")
            if names != list(IANA_HEADER):
                raise RegistryError(f"{path}: line {i + 1}: table columns are not IANA's order")
            head = "\n".join(lines[:i])
            updated = None
            for j, h in enumerate(lines[:i]):
                m = _LAST_UPDATED.match(h)
                if m:
                    value = m.group(1) or next(
                        (x.strip("-* \t") for x in lines[j + 1 : i] if x.strip("-* \t")), ""
                    )
                    if _DATE.fullmatch(value.strip()):
                        updated = value.strip()
                    break
            return i, updated, extract_caveat(head)
    raise RegistryError(f"{path}: no '| Service Name | Port Number | ...' table found")


def parse_iana_text(data: bytes, path: str) -> ParsedRegistry:
    """Parse a text rendering of IANA's registry page (header block, then a ``|`` table)."""
    text = decode_utf8(data, path)
    lines = text.splitlines()
    at, updated, caveat = _header(lines, path)
    body = at + 1
    if body < len(lines) and re.fullmatch(r"\s*\|?(\s*:?-{3,}:?\s*\|)+\s*", lines[body]):
        body += 1
    records: list[ServiceRecord] = []
    rows = list(_rows(lines, body, path))
    for k, (n, row) in enumerate(rows):
        cells = _split(row)
        where = f"line {n}"
        if len(cells) < NCOLS and k < len(rows) - 1:
            raise RegistryError(f"{path}: {where}: row has {len(cells)} cells, not {NCOLS}")
        interior_gap = any(not c and any(cells[k + 1 :]) for k, c in enumerate(cells))
        if len(cells) == NCOLS and interior_gap:
            cols = dict(enumerate(cells))  # empty cells kept in place: read by position
        else:
            while cells and not cells[-1]:
                cells.pop()
            if any(not c for c in cells):
                raise RegistryError(f"{path}: {where}: row has empty cells between others")
            cols_or_none = _align(cells, max(0, len(_split(row)) - NCOLS))
            if cols_or_none is None:
                raise RegistryError(f"{path}: {where}: cannot match the row's cells to columns")
            cols = cols_or_none
        values = [cols.get(k, "") for k in range(NCOLS)]
        values[PROTO] = values[PROTO].lower()
        records.append(check_record(ServiceRecord(*values), path, where))
    return make_parsed(KIND, path, data, records, updated or newest_date(records), caveat)
