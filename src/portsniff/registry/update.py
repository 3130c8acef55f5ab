"""Download or import the registry into the user cache, safely.

The new copy is fetched (conditional GET, size cap, timeout), parsed and checked before it
atomically replaces the cache copy; on any failure the previous copy stays as it was and
a one-line RegistryError says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from pathlib import Path
from typing import Literal

from portsniff import __version__
from portsniff.errors import RegistryError
from portsniff.registry.diff import RegistryDiff, diff_registries
from portsniff.registry.record import ParsedRegistry, RegistrySource
from portsniff.registry.sources import (
    CACHE_META,
    CACHE_STEM,
    CACHE_SUFFIXES,
    DEFAULT_URL,
    cached_registry_file,
    registry_cache_dir,
)

MAX_BYTES = 64 * 1024 * 1024
#: A full IANA registry has ~14,500 records; a download with fewer than this is not one.
MIN_DOWNLOAD_RECORDS = 1000
#: ...nor one that lost more than half of the records of the copy it would replace.
MIN_KEPT_FRACTION = 0.5
IANA_KINDS = ("iana-csv", "iana-xml")
_CHUNK = 64 * 1024

Status = Literal["updated", "unchanged", "not-modified", "imported"]


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What an update or import did.

    ``status``: ``updated`` (a new copy replaced or created the cache copy), ``imported``
    (the same, from a local file), ``unchanged`` (downloaded, identical to the cache
    copy) or ``not-modified`` (the server said 304). ``diff`` compares the previous cache
    copy with the new one (None when there was no previous copy or nothing was fetched).
    """

    status: Status
    origin: str  # URL or file path
    path: str | None  # the cache copy
    source: RegistrySource | None  # the new copy (or the kept one)
    previous: RegistrySource | None
    diff: RegistryDiff | None

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "origin": self.origin,
            "path": self.path,
            "source": self.source.as_dict() if self.source else None,
            "previous": self.previous.as_dict() if self.previous else None,
            "diff": self.diff.counts() if self.diff else None,
        }


def _fail(origin: str, reason: str) -> RegistryError:
    return RegistryError(f"{origin}: {reason}; the cached registry was left as it was")


def _read_meta() -> dict[str, str]:
    try:
        data = json.loads((registry_cache_dir() / CACHE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _looks_like_html(data: bytes, content_type: str | None) -> bool:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return True
    return bool(content_type and "html" in content_type.lower())


def _cut_short(data: bytes) -> bool:
    """True when a CSV/XML registry's bytes stop where no complete file would."""
    from portsniff.registry.load import sniff_kind

    kind = sniff_kind(data)
    if kind == "iana-csv":
        return not data.endswith(b"\n")  # IANA ends every record with CRLF
    if kind == "iana-xml":
        return not data.rstrip().endswith(b"</registry>")
    return False


def _parse_checked(data: bytes, origin: str, *, iana_only: bool) -> ParsedRegistry:
    """Parse ``data`` and check it is a plausible registry; RegistryError says why not."""
    from portsniff.registry.load import parse_registry_bytes

    if not data.strip():
        raise _fail(origin, "empty file")
    try:
        parsed = parse_registry_bytes(data, origin)
    except RegistryError as exc:
        text = str(exc)
        # The parser's message names ``origin`` already; do not say it twice.
        text = text.removeprefix(f"{origin}: ")
        if _cut_short(data):
            raise _fail(origin, f"truncated: the file stops mid-record ({text})") from exc
        raise _fail(origin, f"not a usable registry ({text})") from exc
    kind = parsed.source.kind
    if iana_only and kind not in IANA_KINDS:
        raise _fail(origin, f"not an IANA registry CSV or XML (it reads as {kind})")
    if not parsed.records:
        raise _fail(origin, "holds no registry records")
    if iana_only and len(parsed.records) < MIN_DOWNLOAD_RECORDS:
        raise _fail(
            origin,
            f"truncated or not the full registry ({len(parsed.records)} records, "
            f"expected at least {MIN_DOWNLOAD_RECORDS})",
        )
    return parsed


def _previous() -> tuple[Path | None, ParsedRegistry | None]:
    from portsniff.registry.cache import load_parsed

    path = cached_registry_file()
    if path is None:
        return None, None
    try:
        return path, load_parsed(path)
    except (RegistryError, OSError):
        return path, None  # a broken cache copy is simply replaced


def _install(
    data: bytes, parsed: ParsedRegistry, meta: dict[str, str]
) -> tuple[Path, RegistrySource]:
    """Put ``data`` in the cache atomically, then drop copies of another format."""
    from portsniff.registry.cache import load_parsed

    base = registry_cache_dir()
    suffix = CACHE_SUFFIXES.get(parsed.source.kind, ".dat")
    target = base / f"{CACHE_STEM}{suffix}"
    try:
        _atomic_write(target, data)
        for other in set(CACHE_SUFFIXES.values()) - {suffix}:
            with contextlib.suppress(FileNotFoundError):
                (base / f"{CACHE_STEM}{other}").unlink()
        meta = {**meta, "file": target.name, "sha256": hashlib.sha256(data).hexdigest()}
        _atomic_write(base / CACHE_META, json.dumps(meta, indent=2).encode())
    except OSError as exc:
        raise RegistryError(
            f"{target}: cannot write the cache copy: {exc.strerror or exc}"
        ) from exc
    try:
        # Compile it now, and describe it by its cache path rather than the URL.
        source = load_parsed(target).source
    except (RegistryError, OSError):
        source = parsed.source
    return target, source


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fetch(
    url: str, headers: dict[str, str], timeout: float, max_bytes: int
) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url``; returns (status, body, selected headers). 304 gives an empty body."""
    request = urllib.request.Request(url, headers=headers)
    deadline = time.monotonic() + max(timeout * 10, 60.0)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return 304, b"", {}
        reason = f"HTTP {exc.code} {exc.reason}".rstrip()
        raise _fail(url, reason) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _fail(url, f"timed out after {timeout:g} s") from exc
        raise _fail(url, f"cannot connect: {exc.reason}") from exc
    except TimeoutError as exc:
        raise _fail(url, f"timed out after {timeout:g} s") from exc
    except (OSError, HTTPException, ValueError) as exc:
        raise _fail(url, f"cannot download: {exc}") from exc
    with response:
        status = response.status
        info = {
            "etag": response.headers.get("ETag") or "",
            "last_modified": response.headers.get("Last-Modified") or "",
            "content_type": response.headers.get("Content-Type") or "",
        }
        declared = response.headers.get("Content-Length")
        expected: int | None = None
        if declared and declared.strip().isdigit():
            expected = int(declared)
            if expected > max_bytes:
                raise _fail(url, f"too large ({expected} bytes, limit {max_bytes})")
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise _fail(url, f"too large (more than {max_bytes} bytes)")
                if time.monotonic() > deadline:
                    raise _fail(url, "timed out (the download is too slow)")
                chunks.append(chunk)
        except TimeoutError as exc:
            raise _fail(url, f"timed out after {timeout:g} s") from exc
        except (OSError, HTTPException) as exc:
            raise _fail(url, f"truncated (connection lost: {exc})") from exc
    body = b"".join(chunks)
    if expected is not None and len(body) < expected:
        raise _fail(url, f"truncated ({len(body)} of {expected} bytes)")
    return status, body, info


def update_registry(
    url: str = DEFAULT_URL, *, timeout: float = 30, max_bytes: int = MAX_BYTES
) -> UpdateResult:
    """Download the registry from ``url`` into the cache (IANA CSV or XML only).

    Sends If-None-Match/If-Modified-Since from the previous download of the same URL.
    Raises RegistryError (one line: URL and reason) on any failure; the cache copy is
    then untouched.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise RegistryError(f"{url}: only http and https URLs can be downloaded")
    if timeout <= 0:
        raise RegistryError(f"{url}: the timeout must be positive, not {timeout:g}")
    previous_path, previous = _previous()
    meta = _read_meta()
    headers = {"User-Agent": f"portsniff/{__version__}", "Accept-Encoding": "identity"}
    if previous is not None and meta.get("url") == url:
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
    status, body, info = _fetch(url, headers, timeout, max_bytes)
    if status == 304:
        if previous is None or previous_path is None:  # we sent no condition: odd server
            raise _fail(url, "HTTP 304 Not Modified, but there is no cached copy")
        return UpdateResult(
            "not-modified", url, str(previous_path), previous.source, previous.source, None
        )
    if status != 200:
        raise _fail(url, f"HTTP {status} (expected 200)")
    if _looks_like_html(body, info["content_type"]):
        raise _fail(url, "not a registry (HTML page)")
    parsed = _parse_checked(body, url, iana_only=True)
    if previous is not None and len(parsed.records) < MIN_KEPT_FRACTION * len(previous.records):
        raise _fail(
            url,
            f"truncated or not the full registry ({len(parsed.records)} records; the "
            f"cached copy has {len(previous.records)})",
        )
    new_meta = {
        "url": url,
        "etag": info["etag"],
        "last_modified": info["last_modified"],
        "fetched": _now(),
    }
    sha = hashlib.sha256(body).hexdigest()
    if previous is not None and previous_path is not None and previous.source.sha256 == sha:
        # Same bytes: refresh the validators so the next run can be conditional.
        with contextlib.suppress(OSError):
            _atomic_write(
                registry_cache_dir() / CACHE_META,
                json.dumps(
                    {**new_meta, "file": previous_path.name, "sha256": sha}, indent=2
                ).encode(),
            )
        return UpdateResult(
            "unchanged",
            url,
            str(previous_path),
            previous.source,
            previous.source,
            diff_registries(previous.records, previous.records),
        )
    target, source = _install(body, parsed, new_meta)
    diff = diff_registries(previous.records, parsed.records) if previous is not None else None
    return UpdateResult(
        "updated", url, str(target), source, previous.source if previous else None, diff
    )


def import_registry(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> UpdateResult:
    """Check the registry file ``path`` and copy it into the cache atomically.

    Any format portsniff reads is accepted (IANA CSV/XML/text, a services file).
    Raises RegistryError naming the file when it is missing or not a usable registry.
    """
    name = os.fspath(path)
    p = Path(name)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise RegistryError(f"{name}: is a directory, not a registry file")
        if size > max_bytes:
            raise _fail(name, f"too large ({size} bytes, limit {max_bytes})")
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise RegistryError(f"{name}: no such registry file") from exc
    except OSError as exc:
        raise RegistryError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if _looks_like_html(data, None):
        raise _fail(name, "not a registry (HTML page)")
    parsed = _parse_checked(data, name, iana_only=False)
    _previous_path, previous = _previous()
    meta = {"imported": str(p.resolve()), "fetched": _now()}
    target, source = _install(data, parsed, meta)
    diff = diff_registries(previous.records, parsed.records) if previous is not None else None
    return UpdateResult(
        "imported", name, str(target), source, previous.source if previous else None, diff
    )
