"""``portsniff live`` for real: captures on veth pairs in namespaces the tests create.

Needs root and tcpdump (skipped otherwise). Traffic goes only between the test's own
namespaces; a BPF filter keeps only it, so the packet counts are exact.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from portsniff.cli import main
from tests.live._netns import NetnsPair, netns_pair, require_capture, wait_line

__all__ = ["netns_pair"]

pytestmark = pytest.mark.live

CAVEAT_START = b"ASSIGNMENT OF A PORT NUMBER DOES NOT IN ANY WAY IMPLY"
# What _traffic.py sends: 3 datagrams and one TCP handshake.
EXPECTED = Counter(
    {
        ("udp", "bacnet", 47808, "assigned"): 1,
        ("udp", "domain", 53, "assigned"): 1,
        ("udp", None, 50000, "unassigned"): 1,
        ("tcp", "EtherNet-IP-2", 44818, "assigned"): 3,
    }
)


EXCERPT = str(
    Path(__file__).resolve().parents[2] / "src" / "portsniff" / "data" / "iana-registry-excerpt.txt"
)


def _bpf(pair: NetnsPair) -> str:
    return f"ip and host {pair.addr_a} and host {pair.addr_b} and (udp or tcp)"


def _labels(lines: list[dict[str, object]]) -> Counter[tuple[object, ...]]:
    return Counter(
        (p["proto"], p["service"], p["service_port"], p["status"])
        for p in lines
        if p["type"] == "packet"
    )


def _started(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stderr is not None
    line = wait_line(proc.stderr, b"capturing on", 20)
    if b"capturing on" not in line:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"portsniff live did not start: {(line + err).decode(errors='replace')}")


def test_labels_counts_pcapng_and_sigint(
    netns_pair: NetnsPair, official_xml: Path, tmp_path: Path
) -> None:
    pair = netns_pair
    out_pcapng = tmp_path / "live.pcapng"
    summary_json = tmp_path / "summary.json"
    server = pair.traffic("serve")
    proc = pair.portsniff(
        "--registry", str(official_xml), "live", pair.if_a, "-f", _bpf(pair),
        "--format", "jsonl", "-w", str(out_pcapng),
        "--summary-format", "json", "-o", str(summary_json),
    )  # fmt: skip
    sender = None
    try:
        _started(proc)
        sender = pair.traffic("send")
        time.sleep(1.5)  # libpcap hands packets over within its 1 s block timeout
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        for p in (sender, server):
            if p is not None:
                p.communicate(b"", timeout=10)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines[0]["type"] == "meta" and lines[0]["caveat"].startswith("ASSIGNMENT")
    end = lines[-1]
    assert end["type"] == "end"
    assert _labels(lines) == EXPECTED
    assert end["packets"] == sum(EXPECTED.values())
    assert end["stop_reason"] == "interrupted"
    assert isinstance(end["dropped_by_kernel"], int)

    # The summary: complete, with the caveat and the drop counters of the capture.
    summary = json.loads(summary_json.read_text())
    assert summary["caveat"].startswith("ASSIGNMENT")
    assert summary["capture"]["packets"] == sum(EXPECTED.values())
    (source,) = summary["capture"]["files"]
    assert source["capture"]["tool"] == "tcpdump"
    assert source["capture"]["dropped_by_kernel"] == end["dropped_by_kernel"]
    services = {(s["service"], s["proto"], s["port"]): s["packets"] for s in summary["services"]}
    assert services == {
        ("bacnet", "udp", 47808): 1,
        ("domain", "udp", 53): 1,
        ("EtherNet-IP-2", "tcp", 44818): 3,
    }
    assert [(u["proto"], u["port"]) for u in summary["unknown_ports"]] == [("udp", 50000)]

    # The pcapng written while capturing (stopped by SIGINT) is whole, and annotate
    # labels it the same way.
    annotate = subprocess.run(
        [sys.executable, "-m", "portsniff", "--registry", str(official_xml), "annotate",
         "--format", "jsonl", str(out_pcapng)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert annotate.returncode == 0, annotate.stderr.decode()
    again = [json.loads(line) for line in annotate.stdout.decode().splitlines()]
    assert [(p["frame"], p["service"], p["service_port"]) for p in again[1:-1]] == [
        (p["frame"], p["service"], p["service_port"]) for p in lines[1:-1]
    ]
    if shutil.which("tshark"):
        shark = subprocess.run(
            ["tshark", "-r", str(out_pcapng), "-T", "fields", "-e", "frame.comment"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert shark.returncode == 0, shark.stderr.decode()
        comments = shark.stdout.decode().splitlines()
        assert len(comments) == sum(EXPECTED.values())
        assert sum("bacnet/47808" in c for c in comments) == 1


def test_count_stops_by_itself(netns_pair: NetnsPair, official_xml: Path) -> None:
    pair = netns_pair
    server = pair.traffic("serve")
    proc = pair.portsniff(
        "--registry", str(official_xml), "live", pair.if_a, "-f", f"{_bpf(pair)} and udp",
        "-c", "2", "--format", "jsonl",
    )  # fmt: skip
    sender = None
    try:
        _started(proc)
        sender = pair.traffic("send")
        out, err = proc.communicate(timeout=20)
    finally:
        for p in (sender, server):
            if p is not None:
                p.communicate(b"", timeout=10)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert _labels(lines) == Counter(
        {("udp", "bacnet", 47808, "assigned"): 1, ("udp", "domain", 53, "assigned"): 1}
    )
    assert lines[-1]["stop_reason"] == "count"
    assert CAVEAT_START in err  # the summary went to stderr


def test_duration_stops_by_itself_with_summary_on_stderr(netns_pair: NetnsPair) -> None:
    env = {**os.environ, "COLUMNS": "400"}  # wide enough that no report cell wraps
    proc = netns_pair.portsniff("live", "lo", "--duration", "2", "-f", "udp port 9", env=env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1].startswith("# packets: 0")
    words = b" ".join(err.split())
    assert CAVEAT_START in words
    assert b"0 dropped by kernel" in words
    assert b"duration reached" in words


def test_interface_going_down_stops_cleanly(netns_pair: NetnsPair) -> None:
    pair = netns_pair
    proc = pair.portsniff("live", pair.if_a, "-f", "udp port 9")
    _started(proc)
    subprocess.run(["ip", "-n", pair.a, "link", "set", pair.if_a, "down"], check=True)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err.decode().strip().splitlines()[-1].startswith("portsniff: error: ")
    assert b"went down" in err
    assert CAVEAT_START in err  # the summary of what was captured still comes out
    assert "# packets: 0, labelled: 0, unlabelled: 0, malformed: 0" in out.decode()


def test_no_permission_names_the_capability(netns_pair: NetnsPair) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop privileges")
    proc = netns_pair.run(
        netns_pair.a,
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", sys.executable, "-m", "portsniff", "--registry", EXCERPT,
         "live", "lo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = proc.communicate(timeout=30)
    text = err.decode()
    if "No module named" in text or "Permission denied: '" in text:
        pytest.skip(f"portsniff is not importable by nobody here: {text.strip()[-200:]}")
    assert proc.returncode == 1, text
    lines = text.strip().splitlines()
    assert len(lines) == 1
    assert "CAP_NET_RAW" in lines[0] and "setcap cap_net_raw,cap_net_admin=eip" in lines[0]


def test_table_view_on_a_terminal(netns_pair: NetnsPair) -> None:
    master, slave = pty.openpty()
    try:
        proc = netns_pair.portsniff(
            "live", "lo", "--duration", "1.5", stdout=slave, stderr=subprocess.PIPE
        )
        os.close(slave)
        screen = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the program ended
                break
            if not chunk:
                break
            screen += chunk
        _, err = proc.communicate(timeout=20)
    finally:
        os.close(master)
    assert proc.returncode == 0, err.decode()
    assert b"portsniff live on lo" in screen
    assert b"kernel drops: 0" in screen
    assert b"ASSIGNMENT" in screen
    assert CAVEAT_START in err  # the final summary


# -- errors before any capture starts (no root needed) ----------------------------------


def test_unknown_interface_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "nosuchif0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no interface 'nosuchif0'" in err[0] and "lo" in err[0]


def test_bad_filter_is_refused_before_capture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "lo", "-f", "udp prot 53"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "filter" in err[0]


def test_pyshark_engine_is_refused_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "lo", "--engine", "pyshark"]) == 1
    err = capsys.readouterr().err
    assert "pyshark" in err and "files only" in err


def test_require_capture_skips_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="need root"):
        require_capture()


def test_interfaces_lists_lo_and_the_permission(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interfaces"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["INTERFACE", "STATE", "LINK", "TYPE", "ADDRESSES"]
    (lo,) = [ln for ln in out if ln.startswith("lo ")]
    assert "up" in lo and "127.0.0.1/8" in lo
    assert out[-1].startswith("capture permitted: ")
    if os.geteuid() == 0:
        assert out[-1].startswith("capture permitted: yes (root")


def test_interfaces_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interfaces", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [i["name"] for i in doc["interfaces"]]
    assert "lo" in names
    assert set(doc["capture"]) == {"tool", "tool_path", "permitted", "reason"}


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_vector_and_reference_lines_and_summary_are_identical(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    official_xml: Path,
    fmt: str,
) -> None:
    from tests.live._workload import workload_tool

    workload_tool(tmp_path, monkeypatch, 5000)
    outputs = {}
    for annotator in ("vector", "reference"):
        summary = tmp_path / f"summary-{annotator}.json"
        pcapng = tmp_path / f"out-{annotator}.pcapng"
        argv = ["--registry", str(official_xml), "live", "lo", "--view", "lines",
                "--format", fmt, "--annotator", annotator, "--summary-format", "json",
                "-o", str(summary), "-w", str(pcapng)]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        outputs[annotator] = (out, summary.read_text(), pcapng.read_bytes())
    vector, reference = outputs["vector"], outputs["reference"]
    lines = reference[0].splitlines()
    if fmt == "jsonl":
        docs = [json.loads(line) for line in lines]
        assert sum(d["type"] == "packet" for d in docs) == 5000
        assert docs[-1]["type"] == "end" and docs[-1]["packets"] == 5000
    assert vector[0] == reference[0]
    assert json.loads(vector[1]) == json.loads(reference[1])
    assert vector[2] == reference[2]
