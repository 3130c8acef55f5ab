"""Which side of a conversation is the service: the rules, and per-flow memory of them.

The rules, in order (``basis`` names the one that decided):

1. ``syn``: a TCP SYN (without ACK) names its destination; ``syn-ack``: a SYN+ACK names
   its source. A new SYN on a known flow starts the decision afresh (a new connection).
2. ``first-packet``: the port that received the flow's first packet, if it is assigned.
3. ``only-assigned``: the only assigned port of the two.
4. ``lower-port``: the lower port (the higher one is more likely ephemeral).

``ambiguous`` is true when both ports are assigned (and differ) and no handshake was seen. The decision
is made once per flow, so every packet of a flow names the same endpoint.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

SYN = 0x02
ACK = 0x10

Endpoint = tuple[str | None, int]
FlowKey = tuple[str, Endpoint, Endpoint]


@dataclass(frozen=True, slots=True)
class SideDecision:
    """The service endpoint of a flow and why it was chosen."""

    service: Endpoint
    basis: str
    ambiguous: bool


def flow_key(proto: str, src: Endpoint, dst: Endpoint) -> FlowKey:
    """The same key for both directions of a conversation."""
    a, b = (src, dst) if _order(src) <= _order(dst) else (dst, src)
    return (proto, a, b)


def _order(e: Endpoint) -> tuple[str, int]:
    return (e[0] or "", e[1])


def decide(
    src: Endpoint,
    dst: Endpoint,
    tcp_flags: int | None,
    src_assigned: bool,
    dst_assigned: bool,
) -> SideDecision:
    """Apply the rules to a flow's first packet (or to a handshake packet)."""
    if tcp_flags is not None and tcp_flags & SYN:
        if tcp_flags & ACK:
            return SideDecision(src, "syn-ack", False)
        return SideDecision(dst, "syn", False)
    # Both ends assigned is ambiguous, unless both are the same port (47808 <-> 47808).
    both = src_assigned and dst_assigned and src[1] != dst[1]
    if dst_assigned:
        return SideDecision(dst, "first-packet", both)
    if src_assigned:
        return SideDecision(src, "only-assigned", False)
    service = dst if dst[1] <= src[1] else src
    return SideDecision(service, "lower-port", False)


class FlowSides:
    """Remembers each live flow's decision; memory is bounded by live flows.

    Flows idle for ``idle_timeout`` seconds of capture time are forgotten, and at most
    ``max_flows`` are kept (the least recently seen go first).
    """

    def __init__(self, *, max_flows: int = 1_000_000, idle_timeout: float = 600.0) -> None:
        self._flows: OrderedDict[FlowKey, tuple[SideDecision, float]] = OrderedDict()
        self.max_flows = max_flows
        self.idle_timeout = idle_timeout
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._flows)

    def side(
        self,
        proto: str,
        src: Endpoint,
        dst: Endpoint,
        tcp_flags: int | None,
        src_assigned: bool,
        dst_assigned: bool,
        ts: float,
    ) -> SideDecision:
        """The decision for this packet's flow, making it if the flow is new."""
        key = flow_key(proto, src, dst)
        known = self._flows.get(key)
        flags = tcp_flags or 0
        if known is None:
            decision = decide(src, dst, tcp_flags, src_assigned, dst_assigned)
        elif flags & SYN and not flags & ACK:
            # A SYN always decides: it confirms the flow or starts a new connection.
            decision = decide(src, dst, tcp_flags, src_assigned, dst_assigned)
        elif flags & SYN and known[0].basis not in ("syn", "syn-ack"):
            decision = decide(src, dst, tcp_flags, src_assigned, dst_assigned)
        else:
            decision = known[0]
        self._flows[key] = (decision, ts)
        self._flows.move_to_end(key)
        if known is None:
            self._expire(ts)
        return decision

    def _expire(self, now: float) -> None:
        flows = self._flows
        while flows:
            key, (_, last) = next(iter(flows.items()))
            if len(flows) > self.max_flows or now - last > self.idle_timeout:
                del flows[key]
                self.evicted += 1
            else:
                break
