"""Running tshark from tests: field extraction, cached per (file, fields, options)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TSHARK = shutil.which("tshark")
#: Files in ../shared/captures that tshark refuses (and so do we, with exit 1).
UNREADABLE = {"libpcap__pcap-invalid-version-1.pcap", "libpcap__shb-option-too-long.pcapng"}


def need_tshark() -> str:
    if TSHARK is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return TSHARK


#: Dissectors a "transport-only" tshark keeps: link layers, IP, tunnels, transports.
TRANSPORT_ONLY_KEEP = frozenset(
    (
        *("frame", "eth", "ethertype", "vlan", "ieee8021ad", "sll", "null", "raw", "nflog"),
        *("radiotap", "wlan", "wlan_radio", "ppi", "llc", "pktap", "pcap_pktdata", "vsock"),
        *("mpls", "pppoes", "ppp", "ip", "ipv6", "ipv6.hopopts", "ipv6.routing"),
        *("ipv6.fraghdr", "ipv6.dstopts", "ah", "gre", "vxlan", "geneve", "teredo", "erspan"),
        *("tcp", "udp", "sctp", "dccp", "icmp", "icmpv6", "data"),
    )
)


@functools.lru_cache(maxsize=1)
def transport_only_config() -> str:
    """An XDG config home whose Wireshark profile disables every application dissector.

    Application dissectors (SNMP, HART-IP, SIP/RTP, ...) create conversations that split
    one 5-tuple into several tshark streams; flows are compared without them.
    """
    tshark = need_tshark()
    names = subprocess.run(
        [tshark, "-G", "protocols"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    home = Path(tempfile.mkdtemp(prefix="psniff-ws-"))
    (home / "wireshark").mkdir()
    disabled = [n.split("\t")[2] for n in names if n.count("\t") >= 2]
    (home / "wireshark" / "disabled_protos").write_text(
        "".join(f"{n}\n" for n in disabled if n not in TRANSPORT_ONLY_KEEP)
    )
    return str(home)


@functools.lru_cache(maxsize=512)
def tshark_fields(
    path: str, fields: tuple[str, ...], options: tuple[str, ...] = (), transport_only: bool = False
) -> list[list[str]]:
    """One row per frame: the first occurrence of each field ('' when absent)."""
    tshark = need_tshark()
    cmd = [
        tshark,
        "-n",
        "-r",
        path,
        *options,
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=f",
    ]
    for f in fields:
        cmd += ["-e", f]
    env = dict(os.environ)
    if transport_only:
        env["XDG_CONFIG_HOME"] = transport_only_config()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    return [row + [""] * (len(fields) - len(row)) for row in rows]


def shared_capture_files(folder: Path) -> list[Path]:
    """The readable, non-empty shared captures (tshark reads them)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix in (".pcap", ".pcapng", ".cap", ".zst")
        and p.name not in UNREADABLE
    )


def shared_capture(name: str) -> Path:
    """A file of ../shared/captures by name, or skip when the folder is absent."""
    from tests.conftest import shared_path

    return shared_path("captures", name)
