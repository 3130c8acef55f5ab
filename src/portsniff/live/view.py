"""The live services table: packets/s and bytes/s per service while capturing.

:class:`ServiceBoard` holds the counters (plain Python, testable without a terminal);
:func:`render_board` turns them into rich renderables; :class:`LiveTable` shows them with
rich's Live display, refreshed at most twice a second. Packet and registry strings are
never read as rich markup, and their control characters are made visible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from portsniff.annotate.records import PacketRecord
from portsniff.caveat import CAVEAT, CAVEAT_SOURCE
from portsniff.live.backend import CaptureStats
from portsniff.report.summary_view import clean, count, human_bytes

if TYPE_CHECKING:
    from rich.console import RenderableType

    from portsniff.annotate.vector import LabelledBatch

#: A service stays highlighted as new for this many seconds after its first packet.
NEW_SECONDS = 5.0
#: Rates are averaged over about this many seconds.
RATE_WINDOW = 2.0
#: Refreshes per second, at most.
MAX_REFRESH = 2.0
DEFAULT_ROWS = 20


@dataclass(slots=True)
class ServiceCounter:
    """Traffic so far on one (service, proto, port), and its recent rate."""

    service: str | None
    proto: str
    port: int
    status: str | None
    description: str | None
    first_seen: float  # monotonic seconds
    packets: int = 0
    bytes: int = 0
    history: deque[tuple[float, int, int]] = field(default_factory=deque)
    pps: float = 0.0
    bps: float = 0.0

    @property
    def assigned(self) -> bool:
        return self.status == "assigned"

    def sample(self, now: float) -> None:
        """Record the counters at ``now`` and update the rates over the window."""
        self.history.append((now, self.packets, self.bytes))
        while len(self.history) > 2 and now - self.history[1][0] >= RATE_WINDOW:
            self.history.popleft()
        t0, p0, b0 = self.history[0]
        if now > t0:
            self.pps = (self.packets - p0) / (now - t0)
            self.bps = (self.bytes - b0) / (now - t0)


@dataclass(slots=True)
class ServiceBoard:
    """Counters per service for the live table (fed with labelled packets)."""

    interface: str
    tool: str
    started: float  # monotonic seconds
    rows: dict[tuple[str | None, str, int], ServiceCounter] = field(default_factory=dict)
    packets: int = 0
    bytes: int = 0
    no_port: int = 0  # packets without ports (ICMP, ARP, non-IP)
    stats: CaptureStats | None = None
    note: str | None = None

    def add(self, r: PacketRecord, now: float) -> None:
        """Count one labelled packet seen at ``now`` (monotonic)."""
        self.packets += 1
        self.bytes += r.len
        if r.service_port is None:
            self.no_port += 1
            return
        key = (r.service, r.proto, r.service_port)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = ServiceCounter(
                r.service, r.proto, r.service_port, r.status, r.description, now
            )
            row.history.append((now, 0, 0))
        row.packets += 1
        row.bytes += r.len

    def add_batch(self, lb: LabelledBatch, now: float) -> None:
        """Count every packet of ``lb`` seen at ``now`` (as :meth:`add` of each record)."""
        import numpy as np

        from portsniff.decode.packet import PROTOS

        n = len(lb)
        if n == 0:
            return
        # Rows with a record of their own (tunnels, fragments, ...) count as records do.
        own = lb.records
        for record in own.values():
            self.add(record, now)
        side = lb.side
        if own:
            side = side.copy()
            side[list(own)] = -1  # counted above
        plain = side >= 0
        self.packets += int(np.count_nonzero(plain))
        self.bytes += int(lb.wirelen[plain].sum())
        self.no_port += int(np.count_nonzero(side == 0))
        rows = np.flatnonzero(side > 0)
        if not rows.size:
            return
        port = np.where(side[rows] == 2, lb.dst_port[rows], lb.src_port[rows]).astype(np.int64)
        key = lb.proto[rows].astype(np.int64) * 65536 + port
        keys, inverse = np.unique(key, return_inverse=True)
        packets = np.bincount(inverse, minlength=keys.size)
        nbytes = np.bincount(inverse, weights=lb.wirelen[rows], minlength=keys.size)
        label = lb.labels.label
        for k, p, b in zip(keys.tolist(), packets.tolist(), nbytes.tolist(), strict=True):
            proto = k >> 16
            lab = label(proto, k & 0xFFFF)
            name = PROTOS[proto]
            rkey = (lab.service, name, lab.port)
            row = self.rows.get(rkey)
            if row is None:
                row = self.rows[rkey] = ServiceCounter(
                    lab.service, name, lab.port, lab.status, lab.description, now
                )
                row.history.append((now, 0, 0))
            row.packets += p
            row.bytes += round(b)

    def sample(self, now: float) -> None:
        for row in self.rows.values():
            row.sample(now)

    def ranked(self) -> list[ServiceCounter]:
        """Busiest now first, then most bytes so far."""
        return sorted(
            self.rows.values(), key=lambda r: (-r.bps, -r.bytes, r.proto, r.port, r.service or "")
        )


def _rate(value: float, unit: str) -> str:
    if unit == "B":
        return human_bytes(round(value)) + "/s"
    return f"{value:,.1f}/s" if value < 100 else f"{round(value):,}/s"


def drops_text(stats: CaptureStats | None) -> str:
    """``kernel drops: 0, interface drops: 0`` (or why they are not known)."""
    if stats is None:
        return "kernel drops: not reported yet"
    kernel = "unknown" if stats.dropped_kernel is None else count(stats.dropped_kernel)
    text = f"kernel drops: {kernel}"
    if stats.dropped_interface is not None:
        text += f", interface drops: {count(stats.dropped_interface)}"
    if stats.dropped_tool is not None:
        text += f", {stats.tool} drops: {count(stats.dropped_tool)}"
    return text


def render_board(
    board: ServiceBoard, now: float, max_rows: int = DEFAULT_ROWS, color: bool = True
) -> RenderableType:
    """The table with its header line and the caveat footer, as one rich renderable."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    elapsed = max(now - board.started, 0.0)
    unknown = sum(1 for r in board.rows.values() if not r.assigned)
    head = Text(
        f"portsniff live on {clean(board.interface)} ({board.tool}) - "
        f"{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d} - "
        f"{count(board.packets)} packets, {human_bytes(board.bytes)} - "
        f"{len(board.rows) - unknown} services, {unknown} unknown ports - "
        f"{drops_text(board.stats)} - Ctrl-C stops"
    )
    dropped = board.stats.dropped if board.stats is not None else None
    if dropped and color:
        head.stylize("bold red")
    table = Table(expand=False, show_edge=False, pad_edge=False)
    for name, right in (
        ("Service", False),
        ("Port", True),
        ("Proto", False),
        ("Packets/s", True),
        ("Bytes/s", True),
        ("Packets", True),
        ("Bytes", True),
        ("Status", False),
        ("Description", False),
    ):
        table.add_column(name, justify="right" if right else "left", no_wrap=name != "Description")
    ranked = board.ranked()
    for row in ranked[:max_rows]:
        new = now - row.first_seen < NEW_SECONDS
        status = row.status or "-"
        if new:
            status += ", new"
        style = None
        if color:
            style = "bold green" if new else (None if row.assigned else "yellow")
        table.add_row(
            Text(clean(row.service) if row.service else "(unknown port)"),
            str(row.port),
            row.proto,
            _rate(row.pps, "p"),
            _rate(row.bps, "B"),
            count(row.packets),
            human_bytes(row.bytes),
            Text(status),
            Text(clean(row.description) if row.description else ""),
            style=style,
        )
    parts: list[Any] = [head, table]
    more = len(ranked) - max_rows
    if more > 0:
        parts.append(Text(f"... {more} more services (the final summary lists them all)"))
    if board.no_port:
        parts.append(Text(f"{count(board.no_port)} packets without ports (ICMP, ARP, ...)"))
    if board.note:
        parts.append(Text(clean(board.note), style="bold red" if color else ""))
    footer = Text(f"IANA: {CAVEAT} ({CAVEAT_SOURCE})", style="dim" if color else "")
    parts.append(footer)
    return Group(*parts)


class LiveTable:
    """rich Live display of a ServiceBoard on ``stream`` (a terminal)."""

    def __init__(self, board: ServiceBoard, stream: TextIO, clock: Any) -> None:
        from rich.console import Console
        from rich.live import Live

        self.board = board
        self.clock = clock
        self.console = Console(file=stream, markup=False, emoji=False, highlight=False)
        # No refresh thread: the capture loop calls refresh(), so the board is never
        # read while it is being updated.
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self._last = -1e9

    def __enter__(self) -> LiveTable:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh(force=True)
        self.live.stop()

    def add(self, record: PacketRecord) -> None:
        self.board.add(record, self.clock())

    def add_batch(self, lb: LabelledBatch) -> None:
        self.board.add_batch(lb, self.clock())

    def refresh(self, force: bool = False) -> None:
        """Redraw, at most MAX_REFRESH times a second unless ``force``."""
        now = self.clock()
        if not force and now - self._last < 1.0 / MAX_REFRESH:
            return
        self._last = now
        self.board.sample(now)
        rows = max(self.console.size.height - 8, 5)
        self.live.update(render_board(self.board, now, rows), refresh=True)
