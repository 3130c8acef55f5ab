"""Tests of ``portsniff registry ...`` through portsniff.cli.main and ``python -m``."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.caveat import CAVEAT
from portsniff.cli import main
from portsniff.cli_registry import parse_query
from portsniff.errors import UsageError
from portsniff.registry import sources
from portsniff.registry.record import IANA_HEADER

from .conftest import SHARED

OFFICIAL_XML = SHARED / "registry" / "service-names-port-numbers.xml"
QUERIES = [
    "44818/udp",
    "4444/tcp",
    "6003/tcp",
    "6000/tcp",
    "796/tcp",
    "50000/udp",
    "airplay",
    "_airplay._tcp",
    "465/tcp",
    "47808",
    "6000-6070/tcp",
    "nosuchservice",
]
HEADER = ",".join(IANA_HEADER) + "\r\n"


def run(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with stdout/stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def official_lookup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One JSON and one text lookup of QUERIES against the official XML (parsed once)."""
    if not OFFICIAL_XML.exists():
        pytest.skip(f"{OFFICIAL_XML} is absent: the shared test data is not next to this checkout")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PORTSNIFF_CACHE_DIR", str(tmp_path_factory.mktemp("cli-cache")))
        mp.delenv("PORTSNIFF_REGISTRY", raising=False)
        code, out, err = run(
            ["--registry", str(OFFICIAL_XML), "registry", "lookup", *QUERIES, "--format", "json"]
        )
        assert (code, err) == (0, "")
        payload = json.loads(out)
        # --registry also works after the subcommand; the compiled cache makes this fast.
        code, text, err = run(["registry", "lookup", *QUERIES, "--registry", str(OFFICIAL_XML)])
        assert (code, err) == (0, "")
        yield {"json": payload, "text": text}


def results_for(payload: dict[str, Any], query: str) -> list[dict[str, Any]]:
    return [r for r in payload["json"]["results"] if r["query"] == query]


def test_lookup_json_shape(official_lookup: dict[str, Any]) -> None:
    payload = official_lookup["json"]
    assert set(payload) == {"caveat", "registry", "results"}
    assert payload["caveat"] == CAVEAT
    [source] = payload["registry"]["sources"]
    assert source["kind"] == "iana-xml" and source["updated"] == "2026-08-17"
    assert source["path"] == str(OFFICIAL_XML) and source["records"] == 14533
    for result in payload["results"]:
        for key in (
            "service_name",
            "port_number",
            "transport_protocol",
            "description",
            "assignee",
            "contact",
            "registration_date",
            "modification_date",
            "reference",
            "service_code",
            "unauthorized_use_reported",
            "assignment_notes",
            "query",
            "transport",
            "port",
            "status",
            "port_class",
            "aliases",
            "unauthorized_ports",
            "unauthorized_use",
            "source",
        ):
            assert key in result, key


def test_alias_is_listed_with_its_primary_name(official_lookup: dict[str, Any]) -> None:
    [r] = results_for(official_lookup, "44818/udp")
    assert r["service_name"] == "EtherNet-IP-2"
    assert r["aliases"] == ["EtherNet/IP-2"]
    assert (r["transport"], r["port"], r["status"], r["port_class"]) == (
        "udp",
        44818,
        "assigned",
        "user",
    )
    assert r["source"] and str(OFFICIAL_XML) in r["source"]
    assert "alias: EtherNet/IP-2" in official_lookup["text"]


def test_two_names_on_one_port_with_the_unauthorized_use_note(
    official_lookup: dict[str, Any],
) -> None:
    rs = results_for(official_lookup, "4444/tcp")
    assert [r["service_name"] for r in rs] == ["krb524", "nv-video"]
    for r in rs:
        assert r["unauthorized_use"] == "krb524 assigned the port, nv used it without an assignment"
        assert r["unauthorized_use_here"] is True
    assert "krb524 assigned the port, nv used it without an assignment" in official_lookup["text"]
    rs = results_for(official_lookup, "465/tcp")
    assert [r["service_name"] for r in rs] == ["urd", "submissions"]


def test_range_record_is_flagged_only_on_the_named_port(official_lookup: dict[str, Any]) -> None:
    [hit] = results_for(official_lookup, "6003/tcp")
    assert hit["service_name"] == "x11" and hit["port_number"] == "6000-6063"
    assert hit["unauthorized_ports"] == [[6003, 6003]]
    assert hit["unauthorized_use_here"] is True
    [other] = results_for(official_lookup, "6000/tcp")
    assert other["service_name"] == "x11"
    assert other["unauthorized_use_here"] is False
    text = official_lookup["text"]
    assert "tcp/6003" in text and "x11" in text and "(this port)" in text


def test_unassigned_and_dynamic_ports(official_lookup: dict[str, Any]) -> None:
    [r] = results_for(official_lookup, "796/tcp")
    assert r["status"] == "unassigned" and r["service_name"] == ""
    assert r["port_class"] == "system"
    assert r["unauthorized_use"] and "796" in r["unauthorized_use"]
    assert r["unauthorized_use_here"] is True
    [r] = results_for(official_lookup, "50000/udp")
    assert (r["status"], r["port_class"], r["service_name"]) == ("unassigned", "dynamic", "")
    assert r["unauthorized_use"] is None
    assert "udp/50000" in official_lookup["text"]
    assert "[dynamic, unassigned]" in official_lookup["text"]


def test_dns_sd_names_have_no_port(official_lookup: dict[str, Any]) -> None:
    rs = results_for(official_lookup, "airplay")
    assert {r["transport_protocol"] for r in rs} == {"tcp", "udp"}
    assert all(r["port"] is None and r["port_number"] == "" for r in rs)
    assert all(r["status"] == "assigned" and r["port_class"] is None for r in rs)
    [r] = results_for(official_lookup, "_airplay._tcp")
    assert (r["service_name"], r["transport_protocol"]) == ("airplay", "tcp")
    assert "DNS-SD service name, no port" in official_lookup["text"]


def test_bare_port_shows_every_transport_that_has_it(official_lookup: dict[str, Any]) -> None:
    rs = results_for(official_lookup, "47808")
    assert [(r["transport"], r["service_name"]) for r in rs] == [
        ("tcp", "bacnet"),
        ("udp", "bacnet"),
    ]


def test_port_ranges_collapse_runs(official_lookup: dict[str, Any]) -> None:
    rs = results_for(official_lookup, "6000-6070/tcp")
    spans = [(r["ports"], r["service_name"], r["unauthorized_use_here"]) for r in rs]
    assert spans[:3] == [
        ([6000, 6002], "x11", False),
        ([6003, 6003], "x11", True),
        ([6004, 6063], "x11", False),
    ]
    assert [s[0][1] for s in spans][-1] == 6070
    covered = sum(hi - lo + 1 for (lo, hi), _, _ in spans if _ is not None)
    assert covered >= 71


def test_unknown_name_is_a_value(official_lookup: dict[str, Any]) -> None:
    [r] = results_for(official_lookup, "nosuchservice")
    assert r["status"] == "unassigned" and r["service_name"] == ""
    assert "not in the registry" in official_lookup["text"]


def test_text_output_carries_caveat_and_provenance(official_lookup: dict[str, Any]) -> None:
    text = official_lookup["text"]
    assert "udp/44818" in text and '"EtherNet/IP messaging' in text
    assert "[user, assigned]" in text
    assert f"registry: {OFFICIAL_XML} (iana-xml, updated 2026-08-17, 14533 records)" in text
    assert " ".join(text.split()).count(" ".join(CAVEAT.split())) == 1


def test_info_json_with_the_official_xml(official_xml: Path) -> None:
    code, out, err = run(["registry", "info", "--format", "json", "--registry", str(official_xml)])
    assert (code, err) == (0, "")
    info = json.loads(out)
    for key in (
        "records",
        "assigned_pairs",
        "range_records",
        "alias_records",
        "unauthorized_records",
    ):
        assert isinstance(info[key], int), key
    assert info["records"] == 14533
    assert isinstance(info["assigned_pairs_by_transport"], dict)
    assert info["caveat"] == CAVEAT
    [source] = info["sources"]
    assert set(source) >= {"kind", "path", "updated", "sha256", "records"}
    assert source["sha256"] == "4bbf00ef4dd194ea3098d090b42a832c0f8aef704699956a4a7e24576a49631b"


def test_default_sources_with_an_empty_cache(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(sources.SYSTEM_ENV, "")
    assert main(["registry", "info"]) == 0
    out = capsys.readouterr().out
    assert "iana-registry-excerpt.txt (iana-text" in out and "bundled)" in out
    assert "ASSIGNMENT OF A PORT NUMBER" in out
    assert main(["registry", "lookup", "47808/udp", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["origin"] for s in payload["registry"]["sources"]] == ["bundled"]
    assert payload["results"][0]["service_name"] == "bacnet"


def test_default_sources_include_the_system_copies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    services = tmp_path / "services"
    services.write_text("# test\nsys-only 47999/tcp # system copy\n")
    broken = tmp_path / "broken"
    broken.write_bytes(b"\x00\x01 not a services file")
    monkeypatch.setenv(sources.SYSTEM_ENV, os.pathsep.join([str(services), str(broken)]))
    assert main(["registry", "info", "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [s["origin"] for s in info["sources"]] == ["system", "bundled"]
    assert [p["path"] for p in info["skipped"]] == [str(broken)]
    assert main(["registry", "info"]) == 0
    assert f"skipped:  {broken}:" in capsys.readouterr().out


def test_import_then_info_and_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(sources.SYSTEM_ENV, "")
    old = tmp_path / "old.csv"
    old.write_text(HEADER + "a,1,tcp,One,,,,,,,,\r\nb,2,tcp,Two,,,,,,,,\r\n", newline="")
    new = tmp_path / "new.csv"
    new.write_text(HEADER + "a,1,tcp,Uno,,,,,,,,\r\nc,3,udp,Three,,,,,,,,\r\n", newline="")
    assert main(["registry", "import", str(old)]) == 0
    out = capsys.readouterr().out
    assert f"imported {old}" in out and "there was no cached copy before" in out
    assert main(["registry", "import", str(new), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "imported" and result["caveat"] == CAVEAT
    assert result["diff"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 0}
    assert main(["registry", "lookup", "3/udp"]) == 0
    out = capsys.readouterr().out
    assert "udp/3" in out and "Three" in out and "cache)" in out
    assert main(["registry", "diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "1 added, 1 removed, 1 changed, 0 unchanged" in out
    assert "description: 'One' -> 'Uno'" in out
    assert "ASSIGNMENT OF A PORT NUMBER" in out
    assert main(["registry", "diff", str(old), str(new), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["caveat"] == CAVEAT
    assert [r["service_name"] for r in payload["added_records"]] == ["c"]
    assert payload["changed_records"][0]["fields"] == ["description"]


def test_diff_of_the_official_versions(
    official_csv: Path, official_xml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["registry", "diff", str(official_csv), str(official_xml)]) == 0
    out = capsys.readouterr().out
    assert "42 added, 8 removed, 30 changed" in out


BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
    b'<registry xmlns="http://www.iana.org/assignments"><record><name>&lol3;</name>'
    b"</record></registry>\n"
)
BAD_FILES = {
    "empty": b"",
    "html": b"<!DOCTYPE html><html><body>Not found</body></html>",
    "truncated": (HEADER + 'a,1,tcp,"One').encode(),
    "bomb": BOMB,
    "columns": b"Name,Number\r\nhttp,80\r\n",
}


@pytest.mark.parametrize("command", ["lookup", "import", "diff"])
@pytest.mark.parametrize("kind", [*BAD_FILES, "missing"])
def test_bad_files_give_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "a,1,tcp,One,,,,,,,,\r\n", newline="")
    assert main(["registry", "import", str(good)]) == 0
    cached = sources.cached_registry_file()
    assert cached is not None
    before = cached.read_bytes()
    capsys.readouterr()
    bad = tmp_path / f"{kind}.dat"
    if kind != "missing":
        bad.write_bytes(BAD_FILES[kind])
    argv = {
        "lookup": ["--registry", str(bad), "registry", "lookup", "80/tcp"],
        "import": ["registry", "import", str(bad)],
        "diff": ["registry", "diff", str(good), str(bad)],
    }[command]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.startswith("portsniff: error: ") and str(bad) in captured.err
    assert captured.err.count("\n") == 1
    assert cached.read_bytes() == before


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("99999/tcp", "out of range"),
        ("80/xyz", "unknown transport 'xyz'"),
        ("80/", "unknown transport ''"),
        ("80/tcp/ip", "unknown transport 'ip'"),
        ("70000", "out of range"),
        ("10-5/udp", "backwards"),
        ("two words", "bad query"),
        ("", "bad query"),
    ],
)
def test_bad_queries(query: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=message):
        parse_query(query)
    assert main(["registry", "lookup", query]) == 1
    err = capsys.readouterr().err
    assert err.startswith("portsniff: error: bad query") and err.count("\n") == 1


def test_query_forms() -> None:
    q = parse_query("udp/47808")
    assert (q.lo, q.hi, q.transports, q.name) == (47808, 47808, ("udp",), None)
    q = parse_query("6000-6010/TCP")
    assert (q.lo, q.hi, q.transports) == (6000, 6010, ("tcp",))
    assert parse_query("47808").transports == ("tcp", "udp", "sctp", "dccp")
    assert parse_query("80/tcp/udp").transports == ("tcp", "udp")
    assert parse_query("9pfs").name == "9pfs"  # names may start with digits
    assert parse_query("EtherNet/IP-2").name == "EtherNet/IP-2"
    assert parse_query("_airplay._tcp").name == "_airplay._tcp"


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("lookup", "info", "update", "import", "diff"):
        with pytest.raises(SystemExit) as info:
            main(["registry", sub, "-h"])
        assert info.value.code == 0
        assert "--registry" in capsys.readouterr().out


def _python_m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portsniff", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, sources.SYSTEM_ENV: ""},
    )


def test_subprocess_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    ok = _python_m("registry", "lookup", "47808/udp")
    assert ok.returncode == 0, ok.stderr
    assert "bacnet" in ok.stdout and "bundled" in ok.stdout
    bad = _python_m("registry", "lookup", "99999/tcp")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    html = tmp_path / "page.csv"
    html.write_text("<html><body>Service Unavailable</body></html>")
    broken = _python_m("--registry", str(html), "registry", "info")
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr and str(html) in broken.stderr
    update = _python_m("registry", "update", "--url", "ftp://127.0.0.1/x.csv")
    assert update.returncode == 1 and "only http and https" in update.stderr


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parse_query_gives_a_query_or_a_usage_error(text: str) -> None:
    try:
        q = parse_query(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    if q.name is None:
        assert 0 <= q.lo <= q.hi <= 65535 and q.transports
    else:
        assert q.name and not q.name.isdigit()


@pytest.fixture
def csv_server(official_csv: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT serving /r.csv (the official CSV); anything else is 404."""
    body = official_csv.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/r.csv":
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_update_command(csv_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "update", "--url", f"{csv_server}/r.csv", "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert f"updated from {csv_server}/r.csv" in out
    assert "(iana-csv, updated 2026-02-13, 14499 records)" in out
    assert "ASSIGNMENT OF A PORT NUMBER" in out
    cached = sources.cached_registry_file()
    assert cached is not None
    before = cached.read_bytes()
    code = main(["registry", "update", "--url", f"{csv_server}/gone.csv", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err == (
        f"portsniff: error: {csv_server}/gone.csv: HTTP 404 Not Found; "
        "the cached registry was left as it was\n"
    )
    assert cached.read_bytes() == before
    assert main(["registry", "update", "--url", f"{csv_server}/r.csv", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "unchanged" and result["caveat"] == CAVEAT


def test_update_rejects_a_bad_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["registry", "update", "--timeout", "0"])
    assert info.value.code == 2
    assert "must be positive" in capsys.readouterr().err
