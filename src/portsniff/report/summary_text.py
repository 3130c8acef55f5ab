"""The summary as terminal tables (rich), sized to the terminal.

Piped or redirected (``options.color`` false) the output is plain ASCII art: no ANSI
codes and no box-drawing characters, so it survives ``less``, e-mail and logs. IANA's
caveat is a framed block at the top. Packet and registry strings are never read as rich
markup or emoji codes, and their control characters are made visible.
"""

from __future__ import annotations

import io
import shutil
from typing import TYPE_CHECKING, TextIO

from portsniff.report import summary_view as sv
from portsniff.report.summaries import ReportOptions
from portsniff.summary import Summary

if TYPE_CHECKING:
    from rich.console import Console

FALLBACK_WIDTH = 120
_MIN_WIDE = 16
_KEEP = frozenset({"Originator", "Responder", "File"})  # folded only when they must be
_MIN_FOLD = 6  # narrowest a description or endpoint column gets before numbers fold
_MAX_KEEP = 41  # "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
# rich.box.SIMPLE_HEAD drawn with "-": a rule under the header, nothing else.
_ASCII_HEAD = "    \n    \n ---\n    \n    \n    \n    \n    \n"


def render(summary: Summary, stream: TextIO, options: ReportOptions) -> None:
    """Write the text summary of ``summary`` to ``stream``."""
    from rich.console import Console

    width = options.width or shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, 40),
        color_system="standard" if options.color else None,
        force_terminal=options.color,
        force_jupyter=False,
        force_interactive=False,
        legacy_windows=False,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )
    view = sv.build(summary, options)
    _Writer(console, options.color).write(view)
    # rich pads every cell to the column width; trailing blanks only make diffs noisy.
    stream.write("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n")


class _Writer:
    def __init__(self, console: Console, color: bool) -> None:
        from rich import box

        self.console = console
        self.color = color
        self.panel_box = box.ROUNDED if color else box.ASCII
        # Column gaps instead of vertical rules: tables fit the width with less folding.
        self.box = box.SIMPLE_HEAD if color else box.Box(_ASCII_HEAD, ascii=True)

    def write(self, view: sv.View) -> None:
        from rich.panel import Panel
        from rich.text import Text

        c = self.console
        c.print(Text("portsniff summary", style="bold"))
        c.print(
            Panel(
                Text(f'"{view.caveat}"', style="bold yellow"),
                title=Text(view.caveat_source),
                title_align="left",
                box=self.panel_box,
                border_style="yellow",
            )
        )
        self.heading("Capture")
        self.pairs(view.overview)
        self.table(view.files)
        self.heading("Registry")
        self.table(view.registry)
        for table in (view.services, view.unknown, view.flows):
            self.heading(table.title, table.note)
            self.table(table)
        self.heading("DNS-SD")
        self.table(view.dnssd)
        self.heading("Transport mix")
        self.table(view.transports)
        self.heading(
            "Drill-down filters",
            "BPF for tcpdump -f / dumpcap; display filter for Wireshark / tshark -Y",
        )
        self.drill(view.drill)
        c.print(Text(sv.times_note(view), style="dim"))

    def heading(self, title: str, note: str | None = None) -> None:
        from rich.rule import Rule
        from rich.text import Text

        self.console.print()
        self.console.print(
            Rule(
                Text(title, style="bold cyan"),
                characters="─" if self.color else "-",
                align="left",
                style="cyan",
            )
        )
        if note:
            self.console.print(Text(note, style="dim"))

    def pairs(self, items: list[tuple[str, str]]) -> None:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="bold")
        grid.add_column(overflow="fold")
        for k, v in items:
            grid.add_row(Text(k), Text(v))
        self.console.print(grid)

    def table(self, table: sv.Table) -> None:
        from rich.table import Table
        from rich.text import Text

        if not table.rows:
            self.console.print(Text(f"({table.empty})", style="dim"))
            return
        t = Table(
            box=self.box,
            header_style="bold",
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
            expand=False,
            safe_box=True,
        )
        table = _fold_flags(table)
        widths = _widths(table, self.console.width)
        for col, fixed in zip(table.columns, widths, strict=True):
            t.add_column(
                Text(col.name),
                justify="right" if col.numeric else "left",
                # Never no_wrap: rich crops no_wrap cells of a table that is too wide,
                # losing data; numbers and times are one word and stay whole anyway.
                overflow="fold",
                width=fixed,
            )
        for row in table.rows:
            t.add_row(*(Text(cell.text) for cell in row))
        self.console.print(t)

    def drill(self, rows: list[sv.DrillRow]) -> None:
        table = sv.Table(
            "drill",
            "Drill-down filters",
            [sv.Column("#"), sv.Column("Row"), sv.Column("BPF"), sv.Column("Display filter")],
            [
                [sv.Cell(r.ref), sv.Cell(r.what), sv.Cell(r.bpf), sv.Cell(r.display_filter)]
                for r in rows
            ],
            empty="no rows to filter for",
            wide={"Row", "BPF", "Display filter"},
        )
        self.table(table)


def _fold_flags(table: sv.Table) -> sv.Table:
    """Flags under the description, in one column: the services table then fits 120
    columns without cutting words."""
    names = [c.name for c in table.columns]
    if "Description" not in names or "Flags" not in names:
        return table
    d, f = names.index("Description"), names.index("Flags")
    rows = []
    for row in table.rows:
        text = "\n".join(x for x in (row[d].text, row[f].text and f"({row[f].text})") if x)
        cells = list(row)
        cells[d] = sv.Cell(text, row[d].sort)
        del cells[f]
        rows.append(cells)
    columns = [
        sv.Column("Description / flags") if i == d else c
        for i, c in enumerate(table.columns)
        if i != f
    ]
    return sv.Table(
        table.key,
        table.title,
        columns,
        rows,
        table.note,
        table.empty,
        table.wide | {"Description / flags"},
    )


def _widths(table: sv.Table, width: int) -> list[int | None]:
    """Column widths that fit ``width``, or None for every column when the table fits
    as it is or cannot fit without folding short columns (then rich shrinks every column
    evenly: it folds but never crops).

    Endpoints stay whole as long as anything else can give way; descriptions fold at
    words, then inside words; then numbers and times fold at their spaces. Descriptions
    give way first, the widest first.
    """
    from rich.cells import cell_len

    natural: list[int] = []
    words: list[int] = []
    kinds: list[str] = []
    for i, col in enumerate(table.columns):
        lines = [ln for t in (col.name, *(r[i].text for r in table.rows)) for ln in t.splitlines()]
        words.append(max((cell_len(w) for ln in lines for w in ln.split()), default=1))
        natural.append(max((cell_len(ln) for ln in lines), default=1))
        kinds.append("keep" if col.name in _KEEP else "wide" if col.name in table.wide else "short")
    room = width - 2 * (len(natural) - 1)
    if sum(natural) <= room:
        return [None] * len(natural)

    def floor(level: int, i: int) -> int:
        kind, nat, word = kinds[i], natural[i], words[i]
        if kind == "keep":
            return min(nat, _MAX_KEEP) if level < 4 else min(word, _MIN_FOLD)
        if kind == "wide":
            if level == 0:
                return max(word, min(nat, _MIN_WIDE))
            return word if level == 1 else min(word, _MIN_FOLD)
        return nat if level < 3 else word

    for level in range(5):
        floors = [floor(level, i) for i in range(len(natural))]
        if sum(floors) > room:
            continue
        out = list(natural)
        excess = sum(out) - room
        # Descriptions give way first, then numbers and times, endpoints last.
        for kind in ("wide", "short", "keep"):
            group = [i for i in range(len(out)) if kinds[i] == kind]
            while excess > 0:
                slack = [i for i in group if out[i] > floors[i]]
                if not slack:
                    break
                i = max(slack, key=lambda j: out[j])
                out[i] -= 1
                excess -= 1
        return list(out)
    return [None] * len(natural)
