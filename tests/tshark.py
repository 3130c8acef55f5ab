"""Running tshark from tests: field extraction, cached per (file, fields, options)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

TSHARK = shutil.which("tshark")
#: Files in ../shared/captures that tshark refuses (and so do we, with exit 1).
UNREADABLE = {"libpcap__pcap-invalid-version-1.pcap", "libpcap__shb-option-too-long.pcapng"}


def need_tshark() -> str:
    if TSHARK is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return TSHARK


@functools.lru_cache(maxsize=512)
def tshark_fields(path: str, fields: tuple[str, ...], options: tuple[str, ...] = ()) -> list[list[str]]:
    """One row per frame: the first occurrence of each field ('' when absent)."""
    tshark = need_tshark()
    cmd = [tshark, "-n", "-r", path, *options, "-T", "fields", "-E", "separator=/t",
           "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    return [row + [""] * (len(fields) - len(row)) for row in rows]


def shared_capture_files(folder: Path) -> list[Path]:
    """The readable, non-empty shared captures (tshark reads them)."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix in (".pcap", ".pcapng", ".cap", ".zst")
        and p.name not in UNREADABLE
    )
