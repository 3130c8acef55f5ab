"""A stand-in capture tool that writes the shared yardstick workload to its pipe."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portsniff.live import session as live_session
from tests.conftest import shared_path


def workload_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packets: int) -> Path:
    """A 'tcpdump' that writes the shared yardstick workload in uneven chunks."""
    gen = shared_path("bench", "gen_pcap.py")
    capture = tmp_path / "workload.pcap"
    subprocess.run(
        [sys.executable, str(gen), "--packets", str(packets), "--seed", "3", "--flows", "300",
         "--out", str(capture)],
        check=True, capture_output=True,
    )  # fmt: skip
    tool = tmp_path / "tcpdump"
    # Uneven writes, so that blocks end mid-flow and mid-record.
    tool.write_text(
        "#!/bin/sh\necho 'tcpdump: listening on lo, link-type EN10MB' >&2\n"
        f"dd if={capture} bs=7001 status=none\n"
        f"printf '{packets} packets captured\\n{packets} packets received by filter\\n"
        "0 packets dropped by kernel\\n' >&2\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(live_session, "find_tool", lambda preferred: ("tcpdump", str(tool)))
    return capture
