#!/usr/bin/env python3
"""Packet loss of ``portsniff live`` against plain ``tcpdump -w /dev/null`` (needs root).

A workload is replayed with tcpreplay onto one end of a veth pair whose ends live in two
network namespaces this script creates (and removes); ``portsniff live`` and a plain
``tcpdump -w /dev/null`` capture on the other end at the same time. For each rate the
script records packets sent (tcpreplay's count), captured and dropped (each tool's
counters), and writes the table to bench/LIVE_RESULTS.md.

    sudo python3 bench/live_loss.py [--rates 10000,50000,100000,200000] [--seconds 5]

Workload: ../shared/bench/gen_pcap.py when it is there (the shared yardstick), else a
small generator of our own (UDP/TCP to a mix of registered and unassigned ports).
Nothing leaves the namespaces: replayed frames go into the veth pair only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_GEN = ROOT.parent / "shared" / "bench" / "gen_pcap.py"
PORTS = [("udp", 53), ("udp", 123), ("udp", 47808), ("tcp", 443), ("tcp", 80),
         ("tcp", 44818), ("tcp", 502), ("udp", 50000), ("tcp", 61000)]  # fmt: skip


def own_workload(path: Path, packets: int, seed: int) -> None:
    """Ethernet/IPv4 UDP and TCP frames of 60-600 bytes to a mix of ports."""
    rng = random.Random(seed)
    out = [b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 262144, 1)]
    for i in range(packets):
        proto, port = rng.choice(PORTS)
        payload = bytes(rng.randrange(0, 540))
        sport = rng.randrange(49152, 65535)
        if proto == "udp":
            l4 = struct.pack("!HHHH", sport, port, 8 + len(payload), 0) + payload
            number = 17
        else:
            l4 = struct.pack("!HHIIBBHHH", sport, port, i, 0, 0x50, 0x18, 1024, 0, 0) + payload
            number = 6
        src = bytes([10, 99, rng.randrange(256), rng.randrange(1, 255)])
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0, 64, number, 0,
                         src, bytes([10, 99, 0, 1])) + l4  # fmt: skip
        frame = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", 1_700_000_000 + i // 100_000, i % 1_000_000,
                               len(frame), len(frame)) + frame)  # fmt: skip
    path.write_bytes(b"".join(out))


def workload(path: Path, packets: int) -> str:
    if SHARED_GEN.exists():
        subprocess.run([sys.executable, str(SHARED_GEN), "--packets", str(packets), "--seed", "1",
                        "--out", str(path)], check=True)  # fmt: skip
        return f"{SHARED_GEN.name} --packets {packets} --seed 1"
    print(f"{SHARED_GEN} is absent: using the script's own generator", file=sys.stderr)
    own_workload(path, packets, 1)
    return f"bench/live_loss.py own generator, {packets} packets"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Pair:
    def __init__(self) -> None:
        tag = f"{random.randrange(16**6):06x}"
        self.a, self.b = f"psniff-bench-{tag}-a", f"psniff-bench-{tag}-b"
        self.if_a, self.if_b = f"pba{tag}", f"pbb{tag}"

    def __enter__(self) -> Pair:
        ip("netns", "add", self.a)
        ip("netns", "add", self.b)
        ip("-n", self.a, "link", "add", self.if_a, "type", "veth", "peer", "name", self.if_b,
           "netns", self.b)  # fmt: skip
        for ns, dev in ((self.a, self.if_a), (self.b, self.if_b)):
            ip("-n", ns, "link", "set", dev, "up")
            # No IPv6 chatter (router solicitations, MLD) beside the workload.
            subprocess.run(["ip", "netns", "exec", ns, "sh", "-c",
                            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6"],
                           capture_output=True)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def popen(self, ns: str, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)  # type: ignore[call-overload, no-any-return]


def wait_for(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path}: no {text!r} within {timeout} s:\n{path.read_text()}")


def run_rate(pair: Pair, pcap: Path, rate: int, seconds: float, mode: str, tmp: Path) -> dict:
    """One replay at ``rate`` with portsniff (``mode``) and plain tcpdump capturing."""
    summary = tmp / "summary.json"
    ps_err = tmp / "ps.err"
    td_err = tmp / "td.err"
    view, tool = mode.split("/")
    ps_argv = [sys.executable, "-m", "portsniff", "live", pair.if_a, "--view", view,
               "--tool", tool, "--summary-format", "json", "-o", str(summary)]  # fmt: skip
    with ps_err.open("wb") as e1, td_err.open("wb") as e2:
        ps = pair.popen(pair.a, ps_argv, stdout=subprocess.DEVNULL, stderr=e1)
        td = pair.popen(pair.a, ["tcpdump", "-i", pair.if_a, "-w", "/dev/null"],
                        stdout=subprocess.DEVNULL, stderr=e2)  # fmt: skip
        try:
            wait_for(ps_err, "capturing on")
            wait_for(td_err, "listening on")
            count = int(rate * seconds)
            replay = subprocess.run(
                ["ip", "netns", "exec", pair.b, "tcpreplay", "-i", pair.if_b, "--pps", str(rate),
                 "--limit", str(count), "--loop", "0", "--preload-pcap", str(pcap)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            # Let portsniff work through what the ring buffer holds: packets still in it
            # at SIGINT are neither captured nor counted as dropped.
            time.sleep(6.0)
        finally:
            for p in (ps, td):
                p.send_signal(signal.SIGINT)
            ps.wait(120)
            td.wait(60)
    sent = int(re.search(r"Actual: (\d+) packets", replay.stdout).group(1))  # type: ignore[union-attr]
    rated = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", replay.stdout)
    doc = json.loads(summary.read_text())
    cap = doc["capture"]["files"][0]["capture"] or {}
    td_text = td_err.read_text()
    td_cap = re.findall(r"(\d+) packets captured", td_text)
    td_drop = re.findall(r"(\d+) packets dropped by kernel", td_text)
    return {
        "rate": rate,
        "mode": mode,
        "sent": sent,
        "achieved_pps": float(rated.group(1)) if rated else None,
        "portsniff_labelled": doc["capture"]["packets"],
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "portsniff_dropped": (cap.get("dropped_by_kernel") or 0)
        + (cap.get("dropped_by_interface") or 0)
        + (cap.get("dropped_by_tool") or 0),
        "tcpdump_captured": int(td_cap[-1]) if td_cap else None,
        "tcpdump_dropped": int(td_drop[-1]) if td_drop else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="10000,50000,100000,200000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--modes", default="lines/tcpdump,table/tcpdump,table/dumpcap",
                    help="portsniff view/tool pairs to measure")  # fmt: skip
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "LIVE_RESULTS.md"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("live_loss.py needs root (network namespaces, capture)", file=sys.stderr)
        return 1
    for tool in ("tcpreplay", "tcpdump", "ip"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing (apt-get install -y {tool})", file=sys.stderr)
            return 1
    rates = [int(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pcap = tmp / "w.pcap"
        what = workload(pcap, args.packets)
        with Pair() as pair:
            for rate in rates:
                for mode in modes:
                    r = run_rate(pair, pcap, rate, args.seconds, mode, tmp)
                    print(json.dumps(r), flush=True)
                    results.append(r)
    write_results(Path(args.out), results, what, args.seconds)
    return 0


def write_results(path: Path, results: list[dict], what: str, seconds: float) -> None:
    cpus = os.cpu_count()
    lines = [
        "# Live capture loss: `portsniff live` vs `tcpdump -w /dev/null`",
        "",
        f"Measured by `bench/live_loss.py` on {time.strftime('%Y-%m-%d')}, {cpus} vCPU "
        "shared with other jobs (noisy): tcpreplay replays the workload "
        f"({what}) for {seconds:g} s per rate onto a veth pair between two network "
        "namespaces; `portsniff live` and a plain `tcpdump -w /dev/null` capture on the "
        "other end at the same time. `labelled` = packets portsniff labelled and "
        "summarised; `dropped` = the capture tool's kernel (+ interface, + dumpcap) drop "
        "counters. Mode = portsniff `--view` / `--tool` (lines: one text line per packet "
        "to /dev/null). `load` = the machine's 1-minute load average after the run (other "
        "jobs shared the 2 vCPUs).",
        "",
        "| target pps | achieved pps | mode | sent | portsniff labelled | portsniff dropped "
        "| portsniff loss | tcpdump captured | tcpdump dropped | tcpdump loss | load |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        sent = r["sent"] or 1
        ps_loss = 1 - r["portsniff_labelled"] / sent
        td_loss = 1 - (r["tcpdump_captured"] or 0) / sent
        achieved = f"{r['achieved_pps']:,.0f}" if r["achieved_pps"] else "?"
        lines.append(
            f"| {r['rate']:,} | {achieved} | {r['mode']} | {r['sent']:,} | "
            f"{r['portsniff_labelled']:,} | {r['portsniff_dropped']:,} | {ps_loss:.2%} | "
            f"{r['tcpdump_captured'] or 0:,} | {r['tcpdump_dropped'] or 0:,} | {td_loss:.2%} | "
            f"{r['load_avg_1min']} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
