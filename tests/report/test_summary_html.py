"""The HTML summary: self-contained, escaped, and working in a real browser (headless
Chromium over the DevTools protocol on a pipe; skipped when Chromium is absent)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.caveat import CAVEAT
from portsniff.report.summaries import ReportOptions, reporter
from portsniff.report.summary_charts import Series, common_bins, nice_ticks
from portsniff.report.summary_html import render, script_json
from portsniff.summary import Timeline
from tests.report.summary_samples import HOSTILE, empty_summary, sample_summary


def page(summary: Any, **kw: Any) -> str:
    buf = io.StringIO()
    render(summary, buf, ReportOptions(**kw))
    return buf.getvalue()


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parse(html: str) -> Elements:
    p = Elements()
    p.feed(html)
    return p


def test_registered_as_html() -> None:
    assert reporter("html") is render


def test_self_contained_and_complete() -> None:
    html = page(sample_summary())
    assert not re.search(r"(?:src|href)=\"(?!#)", html), "no external references"
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "url(" not in html and "@import" not in html
    tags = parse(html).tags
    assert [t for t, _ in tags].count("svg") == 3  # bars, lines, donut
    assert [t for t, _ in tags].count("script") == 2  # data, sort
    csp = next(a["content"] for t, a in tags if a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert CAVEAT.replace('"', "&quot;") in html
    for anchor in ("capture", "registry", "services", "unknown", "flows", "dnssd", "transports"):
        assert f'id="{anchor}"' in html
    assert "<code>tcp port 443</code>" in html and "<code>tcp.port == 443</code>" in html
    assert "src/portsniff/data/iana-registry-excerpt.txt" in html and "3f" * 32 in html


def test_embedded_json_is_the_shown_data() -> None:
    s = sample_summary()
    p = parse(page(s, top=3))
    data = json.loads(p.scripts[0])
    assert data == json.loads(json.dumps(s.to_dict(3)))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_are_escaped(hostile: str) -> None:
    html = page(sample_summary(hostile=hostile))
    p = parse(html)
    assert [t for t, _ in p.tags].count("script") == 2
    assert "img" not in [t for t, _ in p.tags]
    assert all(not k.startswith("on") for _, a in p.tags for k in a)
    assert "<!--" not in html and "</script><" not in html.replace(
        "</script>\n<script>", ""
    ).replace("</script>\n</body>", "")
    # the data survives escaping: the JSON block parses back to the hostile string
    data = json.loads(p.scripts[0])
    assert data["services"][0]["description"] == hostile


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.text() | st.integers(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
        max_leaves=10,
    )
)
def test_script_json_round_trips_and_cannot_close_the_element(data: Any) -> None:
    text = script_json(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


def test_empty_summary() -> None:
    html = page(empty_summary())
    assert "No traffic on TCP, UDP, SCTP or DCCP ports." in html
    assert "No traffic on assigned ports." in html
    assert "captures/empty.pcap" in html


def test_unicode() -> None:
    assert "Küche — 客厅 📺" in page(sample_summary(unicode=True))


def test_common_bins_share_one_axis() -> None:
    a, b = Timeline(), Timeline()
    for t in range(10):
        a.add(1000.0 + t, 10)
    b.add(1000.5, 7)
    b._widen(4.0)
    width, lo, values = common_bins([Series("a", "#000", a), Series("b", "#000", b)])
    assert width == 4.0 and lo == 250
    assert values[0] == [40, 40, 20] and values[1] == [7, 0, 0]
    assert sum(values[0]) == 100


def test_common_bins_widen_to_fit() -> None:
    a, b = Timeline(), Timeline()
    a.add(0.0, 1)
    b.add(1_000_000.0, 2)
    _width, _, values = common_bins([Series("a", "#000", a), Series("b", "#000", b)])
    assert len(values[0]) <= 240 and sum(values[0]) == 1 and sum(values[1]) == 2


def test_nice_ticks() -> None:
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(1000) == [0, 250, 500, 750, 1000]
    assert nice_ticks(3000) == [0, 1024, 2048, 3072]
    ticks = nice_ticks(123_456_789)
    assert ticks[-1] >= 123_456_789 and len(ticks) <= 6


# -- in a browser ---------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (apt-get install chromium): the browser test needs it")


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3 in,
    fd 4 out, NUL-terminated JSON): no network port, no websocket library."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()
        # Move the child's ends above 4 first, so the dup2 onto 3 and 4 cannot clobber.
        hi_r, hi_w = _above(to_child_r, 10), _above(from_child_w, 10)

        def child() -> None:
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child,
            pass_fds=(3, 4),
        )
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._next(timeout)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def _next(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._r], [], [], max(left, 0))
            if not ready:
                raise AssertionError("Chromium did not answer")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise AssertionError("Chromium closed the pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        data: dict[str, Any] = json.loads(raw)
        return data

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def _above(fd: int, floor: int) -> int:
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD, floor)
    os.close(fd)
    return new


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    binary = _chromium()
    dt = DevTools(binary, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield dt
    finally:
        dt.close()


def _open(dt: DevTools, path: Path) -> tuple[str, list[dict[str, Any]]]:
    target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    start = len(dt.events)
    for domain in ("Page", "Runtime", "Log"):
        dt.send(f"{domain}.enable", session=session)
    dt.send("Page.navigate", {"url": path.as_uri()}, session=session)
    dt.wait_for("Page.loadEventFired")
    return session, dt.events[start:]


def _eval(dt: DevTools, session: str, expr: str) -> Any:
    r = dt.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
    assert "exceptionDetails" not in r, r
    return r["result"].get("value")


def _errors(dt: DevTools, since: list[dict[str, Any]]) -> list[Any]:
    bad = []
    for e in [*since, *dt.events]:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown" or (
            m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert")
        ):
            bad.append(p)
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            bad.append(p["entry"])
    return bad


@pytest.mark.parametrize("hostile", [None, *HOSTILE[:3]])
def test_in_chromium(browser: DevTools, tmp_path: Path, hostile: str | None) -> None:
    path = tmp_path / "summary.html"
    path.write_text(page(sample_summary(hostile=hostile)), encoding="utf-8")
    browser.events.clear()
    session, events = _open(browser, path)
    assert _eval(browser, session, "document.querySelectorAll('svg.chart').length") == 3
    assert _eval(browser, session, "document.querySelectorAll('svg.chart rect').length") > 5
    assert _eval(browser, session, "document.querySelectorAll('polyline').length") >= 3
    caveat = _eval(browser, session, "document.getElementById('caveat').innerText")
    assert "ASSIGNMENT OF A PORT NUMBER" in caveat
    box = _eval(
        browser,
        session,
        "JSON.stringify(document.getElementById('caveat').getBoundingClientRect())",
    )
    assert json.loads(box)["top"] == 0 and json.loads(box)["height"] > 20
    # the hostile strings are text, never elements, and no script of theirs ran
    assert _eval(browser, session, "document.querySelectorAll('img').length") == 0
    assert _eval(browser, session, "document.scripts.length") == 2
    if hostile:
        texts = _eval(browser, session, "document.body.innerText")
        assert hostile.split(">")[0].strip('"') in texts
    # clicking "Bytes" sorts the services table by bytes, descending first
    order = _eval(
        browser,
        session,
        """(() => {
        const t = document.getElementById('t-services');
        const th = [...t.tHead.rows[0].cells].find(c => c.textContent === 'Port');
        th.click();
        const ports = [...t.tBodies[0].rows].map(r => r.cells[2].textContent);
        const state = th.getAttribute('aria-sort');
        const bytes = [...t.tHead.rows[0].cells].find(c => c.textContent === 'Bytes');
        bytes.click();
        const sizes = [...t.tBodies[0].rows].map(r => Number(r.cells[7].dataset.sort));
        return JSON.stringify({ports, state, sizes, bstate: bytes.getAttribute('aria-sort')});
    })()""",
    )
    result = json.loads(order)
    assert result["ports"] == ["udp/53", "tcp/443", "udp/4789", "udp/5353", "udp/47808"]
    assert result["state"] == "ascending"
    assert result["sizes"] == sorted(result["sizes"], reverse=True)
    assert result["bstate"] == "descending"
    assert _errors(browser, events) == []


def test_empty_in_chromium(browser: DevTools, tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(page(empty_summary()), encoding="utf-8")
    browser.events.clear()
    session, events = _open(browser, path)
    assert "ASSIGNMENT" in _eval(browser, session, "document.getElementById('caveat').innerText")
    assert _errors(browser, events) == []


def test_browser_errors_are_seen(browser: DevTools, tmp_path: Path) -> None:
    """The error check above is not vacuous: a script the page's CSP does not allow,
    and one that throws, are both reported."""
    html = page(empty_summary()).replace("</body>", "<script>throw new Error('x')</script></body>")
    path = tmp_path / "bad.html"
    path.write_text(html, encoding="utf-8")
    browser.events.clear()
    _, events = _open(browser, path)
    errors = _errors(browser, events)
    assert any("Content Security Policy" in json.dumps(e) for e in errors), errors
