"""``annotate`` end to end against tshark on the real captures in ../shared/captures.

For every packet: the outermost transport header's ports equal tshark's
(``-o ip.defragment:FALSE``, first occurrence), and the label agrees with the registry
(``service`` is one of the port's registry names and ``service_port`` one of the packet's
ports). Deliberate differences each have a named test below:

- ICMP errors are ICMP traffic: tshark shows the quoted header's ports; we put them in
  ``quoted`` (test_icmp_errors_quote_instead_of_owning_ports).
- Non-first IP fragments carry their datagram's ports and label; tshark shows none
  without reassembly (test_non_first_fragments_carry_the_datagrams_ports).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portsniff.annotate.pipeline import AnnotateRun
from tests.conftest import SHARED
from tests.tshark import need_tshark, shared_capture, shared_capture_files, tshark_fields

PORTED = ("tcp", "udp", "sctp", "dccp")
FIELDS = (
    "frame.protocols",
    *(f"{p}.{e}port" for p in PORTED for e in ("src", "dst")),
    "frame.len",
    "frame.time_epoch",
)
OPTS = ("-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE")
CAPTURES = SHARED / "captures"
FILES = shared_capture_files(CAPTURES) if CAPTURES.is_dir() else []


def tshark_outermost(
    path: Path,
) -> list[tuple[tuple[str | None, int | None, int | None], int, float]]:
    """Per frame: (outermost ported proto, src port, dst port), frame.len, time."""
    out = []
    for row in tshark_fields(str(path), FIELDS, OPTS):
        chain = row[0].split(":")
        first = next((p for p in chain if p in PORTED), None)
        length = int(row[-2] or 0)
        when = float(row[-1] or 0)
        if first is None:
            out.append(((None, None, None), length, when))
            continue
        i = 1 + 2 * PORTED.index(first)
        sp, dp = row[i], row[i + 1]
        out.append(((first, int(sp) if sp else None, int(dp) if dp else None), length, when))
    return out


def ours(path: Path, official_index):
    run = AnnotateRun([str(path)], official_index)
    return list(run.records()), run


def aligned(path: Path, official_index):
    """Our records and tshark's rows, frame by frame. tshark shows pcapng custom blocks
    as extra frames: those files are compared on the frames that are packets."""
    records, run = ours(path, official_index)
    frames = tshark_outermost(path)
    if len(frames) == len(records):
        return records, [f[0] for f in frames], run
    # Match each packet to the next frame of the same length and time; the frames left
    # over must be tshark's custom-block frames (they are not packets).
    theirs, j = [], 0
    for r in records:
        while j < len(frames) and not (frames[j][1] == r.len and abs(frames[j][2] - r.ts) < 2e-6):
            j += 1
        assert j < len(frames), f"{path.name}: frame {r.frame} has no tshark counterpart"
        theirs.append(frames[j][0])
        j += 1
    assert len(frames) - len(records) <= 3, "only a few custom-block frames expected"
    return records, theirs, run


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_outermost_ports_equal_tsharks(path: Path, official_index):
    need_tshark()
    records, theirs, run = aligned(path, official_index)
    diffs = []
    for r, (proto, sp, dp) in zip(records, theirs, strict=True):
        if r.proto in ("icmp", "icmpv6") and r.quoted is not None and proto is not None:
            continue  # named difference: ICMP quotes
        if r.fragment and proto is None and r.src_port is not None:
            continue  # named difference: non-first fragments
        mine = (r.proto if r.src_port is not None else None, r.src_port, r.dst_port)
        if proto is not None and (sp is None or dp is None):
            # tshark names the protocol but shows no ports (a truncated header).
            proto = None
        if mine != (proto, sp, dp):
            diffs.append((r.frame, mine, (proto, sp, dp), r.problem))
    assert not diffs, f"{path.name}: {diffs[:10]}"
    assert not any(f.error for f in run.files)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_labels_agree_with_the_registry(path: Path, official_index):
    records, _ = ours(path, official_index)
    for r in records:
        if r.service is None:
            continue
        assert r.service_port in (r.src_port, r.dst_port), r
        names = {rec.service_name for rec in official_index.records_for(r.proto, r.service_port)}
        assert r.service in names, (r.frame, r.service, names)
        assert r.status == "assigned"


def test_icmp_errors_quote_instead_of_owning_ports(official_index):
    need_tshark()
    path = shared_capture("zeek__icmp_icmp-destunreach-udp.pcap")
    records, theirs, _ = aligned(path, official_index)
    (r,), ((proto, sp, dp),) = records, theirs
    assert (r.proto, r.src_port, r.dst_port) == ("icmp", None, None)
    assert r.quoted is not None
    assert (r.quoted.proto, r.quoted.src_port, r.quoted.dst_port) == (proto, sp, dp)


def test_non_first_fragments_carry_the_datagrams_ports(official_index):
    need_tshark()
    path = shared_capture("pcapplusplus__ip4_fragments.pcap")
    records, theirs, _ = aligned(path, official_index)
    carried = [r for r, t in zip(records, theirs, strict=True) if r.fragment and t[0] is None]
    assert carried, "the capture has non-first fragments"
    assert all(r.src_port is not None and r.service_port is not None for r in carried)


def test_unreadable_files_are_one_line_errors(tmp_path):
    import subprocess
    import sys

    for name in ("libpcap__pcap-invalid-version-1.pcap", "libpcap__shb-option-too-long.pcapng"):
        path = shared_capture(name)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "portsniff",
                "annotate",
                str(path),
                "--registry",
                str(SHARED / "seed" / "iana-registry-excerpt.txt"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert name in proc.stderr
