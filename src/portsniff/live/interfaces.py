"""The network interfaces of this host (this network namespace) and whether we may capture.

Names and indexes come from the kernel (``if_nameindex``), state from ``SIOCGIFFLAGS``
and addresses from ``ip -j addr`` when iproute2 is there (else IPv4 by ioctl and IPv6
from /proc/net/if_inet6), so that the answer is right inside a network namespace too.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass

SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
IFF_UP = 0x1
IFF_LOOPBACK = 0x8

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13

#: ARPHRD_* (/sys/class/net/IF/type) -> LINKTYPE_* libpcap gives for that device.
ARPHRD_TO_LINKTYPE = {
    1: 1,  # ether
    772: 1,  # loopback: Linux shows it as Ethernet
    65534: 101,  # none (tun): raw IP
    776: 101,  # sit
    768: 101,  # ipip
    778: 1,  # gre: cooked in practice, Ethernet is the safe compile target
    801: 105,  # ieee80211
    803: 127,  # ieee80211 radiotap
    512: 9,  # ppp
    32: 1,  # infiniband (cooked by libpcap; compile target only)
}
#: The pseudo-device that captures on every interface (cooked headers).
ANY = "any"
LINKTYPE_LINUX_SLL = 113


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One network interface as ``portsniff interfaces`` lists it."""

    name: str
    index: int
    up: bool
    loopback: bool
    linktype: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Permission:
    """Whether a capture may start, and why (or why not)."""

    permitted: bool
    reason: str


def interface_names() -> list[str]:
    """Names of the interfaces of the current network namespace, in index order."""
    return [name for _, name in sorted(socket.if_nameindex())]


def _flags(name: str) -> int | None:
    """SIOCGIFFLAGS of ``name``; None when there is no such interface."""
    if not name or len(name.encode()) >= 16:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16s16x", name.encode()))
        except OSError:
            return None
    return int(struct.unpack_from("H", res, 16)[0])


def exists(name: str) -> bool:
    """Whether ``name`` is an interface here (``any`` always is)."""
    return name == ANY or _flags(name) is not None


def is_up(name: str) -> bool | None:
    """True when ``name`` is administratively up, False when down, None when it is gone."""
    if name == ANY:
        return True
    flags = _flags(name)
    return None if flags is None else bool(flags & IFF_UP)


def linktype_of(name: str) -> int:
    """The link type libpcap will report for ``name`` (for compiling filters up front)."""
    if name == ANY:
        return LINKTYPE_LINUX_SLL
    try:
        with open(f"/sys/class/net/{name}/type", encoding="ascii") as fh:
            arphrd = int(fh.read().strip())
    except (OSError, ValueError):
        return 1
    return ARPHRD_TO_LINKTYPE.get(arphrd, 1)


def _addresses_ip() -> dict[str, list[str]] | None:
    ip = shutil.which("ip")
    if ip is None:
        return None
    try:
        out = subprocess.run(
            [ip, "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        data = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    result: dict[str, list[str]] = {}
    for entry in data if isinstance(data, list) else []:
        name = entry.get("ifname")
        if not isinstance(name, str):
            continue
        addrs = result.setdefault(name, [])
        for a in entry.get("addr_info") or []:
            local, plen = a.get("local"), a.get("prefixlen")
            if isinstance(local, str):
                addrs.append(f"{local}/{plen}" if plen is not None else local)
    return result


def _addresses_fallback(names: list[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {n: [] for n in names}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            req = struct.pack("16s16x", name.encode())
            with contextlib.suppress(OSError):
                addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24])
                mask = fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, req)[20:24]
                plen = bin(int.from_bytes(mask, "big")).count("1")
                result[name].append(f"{addr}/{plen}")
    with contextlib.suppress(OSError), open("/proc/net/if_inet6", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 6 and parts[5] in result:
                addr6 = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
                result[parts[5]].append(f"{addr6}/{int(parts[2], 16)}")
    return result


def list_interfaces() -> list[InterfaceInfo]:
    """Every interface of this network namespace with its state and addresses."""
    pairs = sorted(socket.if_nameindex())
    names = [n for _, n in pairs]
    addrs = _addresses_ip()
    if addrs is None:
        addrs = _addresses_fallback(names)
    out = []
    for index, name in pairs:
        flags = _flags(name) or 0
        out.append(
            InterfaceInfo(
                name=name,
                index=index,
                up=bool(flags & IFF_UP),
                loopback=bool(flags & IFF_LOOPBACK),
                linktype=linktype_of(name),
                addresses=tuple(addrs.get(name, ())),
            )
        )
    return out


def effective_caps(status_text: str | None = None) -> int:
    """This process's effective capability mask (CapEff in /proc/self/status)."""
    if status_text is None:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                status_text = fh.read()
        except OSError:
            return 0
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            try:
                return int(line.split()[1], 16)
            except (IndexError, ValueError):
                return 0
    return 0


def file_caps(path: str) -> int:
    """The permitted capabilities a program gets from its file (``setcap``), 0 if none."""
    try:
        raw = os.getxattr(path, "security.capability")
    except OSError:
        return 0
    return parse_file_caps(raw)


def parse_file_caps(raw: bytes) -> int:
    """Permitted set of a ``security.capability`` xattr (vfs_cap_data v1, v2 or v3)."""
    if len(raw) < 12:
        return 0
    magic = struct.unpack_from("<I", raw, 0)[0]
    permitted = struct.unpack_from("<I", raw, 4)[0]
    if (magic & 0xFF000000) in (0x02000000, 0x03000000) and len(raw) >= 20:
        permitted |= struct.unpack_from("<I", raw, 12)[0] << 32
    return int(permitted)


def capture_permission(tool: str | None, status_text: str | None = None) -> Permission:
    """Whether a capture with ``tool`` (a path) may open interfaces here.

    ``status_text`` stands in for /proc/self/status (tests).
    """
    if effective_caps(status_text) >> CAP_NET_RAW & 1:
        return Permission(True, "root" if os.geteuid() == 0 else "CAP_NET_RAW")
    if tool is not None and file_caps(tool) >> CAP_NET_RAW & 1:
        return Permission(True, f"{os.path.basename(tool)} has cap_net_raw")
    return Permission(False, "needs root, or CAP_NET_RAW on the capture tool")
