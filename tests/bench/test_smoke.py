"""The benchmark harness runs end to end on a tiny workload (no timings are asserted)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    env = dict(os.environ, PORTSNIFF_CACHE_DIR=str(tmp_path / "cache"))
    big = tmp_path / "big.pcap"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gen_workload.py"),
            "--packets",
            "4000",
            "--out",
            str(big),
        ],
        check=True,
        timeout=60,
    )
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--packets",
            "2000",
            "--flows",
            "700",
            "--repeat",
            "1",
            "--quick",
            "--scale",
            str(big),
            "--scale-packets",
            "4000",
            "--out",
            str(out),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    text = out.read_text()
    assert "| `portsniff summary --format json` |" in text
    assert "| `portsniff annotate (text)` |" in text
    assert "failed" not in text  # every portsniff command exited 0
    assert "- machine:" in text and "- versions:" in text
    assert "`bench/gen_workload.py --packets 2000 --seed 1 --flows 700`" in text
    assert "| target (issue 5) | this run | met |" in text
    assert "| registry lookup <= 0.25 s |" in text
    assert "## Growth:" in text and "time grows linearly: 2x packets <= 2.1x time" in text
    if shutil.which("editcap"):  # the same packets as pcapng, read by portsniff and tcpdump
        assert "| `portsniff annotate (text, pcapng copy)` |" in text
        assert "| `portsniff summary --format json (pcapng copy)` |" in text
    else:
        assert "editcap: not installed" in text
