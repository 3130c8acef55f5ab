"""``portsniff annotate`` through the CLI: formats (golden files), options, exit codes,
the pcapng writer, and the three engines agreeing on the project's captures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portsniff.caveat import CAVEAT
from portsniff.cli import main
from tests.conftest import CAPTURES, ROOT

EXCERPT = str(ROOT / "src" / "portsniff" / "data" / "iana-registry-excerpt.txt")
GOLDEN = ROOT / "tests" / "golden" / "annotate"
SAMPLES = sorted(
    p.name
    for p in CAPTURES.iterdir()
    if p.suffix in (".pcap", ".pcapng") and p.name not in ("damaged.pcap", "not-a-capture.pcap")
)


def annotate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--registry", EXCERPT, "annotate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def relative(text: str) -> str:
    """Golden files hold paths relative to the checkout."""
    return text.replace(str(ROOT) + os.sep, "")


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
@pytest.mark.parametrize("name", SAMPLES)
def test_golden(capsys, monkeypatch, fmt: str, name: str) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = annotate(capsys, f"captures/{name}", "--format", fmt)
    assert code == 0 and err == ""
    out = relative(out)
    golden = GOLDEN / f"{name}.{fmt}"
    if os.environ.get("PORTSNIFF_UPDATE_GOLDEN"):
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")
    assert CAVEAT in out or json.dumps(CAVEAT) in out


def test_jsonl_stream_shape(capsys) -> None:
    code, out, _ = annotate(capsys, str(CAPTURES / "ics-bacnet-enip.pcap"), "--format", "jsonl")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert lines[0]["type"] == "meta" and lines[0]["caveat"] == CAVEAT
    assert lines[0]["registry"]["sources"][0]["kind"] == "iana-text"
    assert lines[-1]["type"] == "end" and lines[-1]["packets"] == 30
    packets = lines[1:-1]
    assert [p["frame"] for p in packets] == list(range(1, 31))
    bacnet = next(p for p in packets if p["dst_port"] == 47808 and p["src_port"] != 47808)
    assert (bacnet["service"], bacnet["service_port"], bacnet["service_side"]) == (
        "bacnet",
        47808,
        "dst",
    )
    assert bacnet["status"] == "assigned" and bacnet["port_class"] == "user"
    enip = next(p for p in packets if p["service"] == "EtherNet-IP-2")
    assert enip["aliases"] == ["EtherNet/IP-2"]
    dynamic = next(p for p in packets if p["dst_port"] == 50000)
    assert (dynamic["service"], dynamic["status"], dynamic["port_class"]) == (
        None,
        "unassigned",
        "dynamic",
    )


def test_fields_select_columns(capsys) -> None:
    path = str(CAPTURES / "ics-bacnet-enip.pcap")
    code, out, _ = annotate(
        capsys, path, "--format", "csv", "--fields", "frame,service,service_port"
    )
    rows = [line for line in out.splitlines() if not line.startswith("#")]
    assert code == 0 and rows[0] == "frame,service,service_port" and rows[1] == "1,bacnet,47808"
    code, _, err = annotate(capsys, path, "--fields", "frame,nonsense")
    assert code == 1 and "nonsense" in err and err.count("\n") == 1


def test_filter_and_count(capsys) -> None:
    path = str(CAPTURES / "ics-bacnet-enip.pcap")
    code, out, _ = annotate(capsys, path, "--format", "jsonl", "-f", "tcp port 44818")
    packets = [json.loads(line) for line in out.splitlines()][1:-1]
    assert code == 0 and len(packets) == 12 and {p["proto"] for p in packets} == {"tcp"}
    assert packets[0]["frame"] > 1  # frame numbers stay those of the file
    code, out, _ = annotate(capsys, path, "--format", "jsonl", "-c", "3")
    assert len(out.splitlines()) == 5
    code, out, err = annotate(capsys, path, "-f", "tcp port nonsense-port")
    assert code == 1 and out == "" and err.startswith("portsniff: error: bad filter")


def test_damaged_capture_gives_packets_then_exit_2(capsys) -> None:
    code, out, err = annotate(capsys, str(CAPTURES / "damaged.pcap"), "--format", "jsonl")
    packets = [json.loads(line) for line in out.splitlines()][1:-1]
    assert code == 2 and len(packets) == 7
    assert err.count("\n") == 1 and "damaged at byte 801" in err


@pytest.mark.parametrize(
    "target, message",
    [
        ("not-a-capture.pcap", "not a capture file"),
        ("missing.pcap", "missing.pcap"),
        (".", "directory"),
    ],
)
def test_unreadable_input_is_one_line_exit_1(capsys, target: str, message: str) -> None:
    code, out, err = annotate(capsys, str(CAPTURES / target))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_stdin(tmp_path: Path) -> None:
    data = (CAPTURES / "ics-bacnet-enip.pcap").read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "portsniff",
            "--registry",
            EXCERPT,
            "annotate",
            "-",
            "--format",
            "jsonl",
        ],
        input=data,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 32


def test_write_pcapng_keeps_packets_and_labels(capsys, tmp_path: Path) -> None:
    out_file = tmp_path / "labelled.pcapng"
    src = CAPTURES / "web-tls.pcapng"
    code, first, _ = annotate(
        capsys, str(src), "--format", "jsonl", "--write-pcapng", str(out_file)
    )
    assert code == 0
    code, again, _ = annotate(capsys, str(out_file), "--format", "jsonl")

    def strip(text: str) -> list[dict[str, object]]:
        return [
            {k: v for k, v in json.loads(line).items() if k != "file"}
            for line in text.splitlines()[1:-1]
        ]

    assert strip(first) == strip(again)  # same packets, same labels
    from portsniff.capture.reader import open_capture

    with open_capture(str(src)) as a, open_capture(str(out_file)) as b:
        pa = [blk.packet(i) for blk in a.blocks() for i in range(len(blk))]
        pb = [blk.packet(i) for blk in b.blocks() for i in range(len(blk))]
        assert pa == pb and b.section_comments and CAVEAT in b.section_comments[0]
    tshark = shutil.which("tshark")
    if tshark:
        comments = subprocess.run(
            [tshark, "-r", str(out_file), "-T", "fields", "-e", "frame.comment"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        from portsniff.annotate.pipeline import AnnotateRun
        from portsniff.registry.sources import open_registry
        from portsniff.report.packet_text import label_text

        labels = [
            label_text(r) for r in AnnotateRun([str(src)], open_registry([EXCERPT])).records()
        ]
        assert comments == labels and "/80" in comments[3]


@pytest.mark.parametrize("engine", ["scapy", "pyshark"])
def test_engines_agree_on_the_project_captures(capsys, engine: str) -> None:
    if engine == "pyshark" and shutil.which("tshark") is None:
        pytest.skip("the pyshark engine needs tshark (apt-get install tshark)")
    for name in SAMPLES:
        path = str(CAPTURES / name)
        _, fast, _ = annotate(capsys, path, "--format", "jsonl")
        _, other, _ = annotate(capsys, path, "--format", "jsonl", "--engine", engine)
        assert fast == other, name
