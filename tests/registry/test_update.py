"""Tests of portsniff.registry.update against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portsniff.errors import RegistryError
from portsniff.registry.record import IANA_HEADER
from portsniff.registry.sources import CACHE_META, cached_registry_file, registry_cache_dir
from portsniff.registry.update import import_registry, update_registry

HEADER = ",".join(IANA_HEADER) + "\r\n"
SMALL_CSV = (
    HEADER
    + ",0,tcp,Reserved,,,,2024-12-20,[RFC6335],,,\r\n"
    + "http,80,tcp,World Wide Web HTTP,,,,,,,,\r\n"
    + "bacnet,47808,udp,Building Automation and Control Networks,[Coleman_Brumley],"
    "[Coleman_Brumley],2011-02-10,,,,,\r\n"
).encode()
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Error</title></head><body>Oops</body></html>\n"
ETAG = '"v1-registry"'


@dataclass
class Site:
    """What the test server serves, and what it saw."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    base: str = ""


def _handler(site: Site) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            site.requests.append({"path": self.path, **dict(self.headers.items())})
            if self.path == "/slow":
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(SMALL_CSV)))
                self.end_headers()
                site.release.wait(10)  # longer than the client's timeout
                return
            if self.path == "/cut":
                # Announces the whole file but the connection drops half-way.
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(SMALL_CSV)))
                self.end_headers()
                self.wfile.write(SMALL_CSV[: len(SMALL_CSV) // 2])
                self.close_connection = True
                return
            if self.path == "/huge":
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                return
            if self.path not in site.files:
                self.send_error(404, "Not Found")
                return
            body, ctype = site.files[self.path]
            if self.headers.get("If-None-Match") == ETAG and self.path.startswith("/etag/"):
                self.send_response(304)
                self.send_header("ETag", ETAG)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if self.path.startswith("/etag/"):
                self.send_header("ETag", ETAG)
                self.send_header("Last-Modified", "Mon, 17 Aug 2026 00:00:00 GMT")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.daemon_threads = True
    s.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        s.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _snapshot() -> dict[str, str]:
    """sha256 of every file in the registry cache directory."""
    base = registry_cache_dir()
    if not base.exists():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in base.iterdir()}


@pytest.fixture
def previous(tmp_path: Path) -> dict[str, str]:
    """A small registry already in the cache; returns the cache's snapshot."""
    small = tmp_path / "small.csv"
    small.write_bytes(SMALL_CSV)
    result = import_registry(small)
    assert result.status == "imported"
    return _snapshot()


def test_import_puts_a_checked_copy_in_the_cache(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_bytes(SMALL_CSV)
    result = import_registry(small)
    cached = cached_registry_file()
    assert cached is not None and cached.read_bytes() == SMALL_CSV
    assert result.path == str(cached)
    assert result.source is not None and result.source.records == 3
    assert result.previous is None and result.diff is None
    # Nothing half-written is left behind.
    assert sorted(p.name for p in registry_cache_dir().iterdir()) == [
        CACHE_META,
        cached.name,
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (HTML_PAGE, "not a registry (HTML page)"),
        (SMALL_CSV[:-40], "truncated"),
        (SMALL_CSV.replace(b"47808", b"478080"), "bad port number"),
        (b"a,b,c\r\n1,2,3\r\n", "unknown registry format"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<registry>&b;</registry>",
            "",
        ),
    ],
    ids=["empty", "html", "truncated", "bad-port", "wrong-columns", "xml-entities"],
)
def test_import_rejects_bad_files_and_keeps_the_cache(
    tmp_path: Path, previous: dict[str, str], content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(RegistryError) as info:
        import_registry(bad)
    text = str(info.value)
    assert str(bad) in text and message in text
    assert "\n" not in text
    assert _snapshot() == previous


def test_import_of_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"nope\.csv: no such registry file"):
        import_registry(tmp_path / "nope.csv")
    assert cached_registry_file() is None


def test_update_from_csv_then_xml_reports_the_changes(
    site: Site, official_csv: Path, official_xml: Path
) -> None:
    site.files["/r.csv"] = (official_csv.read_bytes(), "text/csv")
    site.files["/r.xml"] = (official_xml.read_bytes(), "application/xml")
    first = update_registry(f"{site.base}/r.csv", timeout=10)
    assert first.status == "updated" and first.diff is None
    assert first.source is not None and first.source.kind == "iana-csv"
    assert first.source.records == 14499
    second = update_registry(f"{site.base}/r.xml", timeout=10)
    assert second.status == "updated"
    assert second.diff is not None
    assert second.diff.counts()["added"] == 42
    assert second.diff.counts()["removed"] == 8
    assert second.diff.counts()["changed"] == 30
    cached = cached_registry_file()
    assert cached is not None and cached.suffix == ".xml"
    assert cached.read_bytes() == official_xml.read_bytes()
    # The CSV copy it replaced is gone: one cache copy at a time.
    assert not cached.with_suffix(".csv").exists()
    assert all("127.0.0.1" in r["Host"] for r in site.requests)


def test_conditional_get_gives_not_modified(site: Site, official_csv: Path) -> None:
    site.files["/etag/r.csv"] = (official_csv.read_bytes(), "text/csv")
    url = f"{site.base}/etag/r.csv"
    first = update_registry(url, timeout=10)
    assert first.status == "updated"
    assert "If-None-Match" not in site.requests[0]
    meta = json.loads((registry_cache_dir() / CACHE_META).read_text())
    assert meta["etag"] == ETAG and meta["url"] == url
    before = _snapshot()
    second = update_registry(url, timeout=10)
    assert second.status == "not-modified"
    assert site.requests[1]["If-None-Match"] == ETAG
    assert site.requests[1]["If-Modified-Since"] == "Mon, 17 Aug 2026 00:00:00 GMT"
    assert second.source is not None and second.source.records == 14499
    assert _snapshot() == before


def test_same_bytes_again_is_unchanged(site: Site, official_csv: Path) -> None:
    site.files["/r.csv"] = (official_csv.read_bytes(), "text/csv")
    update_registry(f"{site.base}/r.csv", timeout=10)
    again = update_registry(f"{site.base}/r.csv", timeout=10)
    assert again.status == "unchanged"
    assert again.diff is not None and again.diff.empty


@pytest.mark.parametrize(
    ("path", "setup", "message"),
    [
        ("/missing.csv", None, "HTTP 404"),
        ("/error", (HTML_PAGE, "text/html"), "not a registry (HTML page)"),
        ("/truncated.csv", "truncated", "truncated"),
        ("/small.csv", (SMALL_CSV, "text/csv"), "not the full registry"),
        ("/cut", None, "truncated"),
        ("/huge", None, "too large"),
        ("/slow", None, "timed out"),
        ("/services", (b"http 80/tcp\nbacnet 47808/udp\n", "text/plain"), "not an IANA"),
    ],
    ids=["404", "html", "truncated", "too-few-records", "cut", "huge", "slow", "services"],
)
def test_failed_updates_keep_the_previous_copy(
    site: Site,
    previous: dict[str, str],
    official_csv: Path,
    path: str,
    setup: tuple[bytes, str] | str | None,
    message: str,
) -> None:
    if setup == "truncated":
        data = official_csv.read_bytes()
        site.files[path] = (data[: len(data) // 2], "text/csv")  # ends mid-record
    elif isinstance(setup, tuple):
        site.files[path] = setup
    url = f"{site.base}{path}"
    with pytest.raises(RegistryError) as info:
        update_registry(url, timeout=0.5, max_bytes=8 * 1024 * 1024)
    text = str(info.value)
    assert text.startswith(f"{url}: ")
    assert message in text
    assert "\n" not in text
    assert "left as it was" in text
    assert _snapshot() == previous


def test_update_refuses_non_http_urls(previous: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="only http and https"):
        update_registry(f"file://{tmp_path}/x.csv")
    assert _snapshot() == previous


def test_connection_refused_is_one_line(previous: dict[str, str]) -> None:
    # Bind then close a socket to get a local port nobody listens on.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryError, match="cannot connect") as info:
        update_registry(f"http://127.0.0.1:{port}/r.csv", timeout=2)
    assert "\n" not in str(info.value)
    assert _snapshot() == previous
