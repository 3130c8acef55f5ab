#!/usr/bin/env python3
"""The numpy floor of a summary: the least work a capture summary can do with numpy.

Reads a classic pcap with portsniff's reader (blocks, record walk), decodes Ethernet
(one VLAN tag), IPv4/IPv6 and TCP/UDP ports, and counts packets and bytes per
direction-less 5-tuple: no originator, TCP state, labels, timelines, expiry nor report.
Whatever a real summary adds costs more. Prints the flows, the stages' seconds and the
whole process's seconds; compare with the issue's budget (0.05x tshark's time).

    python3 bench/floor.py /tmp/t1m.pcap
"""

from __future__ import annotations

import sys
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402

from portsniff.capture.reader import open_capture  # noqa: E402

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def main(path: str) -> None:
    stages = dict.fromkeys(("read", "decode", "flows", "merge"), 0.0)
    flows: dict[int, list[int]] = {}
    with open_capture(path) as reader:
        blocks = reader.blocks()
        while True:
            t = time.perf_counter()
            block = next(blocks, None)
            stages["read"] += time.perf_counter() - t
            if block is None:
                break
            t = time.perf_counter()
            buf = np.frombuffer(block.data, np.uint8)
            off = block.offset
            etype = (buf[off + 12].astype(np.int32) << 8) | buf[off + 13]
            tagged = etype == 0x8100
            l3 = off + 14 + tagged * 4
            etype = np.where(tagged, (buf[off + 16].astype(np.int32) << 8) | buf[off + 17], etype)
            v4, v6 = etype == 0x0800, etype == 0x86DD
            proto = np.where(v4, buf[l3 + 9], buf[l3 + 6])
            l4 = l3 + np.where(v4, (buf[l3] & 15).astype(np.int64) * 4, 40)
            frag = v4 & ((((buf[l3 + 6].astype(np.int32) & 0x1F) << 8) | buf[l3 + 7]) != 0)
            ok = (v4 | v6) & ((proto == 6) | (proto == 17)) & ~frag
            ok &= l4 + 4 <= off + block.caplen
            at = np.where(ok, l4, off)
            sport = (buf[at].astype(np.int64) << 8) | buf[at + 1]
            dport = (buf[at + 2].astype(np.int64) << 8) | buf[at + 3]
            words = np.ndarray((buf.size - 7,), "<u8", buf, strides=(1,))
            quads = np.ndarray((buf.size - 3,), "<u4", buf, strides=(1,))
            a = np.minimum(l3, buf.size - 40)
            src = np.where(
                v4, quads[a + 12].astype(np.uint64), words[a + 8] ^ words[a + 16] * GOLDEN
            )
            dst = np.where(
                v4, quads[a + 16].astype(np.uint64), words[a + 24] ^ words[a + 32] * GOLDEN
            )
            stages["decode"] += time.perf_counter() - t
            t = time.perf_counter()
            flip = (src > dst) | ((src == dst) & (sport > dport))
            lo, hi = np.where(flip, dst, src), np.where(flip, src, dst)
            plo, phi = np.where(flip, dport, sport), np.where(flip, sport, dport)
            ports = (plo.astype(np.uint64) << np.uint64(17)) | (
                phi.astype(np.uint64) << np.uint64(40)
            )
            key = (lo * np.uint64(0x100000001B3)) ^ (hi * GOLDEN) ^ ports ^ proto.astype(np.uint64)
            keys, inverse, packets = np.unique(key[ok], return_inverse=True, return_counts=True)
            nbytes = np.bincount(inverse, weights=block.wirelen[ok], minlength=keys.size)
            stages["flows"] += time.perf_counter() - t
            t = time.perf_counter()
            for k, p, b in zip(keys.tolist(), packets.tolist(), nbytes.tolist(), strict=True):
                got = flows.get(k)
                if got is None:
                    flows[k] = [p, int(b)]
                else:
                    got[0] += p
                    got[1] += int(b)
            stages["merge"] += time.perf_counter() - t
    parts = ", ".join(f"{k} {v:.3f} s" for k, v in stages.items())
    print(f"{len(flows)} flows; {parts}; process {time.perf_counter() - T0:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1])
