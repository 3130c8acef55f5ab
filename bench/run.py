#!/usr/bin/env python3
"""Time portsniff against its peers on a generated workload and write bench/RESULTS.md.

Every command is a whole process (start-up included), run in turn A B C ... A B C ...
``--repeat`` times, so that machine noise hits all of them alike; the table shows medians,
packets per second, ratios to ``tcpdump -nn -r`` and to tshark's conversation statistics,
and each command's peak resident memory. Peers missing on the machine are left out (and
said so). Benchmarks are never tests: ``tests/bench`` only runs this with ``--quick``.

    OPENBLAS_NUM_THREADS=1 python3 bench/run.py --packets 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Runs a command and prints "seconds peak_kib rc". With "sample", the peak is the largest
# sum, over samples every 20 ms, of the proportional set size (PSS: shared pages split
# between the processes sharing them) of the command and all its descendants: with worker
# processes, the memory of the whole run, not of its biggest process. Sampling costs CPU,
# so timed runs do not sample ("time": ru_maxrss of the biggest process).
_WRAP = r"""
import os, resource, subprocess, sys, time

def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out

def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0

import threading
peak = 0
done = threading.Event()

def sample(pid):
    global peak
    while not done.wait(0.02):
        peak = max(peak, sum(pss(p) for p in tree(pid)))

sampling = sys.argv[1] == "sample"
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
if sampling:
    sampler.start()
rc = proc.wait()  # the timing does not wait for the sampler
dt = time.perf_counter() - t
done.set()
if sampling:
    sampler.join()
print(dt, max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), rc)
"""

_DPKT_LOOP = r"""
import sys, dpkt, socket
services = {80: "http", 443: "https", 53: "domain", 123: "ntp", 22: "ssh", 5353: "mdns"}
counts = {}
with open(sys.argv[1], "rb") as fh:
    for ts, buf in dpkt.pcap.Reader(fh):
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            continue
        t = ip.data
        if isinstance(t, (dpkt.tcp.TCP, dpkt.udp.UDP)):
            port = min(t.sport, t.dport)
            name = services.get(t.dport) or services.get(t.sport) or port
            counts[name] = counts.get(name, 0) + 1
print(len(counts))
"""

_SCAPY_RAW_LOOP = r"""
import struct, sys
from scapy.utils import RawPcapReader
services = {80: "http", 443: "https", 53: "domain", 123: "ntp", 22: "ssh", 5353: "mdns"}
counts = {}
u16 = struct.Struct("!HH").unpack_from
for data, _meta in RawPcapReader(sys.argv[1]):
    off = 12
    et = data[12] << 8 | data[13]
    if et == 0x8100:
        et = data[16] << 8 | data[17]
        off = 16
    off += 2
    if et == 0x0800:
        proto = data[off + 9]
        l4 = off + (data[off] & 15) * 4
    elif et == 0x86DD:
        proto = data[off + 6]
        l4 = off + 40
    else:
        continue
    if proto in (6, 17) and len(data) >= l4 + 4:
        sp, dp = u16(data, l4)
        name = services.get(dp) or services.get(sp) or min(sp, dp)
        counts[name] = counts.get(name, 0) + 1
print(len(counts))
"""

_PYSHARK_LOOP = r"""
import sys, pyshark
n = 0
cap = pyshark.FileCapture(sys.argv[1], keep_packets=False)
for pkt in cap:
    n += 1
    if n >= int(sys.argv[2]):
        break
cap.close()
print(n)
"""


@dataclass
class Command:
    """One timed command; ``packets`` is what it processes (for packets/s)."""

    name: str
    argv: list[str]
    packets: int
    times: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    tree_kib: int = 0  # peak PSS of the command and its descendants (one sampled run)
    failed: int = 0

    @property
    def peak_mib(self) -> float:
        """Peak memory: the sampled whole-tree PSS, or the biggest process if larger."""
        return max([self.tree_kib, *self.rss_kib]) / 1024

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _module_version(name: str) -> str | None:
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import importlib.metadata, {name}; print(importlib.metadata.version('{name}'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def commands(
    workload: Path, packets: int, quick: bool, scripts: Path, versions: dict[str, str]
) -> tuple[list[Command], list[str]]:
    """The commands to time, and notes on peers left out."""
    w = str(workload)
    ps = [sys.executable, "-m", "portsniff"]
    summary = [*ps, "summary", w, "--format", "json", "-o", os.devnull]
    out = [
        Command("portsniff summary --format json", summary, packets),
        Command("portsniff summary --workers 1", [*summary, "--workers", "1"], packets),
        Command("portsniff summary --workers 2", [*summary, "--workers", "2"], packets),
        Command("portsniff annotate (text)", [*ps, "annotate", w], packets),
        Command("portsniff annotate --workers 1", [*ps, "annotate", w, "--workers", "1"], packets),
        Command(
            "portsniff annotate --format jsonl", [*ps, "annotate", w, "--format", "jsonl"], packets
        ),
        Command("portsniff registry lookup 80/tcp", [*ps, "registry", "lookup", "80/tcp"], 0),
    ]
    notes: list[str] = []
    if shutil.which("tcpdump"):
        out.append(Command("tcpdump -nn -r", ["tcpdump", "-nn", "-r", w], packets))
    else:
        notes.append("tcpdump: not installed")
    if shutil.which("tshark"):
        out.append(
            Command(
                "tshark -q -z conv,tcp -z conv,udp",
                ["tshark", "-r", w, "-q", "-z", "conv,tcp", "-z", "conv,udp"],
                packets,
            )
        )
    else:
        notes.append("tshark: not installed (no conversation-statistics baseline)")
    if versions.get("dpkt"):
        (scripts / "dpkt_loop.py").write_text(_DPKT_LOOP)
        out.append(
            Command("dpkt loop", [sys.executable, str(scripts / "dpkt_loop.py"), w], packets)
        )
    else:
        notes.append("dpkt: not installed")
    if versions.get("scapy"):
        (scripts / "scapy_raw.py").write_text(_SCAPY_RAW_LOOP)
        out.append(
            Command(
                "scapy RawPcapReader loop",
                [sys.executable, str(scripts / "scapy_raw.py"), w],
                packets,
            )
        )
    if not quick and versions.get("pyshark") and shutil.which("tshark"):
        n = min(10_000, packets)
        (scripts / "pyshark_loop.py").write_text(_PYSHARK_LOOP)
        out.append(
            Command(
                f"pyshark FileCapture ({n} packets)",
                [sys.executable, str(scripts / "pyshark_loop.py"), w, str(n)],
                n,
            )
        )
    elif not quick:
        notes.append("pyshark: not installed or no tshark")
    out += pcapng_commands(workload, packets, scripts, notes)
    if not quick:
        out += engine_commands(workload, scripts, versions, notes)
    return out, notes


def pcapng_commands(workload: Path, packets: int, scripts: Path, notes: list[str]) -> list[Command]:
    """The same packets as pcapng (Wireshark's and dumpcap's format, what most captures
    are): portsniff and tcpdump read the copy that editcap writes."""
    editcap = shutil.which("editcap")
    if editcap is None:
        notes.append("editcap: not installed (no pcapng rows)")
        return []
    copy = scripts / "workload.pcapng"
    done = subprocess.run(
        [editcap, "-F", "pcapng", str(workload), str(copy)], capture_output=True, check=False
    )
    if done.returncode != 0:
        notes.append(f"editcap failed ({done.stderr.decode(errors='replace').strip()})")
        return []
    w = str(copy)
    ps = [sys.executable, "-m", "portsniff"]
    out = [
        Command("portsniff annotate (text, pcapng copy)", [*ps, "annotate", w], packets),
        Command(
            "portsniff summary --format json (pcapng copy)",
            [*ps, "summary", w, "--format", "json", "-o", os.devnull],
            packets,
        ),
        Command(
            "portsniff summary --workers 2 (pcapng copy)",
            [*ps, "summary", w, "--format", "json", "-o", os.devnull, "--workers", "2"],
            packets,
        ),
    ]
    if shutil.which("tcpdump"):
        out.append(Command("tcpdump -nn -r (pcapng copy)", ["tcpdump", "-nn", "-r", w], packets))
    # Rotated captures (tcpdump -C, dumpcap's ring buffer): the same packets in 4 files.
    parts = scripts / "rotated"
    parts.mkdir(exist_ok=True)
    done = subprocess.run(
        [
            editcap,
            "-F",
            "pcap",
            "-c",
            str(max(1, -(-packets // 4))),
            str(workload),
            str(parts / "part.pcap"),
        ],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        notes.append(f"editcap -c failed ({done.stderr.decode(errors='replace').strip()})")
        return out
    d = str(parts)
    summary = [*ps, "summary", d, "--format", "json", "-o", os.devnull]
    out += [
        Command("portsniff summary --workers 1 (4 files)", [*summary, "--workers", "1"], packets),
        Command("portsniff summary --workers 2 (4 files)", [*summary, "--workers", "2"], packets),
    ]
    return out


#: Packets the slow engines and their libraries' own loops are timed on.
ENGINE_PACKETS = {"scapy": 5_000, "pyshark": 2_000}

_SCAPY_DISSECT_LOOP = r"""
import sys
from scapy.all import PcapReader  # every layer loaded: Ethernet, IP, TCP, ...
n = 0
for pkt in PcapReader(sys.argv[1]):
    pkt.summary()  # every layer dissected
    n += 1
print(n)
"""


def head_of(workload: Path, packets: int, out: Path) -> Path:
    """The first ``packets`` records of a classic pcap ``workload``, written to ``out``."""
    import struct

    data = workload.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    for _ in range(packets):
        if pos + 16 > len(data):
            break
        (caplen,) = struct.unpack_from(endian + "I", data, pos + 8)
        pos += 16 + caplen
    out.write_bytes(data[:pos])
    return out


def engine_commands(
    workload: Path, scripts: Path, versions: dict[str, str], notes: list[str]
) -> list[Command]:
    """The scapy and pyshark engines beside a plain loop over their library's own reader,
    on the first packets of the workload."""
    peers = {
        "scapy": ("scapy PcapReader dissecting loop", "scapy_dissect.py", _SCAPY_DISSECT_LOOP),
        "pyshark": ("pyshark FileCapture", "pyshark_loop.py", _PYSHARK_LOOP),
    }
    out: list[Command] = []
    for engine, (peer, script, code) in peers.items():
        if not versions.get(engine) or (engine == "pyshark" and not shutil.which("tshark")):
            notes.append(f"{engine}: not installed (no {engine} engine figures)")
            continue
        n = ENGINE_PACKETS[engine]
        part = str(head_of(workload, n, scripts / f"head-{n}.pcap"))
        (scripts / script).write_text(code)
        mine = [sys.executable, "-m", "portsniff", "annotate", part, "--engine", engine]
        theirs = [sys.executable, str(scripts / script), part, str(n)]
        out.append(Command(f"portsniff annotate --engine {engine} ({n} packets)", mine, n))
        out.append(Command(f"{peer} ({n} packets)", theirs, n))
    return out


def _wrapped(mode: str, c: Command, env: dict[str, str]) -> tuple[float, int, int]:
    """Run ``c`` under _WRAP: (seconds, peak KiB, exit status)."""
    res = subprocess.run(
        [sys.executable, "-c", _WRAP, mode, *c.argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    seconds, peak, rc = res.stdout.split()
    return float(seconds), int(peak), int(rc)


def run(cmds: list[Command], repeat: int, env: dict[str, str]) -> None:
    """Each command once per round, rounds ``repeat`` times (A B C A B C ...), after one
    untimed round that warms the page cache and Python's bytecode cache and samples each
    command's memory (all its processes)."""
    for c in cmds:
        c.tree_kib = _wrapped("sample", c, env)[1]
    for _ in range(repeat):
        # The first command of a round, right after the last one (a peer), ran ~17 %
        # slower than the same command later in the round: a round starts with an
        # untimed run of it.
        _wrapped("time", cmds[0], env)
        for c in cmds:
            seconds, rss, rc = _wrapped("time", c, env)
            if rc != 0:
                c.failed += 1
            c.times.append(seconds)
            c.rss_kib.append(rss)


def targets(by: dict[str, Command], scaled: list[Command], args: argparse.Namespace) -> list[str]:
    """The issue's targets against this run's figures (met or not)."""
    tcpdump = by.get("tcpdump -nn -r")
    tshark = by.get("tshark -q -z conv,tcp -z conv,udp")
    rows: list[tuple[str, str, bool]] = []

    def ratio(name: str, peer: Command | None, limit: float, what: str) -> None:
        c = by.get(name)
        if c and c.times and peer and peer.times:
            r = c.median / peer.median
            rows.append((f"`{name}` <= {limit}x {what}", f"{r:.3f}x", r <= limit))

    ratio("portsniff summary --format json", tshark, 0.05, "tshark conv")
    ratio("portsniff summary --format json", tcpdump, 0.3, "tcpdump")
    ratio("portsniff annotate (text)", tcpdump, 0.45, "tcpdump")
    ratio("portsniff annotate --format jsonl", tcpdump, 1.0, "tcpdump")
    one, two = by.get("portsniff summary --workers 1"), by.get("portsniff summary --workers 2")
    if one and two and one.times and two.times:
        speed_up = one.median / two.median
        rows.append(
            ("`summary --workers 2` >= 1.7x one worker", f"{speed_up:.2f}x", speed_up >= 1.7)
        )
    lookup = by.get("portsniff registry lookup 80/tcp")
    if lookup and lookup.times:
        rows.append(("registry lookup <= 0.25 s", f"{lookup.median:.3f} s", lookup.median <= 0.25))
    for name in ("portsniff summary --format json", "portsniff annotate (text)"):
        c = by.get(name)
        if c and c.rss_kib:
            mib = c.peak_mib
            rows.append((f"`{name}` peak memory <= 150 MiB", f"{mib:.0f} MiB", mib <= 150))
    for engine, peer in (
        ("scapy", "scapy PcapReader dissecting loop"),
        ("pyshark", "pyshark FileCapture"),
    ):
        n = ENGINE_PACKETS[engine]
        mine = by.get(f"portsniff annotate --engine {engine} ({n} packets)")
        theirs = by.get(f"{peer} ({n} packets)")
        if mine and theirs and mine.times and theirs.times:
            r = mine.median / theirs.median
            rows.append(
                (f"{engine} engine no slower than `{peer}`", f"{r:.2f}x its time", r <= 1.0)
            )
    factor = (args.scale_packets or 0) / args.packets if args.packets else 0
    for b in scaled:
        c = by[b.name]
        if factor and c.times:
            ratio = b.times[0] / c.median
            limit = 1.05 * factor
            rows.append(
                (
                    f"`{b.name}` time grows linearly: {factor:g}x packets <= {limit:g}x time",
                    f"{ratio:.2f}x",
                    ratio <= limit,
                )
            )
        rows.append(
            (
                f"`{b.name}` peak memory <= 150 MiB on the {factor:g}x capture",
                f"{b.peak_mib:.0f} MiB",
                b.peak_mib <= 150,
            )
        )
    if not rows:
        return []
    out = ["", "| target (issue 5) | this run | met |", "|---|---:|:---:|"]
    out += [f"| {t} | {v} | {'yes' if ok else '**no**'} |" for t, v, ok in rows]
    return out


#: The commands whose growth with file size ``--scale`` measures.
SCALED = ("portsniff summary --format json", "portsniff annotate (text)")


def _warm(path: Path) -> None:
    """Read ``path`` once, so that it is in the page cache (the kernel may have dropped
    parts of a big file since the last run)."""
    with path.open("rb", buffering=0) as fh:
        buf = bytearray(16 << 20)
        while fh.readinto(buf):
            pass


def scale(cmds: list[Command], workload: Path, big: Path, env: dict[str, str]) -> list[Command]:
    """The SCALED commands run once on ``big`` (timed, then sampled for memory)."""
    out = []
    for c in cmds:
        if c.name in SCALED:
            _warm(big)
            argv = [str(big) if a == str(workload) else a for a in c.argv]
            b = Command(c.name, argv, 0)
            seconds, rss, rc = _wrapped("time", b, env)
            b.times.append(seconds)
            b.rss_kib.append(rss)
            b.failed += rc != 0
            b.tree_kib = _wrapped("sample", b, env)[1]
            out.append(b)
    return out


def scale_lines(cmds: list[Command], scaled: list[Command], args: argparse.Namespace) -> list[str]:
    """The --scale section: time on the big capture over the median on the workload."""
    by = {c.name: c for c in cmds}
    factor = (args.scale_packets or 0) / args.packets if args.packets else 0
    lines = [
        "",
        f"## Growth: `{args.scale}`"
        + (f" ({args.scale_packets} packets, {factor:g}x)" if args.scale_packets else ""),
        "",
        "| command | seconds | / workload median | peak memory MiB |",
        "|---|---:|---:|---:|",
    ]
    for b in scaled:
        ratio = b.times[0] / by[b.name].median
        failed = f" ({b.failed} failed)" if b.failed else ""
        lines.append(f"| `{b.name}`{failed} | {b.times[0]:.2f} | {ratio:.2f} | {b.peak_mib:.0f} |")
    return lines


def report(
    cmds: list[Command],
    notes: list[str],
    args: argparse.Namespace,
    workload: Path,
    versions: dict[str, str],
    scaled: list[Command] | None = None,
) -> str:
    """RESULTS.md text."""
    by = {c.name: c for c in cmds}
    tcpdump = by.get("tcpdump -nn -r")
    tshark = by.get("tshark -q -z conv,tcp -z conv,udp")
    lines = [
        "# portsniff benchmark results",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({_cpu()})",
        (
            f"- workload: `{args.workload}` ({args.packets} packets, "
            if args.workload
            else "- workload: `bench/gen_workload.py --packets "
            f"{args.packets} --seed {args.seed}{_flows(args)}` ("
        )
        + f"{workload.stat().st_size / 1e6:.1f} MB), file in page cache",
        f"- registry: {os.environ.get('PORTSNIFF_REGISTRY') or 'default (cache/system/bundled)'}",
        f"- rounds: {args.repeat} (commands alternate A B C ... A B C ...; medians shown) "
        "after one untimed round, each round after an untimed run of its first command; "
        "OPENBLAS_NUM_THREADS=1; Python bytecode cached",
        "- peak memory: the largest sum of PSS over the command's processes (sampled every "
        "20 ms in the untimed round), or the biggest process's peak RSS if larger",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        "",
        "| command | median s | packets/s | vs tcpdump | vs tshark conv | peak memory MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in cmds:
        rate = f"{c.packets / c.median:,.0f}" if c.packets and c.median > 0 else "-"
        vs_td = f"{c.median / tcpdump.median:.2f}x" if tcpdump and tcpdump.times else "-"
        vs_ts = f"{c.median / tshark.median:.3f}x" if tshark and tshark.times else "-"
        failed = f" ({c.failed} failed)" if c.failed else ""
        lines.append(
            f"| `{c.name}`{failed} | {c.median:.3f} | {rate} | {vs_td} | {vs_ts} | "
            f"{c.peak_mib:.0f} |"
        )
    lines += targets(by, scaled or [], args)
    if scaled:
        lines += scale_lines(cmds, scaled, args)
    if notes:
        lines += ["", "Left out: " + "; ".join(notes)]
    return "\n".join(lines) + "\n"


def _flows(args: argparse.Namespace) -> str:
    """The generator's options besides packets and seed, as given."""
    out = f" --flows {args.flows}" if args.flows else ""
    for name in ("vlan", "fragments"):
        value = getattr(args, name, None)
        if value is not None:
            out += f" --{name} {value:g}"
    link = getattr(args, "link", None)
    if link is not None:
        out += f" --link {link}"
    stretch = getattr(args, "stretch", None)
    if stretch is not None:
        out += f" --stretch {stretch}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--flows",
        type=int,
        help="conversations in the generated workload (gen_workload.py's default when not "
        "given; e.g. 200000 in 500000 packets for traffic of many short flows)",
    )
    ap.add_argument("--vlan", type=float, help="gen_workload.py's --vlan (1: a trunk port)")
    ap.add_argument(
        "--fragments", type=float, help="gen_workload.py's --fragments (1: fragmented UDP)"
    )
    ap.add_argument(
        "--link",
        help="gen_workload.py's --link (qinq, mpls, pppoe: a provider's network; vxlan, gre, ipip, geneve: tunnels)",
    )
    ap.add_argument(
        "--stretch", type=int, help="gen_workload.py's --stretch (300: 1M packets in 8 hours)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="leave out the slowest peers (pyshark)")
    ap.add_argument("--workload", type=Path, help="use this capture instead of generating one")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument(
        "--scale",
        type=Path,
        metavar="BIG",
        help="also run summary and annotate once on this bigger capture (e.g. 10x the "
        "packets): time ratio to the workload and peak memory (growth with file size)",
    )
    ap.add_argument("--scale-packets", type=int, help="packets in --scale (for the ratio)")
    args = ap.parse_args(argv)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    # As on a user's machine, Python keeps compiled bytecode (an editable install has
    # none until the first run): otherwise every run recompiles portsniff's modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="portsniff-bench-") as tmp:
        scripts = Path(tmp)
        workload = args.workload
        if workload is None:
            workload = scripts / "workload.pcap"
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "gen_workload.py"),
                    "--packets",
                    str(args.packets),
                    "--seed",
                    str(args.seed),
                    *(["--flows", str(args.flows)] if args.flows else []),
                    *(["--vlan", str(args.vlan)] if args.vlan is not None else []),
                    *(["--fragments", str(args.fragments)] if args.fragments is not None else []),
                    *(["--link", args.link] if args.link is not None else []),
                    *(["--stretch", str(args.stretch)] if args.stretch is not None else []),
                    "--out",
                    str(workload),
                ],
                check=True,
            )
        versions = {
            "python": platform.python_version(),
            "portsniff": _module_version("portsniff") or "?",
            "numpy": _module_version("numpy") or "?",
            "scapy": _module_version("scapy") or "",
            "dpkt": _module_version("dpkt") or "",
            "pyshark": _module_version("pyshark") or "",
            "tcpdump": _version(["tcpdump", "--version"]) if shutil.which("tcpdump") else "",
            "tshark": _version(["tshark", "--version"]) if shutil.which("tshark") else "",
        }
        cmds, notes = commands(workload, args.packets, args.quick, scripts, versions)
        run(cmds, args.repeat, env)
        scaled = scale(cmds, workload, args.scale, env) if args.scale else []
        text = report(cmds, notes, args, workload, versions, scaled)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
