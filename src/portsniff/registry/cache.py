"""Compiled registries: a parsed registry stored as JSON columns, keyed by the sha256 of
the file it came from, so a registry is parsed once and then loads in milliseconds.

The format is a line of JSON and the columns as delimited text (never pickle). A compiled file that is unreadable or does not
match what it claims is ignored and rebuilt; a cache directory that cannot be written is
no error (the registry is then parsed every time).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from portsniff.errors import RegistryError
from portsniff.registry.load import parse_registry_bytes
from portsniff.registry.paths import compiled_dir
from portsniff.registry.record import FIELDS, ParsedRegistry, RegistrySource, ServiceRecord

if TYPE_CHECKING:
    from portsniff.registry.index import RegistryIndex

#: Bump when a parser's output changes, so older compiled files are not used.
FORMAT_VERSION = 1


def compiled_path(sha256: str) -> Path:
    """Where the compiled copy of a file with this sha256 lives."""
    return compiled_dir() / f"{sha256}.v{FORMAT_VERSION}.registry"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(f"{path}: no such registry file") from None
    except IsADirectoryError:
        raise RegistryError(f"{path}: is a directory, not a registry file") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read ({exc.strerror or exc})") from None


# Cells are whitespace-normalised by every parser, and Python counts these control
# characters as whitespace, so they never occur inside a cell.
_CELL = "\x1f"
_COLUMN = "\x1e"

Compiled = tuple[RegistrySource, "str | None", list[list[str]]]


def _decode(blob: bytes, sha256: str, path: str) -> Compiled | None:
    """(source, caveat, 12 columns) of a compiled file, or None when it is not valid.

    Layout: one line of JSON (format, source, caveat), then the columns, each a run of
    cells joined by U+001F, the columns joined by U+001E.
    """
    try:
        head, _, body = blob.partition(b"\n")
        doc = json.loads(head)
        src = doc["source"]
        count = src["records"]
        if doc.get("format") != FORMAT_VERSION or src["sha256"] != sha256:
            return None
        columns = [c.split(_CELL) for c in body.decode("utf-8").split(_COLUMN)]
        if len(columns) != len(FIELDS) or any(len(c) != count for c in columns):
            return None
        caveat = doc.get("caveat")
        updated = src.get("updated")
        source = RegistrySource(
            kind=str(src["kind"]),
            path=path,
            updated=updated if isinstance(updated, str) else None,
            sha256=sha256,
            records=int(count),
        )
        return source, caveat if isinstance(caveat, str) else None, columns
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _encode(parsed: ParsedRegistry) -> bytes | None:
    """The compiled form of ``parsed``; None if a cell holds a separator (not cached)."""
    columns = [[getattr(r, f) for r in parsed.records] for f in FIELDS]
    if any(_CELL in v or _COLUMN in v for c in columns for v in c):
        return None
    head = json.dumps(
        {"format": FORMAT_VERSION, "source": parsed.source.as_dict(), "caveat": parsed.caveat},
        ensure_ascii=True,
    )
    body = _COLUMN.join(_CELL.join(c) for c in columns)
    return head.encode("ascii") + b"\n" + body.encode("utf-8")


def _write_atomic(target: Path, blob: bytes) -> None:
    """Write via a temporary file and rename; silently give up if the cache is unwritable."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return  # a read-only or full cache only costs speed


def _load(path: Path) -> ParsedRegistry | Compiled:
    """The compiled form of the file if the cache has it, else the freshly parsed file
    (whose compiled form is then written)."""
    path = Path(path)
    data = _read_bytes(path)
    sha256 = hashlib.sha256(data).hexdigest()
    target = compiled_path(sha256)
    try:
        blob: bytes | None = target.read_bytes()
    except OSError:
        blob = None
    if blob is not None:
        compiled = _decode(blob, sha256, str(path))
        if compiled is not None:
            return compiled
    parsed = parse_registry_bytes(data, str(path))
    encoded = _encode(parsed)
    if encoded is not None:
        _write_atomic(target, encoded)
    return parsed


def masks_path(sha256: str) -> Path:
    """Where the per-port masks of a registry file with this sha256 live."""
    return compiled_dir() / f"{sha256}.v{FORMAT_VERSION}.masks"


def load_masks(sha256: str) -> bytes | None:
    """The stored port masks of a registry (see ``store_masks``), or None."""
    if not sha256:
        return None
    try:
        blob = masks_path(sha256).read_bytes()
    except OSError:
        return None
    # A damaged file is ignored (and rewritten): the bits follow their own digest.
    digest, bits = blob[:32], blob[32:]
    if len(bits) != MASKS_BYTES or hashlib.sha256(bits).digest() != digest:
        return None
    return bits


def store_masks(sha256: str, blob: bytes) -> None:
    """Keep a registry's port masks: per transport, covered and named ports as bits."""
    if sha256 and len(blob) == MASKS_BYTES:
        _write_atomic(masks_path(sha256), hashlib.sha256(blob).digest() + blob)


#: Two bitmaps (covered, named) of 65,536 ports for each of the four transports.
MASKS_BYTES = 4 * 2 * 65536 // 8


def load_parsed(path: Path) -> ParsedRegistry:
    """Parse a registry file, or load its compiled copy if one matches its sha256."""
    got = _load(path)
    if isinstance(got, ParsedRegistry):
        return got
    source, caveat, columns = got
    records = tuple(ServiceRecord(*row) for row in zip(*columns, strict=True))
    return ParsedRegistry(records=records, source=source, caveat=caveat)


def load_compiled(path: Path) -> Compiled:
    """A registry file as (source, caveat, the 12 columns), via the cache: records are
    made only when look-ups need them (a cached registry opens in milliseconds)."""
    return _as_columns(_load(Path(path)))


def _as_columns(got: ParsedRegistry | Compiled) -> Compiled:
    if isinstance(got, ParsedRegistry):
        cols = [[getattr(r, f) for r in got.records] for f in FIELDS]
        return got.source, got.caveat, cols
    return got


def load_index(paths: Sequence[Path]) -> RegistryIndex:
    """An index over the registry files ``paths`` (precedence order), via the cache.

    Compiled registries are indexed from their columns: records are made only as
    look-ups need them.
    """
    from portsniff.registry.index import RegistryIndex

    got = [_load(Path(p)) for p in paths]
    if all(isinstance(g, ParsedRegistry) for g in got):
        return RegistryIndex.build([g for g in got if isinstance(g, ParsedRegistry)])
    return RegistryIndex.from_columns([_as_columns(g) for g in got])
