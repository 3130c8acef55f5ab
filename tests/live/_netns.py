"""A veth pair between two network namespaces that the test creates and removes.

Nothing here touches the host's own interfaces: the namespaces get 10.x addresses on a
fresh veth pair, and are deleted (with the pair) even when the test fails.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TRAFFIC = str(Path(__file__).with_name("_traffic.py"))


def require_capture() -> None:
    """Skip unless we may create namespaces and capture (root, ip, tcpdump)."""
    if os.geteuid() != 0:
        pytest.skip("live capture tests need root (network namespaces and capture)")
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (apt-get install tcpdump)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass(frozen=True)
class NetnsPair:
    """Namespace ``a`` (veth ``if_a``, address ``addr_a``) linked to ``b``."""

    a: str
    b: str
    if_a: str
    if_b: str
    addr_a: str
    addr_b: str

    def run(self, ns: str, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside namespace ``ns``."""
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)  # type: ignore[call-overload, no-any-return]

    def portsniff(self, *args: str, **kw: object) -> subprocess.Popen[bytes]:
        """``portsniff ARGS`` inside namespace a (stdout/stderr piped)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return self.run(self.a, [sys.executable, "-m", "portsniff", *args], **kw)

    def traffic(self, mode: str) -> subprocess.Popen[bytes]:
        """The traffic helper: ``serve`` in a (waits for ready), ``send`` from b."""
        ns = self.a if mode == "serve" else self.b
        proc = self.run(
            ns,
            [sys.executable, TRAFFIC, mode, self.addr_a],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        expect = b"ready" if mode == "serve" else b"sent"
        line = wait_line(proc.stdout, expect, 10)
        assert expect in line, f"traffic {mode} did not start"
        return proc


def wait_line(stream: object, text: bytes, timeout: float) -> bytes:
    """Read lines from a pipe until one contains ``text`` (or the timeout passes)."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            break
        seen += chunk
        if text in seen and seen.endswith(b"\n"):
            return seen
    return seen


@pytest.fixture
def netns_pair() -> Iterator[NetnsPair]:
    require_capture()
    tag = f"{random.randrange(16**6):06x}"
    net = f"10.{random.randrange(100, 250)}.{random.randrange(256)}"
    pair = NetnsPair(
        a=f"psniff-test-{tag}-a",
        b=f"psniff-test-{tag}-b",
        if_a=f"psa{tag}",
        if_b=f"psb{tag}",
        addr_a=f"{net}.1",
        addr_b=f"{net}.2",
    )
    created: list[str] = []
    try:
        for ns in (pair.a, pair.b):
            try:
                _ip("netns", "add", ns)
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"cannot create network namespaces: {exc.stderr.decode().strip()}")
            created.append(ns)
        _ip(
            "-n",
            pair.a,
            "link",
            "add",
            pair.if_a,
            "type",
            "veth",
            "peer",
            "name",
            pair.if_b,
            "netns",
            pair.b,
        )
        _ip("-n", pair.a, "addr", "add", f"{pair.addr_a}/24", "dev", pair.if_a)
        _ip("-n", pair.b, "addr", "add", f"{pair.addr_b}/24", "dev", pair.if_b)
        for ns, dev in ((pair.a, pair.if_a), (pair.b, pair.if_b), (pair.a, "lo"), (pair.b, "lo")):
            _ip("-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
