"""Capture timestamps (integer nanoseconds) as the seconds every record and report shows.

``ts_ns / 1e9`` rounds twice once the nanosecond count passes 2**53 (it is rounded to a
double before the division): the microsecond timestamp 1700000000.000186 came out as
1700000000.0001862. Here a timestamp in whole microseconds is divided as microseconds
(exact as a double until the year 2255, so one rounding: the nearest double), and its
``repr`` is then the capture's own digits. Other timestamps are divided as they are while
exact (2**53 ns: 104 days), else as whole seconds plus the fraction (off by at most one
unit in the last place). The scalar and the numpy forms do the same IEEE operations, so
they agree bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

NS = 1_000_000_000


_EXACT = 2**53


def seconds(ts_ns: int) -> float:
    """Seconds since the epoch of an integer nanosecond timestamp."""
    n = int(ts_ns)
    if n % 1000 == 0 and -_EXACT < n // 1000 < _EXACT:
        return (n // 1000) / 1e6
    if -_EXACT < n < _EXACT:
        return n / 1e9
    sec, frac = divmod(n, NS)
    return sec + frac / 1e9


def seconds_array(ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``seconds`` of every element (the same doubles)."""
    import numpy as np

    n = ts_ns.astype(np.int64, copy=False)
    micro = n // 1000
    out: npt.NDArray[np.float64] = micro / 1e6
    other = (micro * 1000 != n) | (micro <= -_EXACT) | (micro >= _EXACT)
    if other.any():
        small = other & (n > -_EXACT) & (n < _EXACT)
        out[small] = n[small] / 1e9
        big = other & ~small
        if big.any():
            sec, frac = np.divmod(n[big], NS)
            out[big] = sec.astype(np.float64) + frac / 1e9
    return out


def first_past(
    now: npt.NDArray[np.float64], last: npt.NDArray[np.float64], timeout: float
) -> npt.NDArray[np.int64] | None:
    """For each ``last``, the first position whose ``now`` (ascending) is more than
    ``timeout`` after it as the flow memories compute it (``now - last > timeout``, in
    doubles); ``len(now)`` where none is. None if the search does not settle."""
    import numpy as np

    # The test rises with ``now``: search for the least double passing it, a unit in
    # the last place or two from ``last + timeout``.
    x = last + timeout
    for _ in range(8):
        below = np.nextafter(x, -np.inf)
        x = np.where(below - last > timeout, below, x)
        x = np.where(x - last > timeout, x, np.nextafter(x, np.inf))
        if bool(((x - last > timeout) & ~(np.nextafter(x, -np.inf) - last > timeout)).all()):
            out: npt.NDArray[np.int64] = np.searchsorted(now, x, side="left").astype(np.int64)
            return out
    return None


#: Below this a float's repr uses an exponent; at and above 2**32 its spacing reaches a
#: microsecond, so six decimals may no longer be the shortest repr.
_REPR_LOW, _REPR_HIGH = 100_000, 2**32 * NS


def repr_parts(
    ts_ns: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """``repr(seconds(t))`` of every element as numbers: whole seconds, the decimals
    (without trailing zeros; one stays), and how many decimals, so that the text is
    ``f"{sec}.{frac:0{width}d}"``; None unless every element is a whole number of
    microseconds in the range where that is repr's text."""
    import numpy as np

    ts = ts_ns.astype(np.int64, copy=False)
    return _repr_parts(ts) if bool(_repr_known(ts).all()) else None


def _repr_known(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether repr's text of each stamp is its six decimals without trailing zeros:
    a whole number of microseconds in the range where that is the shortest text."""
    known: npt.NDArray[np.bool_] = (ts % 1000 == 0) & (ts >= _REPR_LOW) & (ts < _REPR_HIGH)
    return known


def _repr_parts(
    ts: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    import numpy as np

    sec, micro = np.divmod(ts // 1000, 1_000_000)
    # Trailing zeros of the fraction go (one decimal stays): the shortest text.
    keep = np.full(ts.shape, 6, np.int64)
    frac = micro.copy()
    for _ in range(5):
        zero = (frac % 10 == 0) & (keep > 1)
        keep -= zero
        frac = np.where(zero, frac // 10, frac)
    return sec, frac, keep


def repr_texts(ts_ns: npt.NDArray[np.int64]) -> list[str]:
    """``repr(seconds(t))`` of every element, vectorised where the text is known: a whole
    microsecond count gives its six decimals without trailing zeros (the shortest text
    that reads back as that double, as ``repr`` writes it); other rows call ``repr``."""
    import numpy as np

    ts = ts_ns.astype(np.int64, copy=False)
    n = int(ts.shape[0])
    if n == 0:
        return []
    simple = _repr_known(ts)
    if not simple.all():
        mixed = [repr(x) for x in seconds_array(ts).tolist()]
        rows = np.flatnonzero(simple)
        if rows.size:
            fast = repr_texts(ts[rows])
            for i, text in zip(rows.tolist(), fast, strict=True):
                mixed[i] = text
        return mixed
    sec, frac, keep = _repr_parts(ts)
    width = 10  # seconds below 2**32 have at most 10 digits
    mat = np.zeros((n, width + 7), np.uint32)
    digits = sec.copy()
    for col in range(width - 1, -1, -1):
        mat[:, col] = digits % 10 + ord("0")
        digits //= 10
    mat[:, width] = ord(".")
    # The fraction's kept digits, left-aligned (NULs after them end a numpy str).
    frac = frac * 10 ** (6 - keep)
    for col in range(width + 6, width, -1):
        mat[:, col] = frac % 10 + ord("0")
        frac //= 10
    cols = np.arange(width + 7)
    mat[cols[None, :] > (width + keep)[:, None]] = 0
    # Leading zeros of the seconds go too: rows are grouped by their number of digits.
    lead = np.ones(n, np.int64)
    for k in range(1, width):
        lead += sec >= 10**k
    out: list[str] = [""] * n
    for size in np.unique(lead).tolist():
        rows = np.flatnonzero(lead == size)
        part = np.ascontiguousarray(mat[rows, width - size :])
        texts = part.view(f"U{size + 7}").reshape(-1).tolist()
        if rows.size == n:
            return list(texts)
        for i, text in zip(rows.tolist(), texts, strict=True):
            out[i] = text
    return out


class TimeOrder:
    """The range of the timestamps seen so far (ns) and whether they ever went back."""

    def __init__(self) -> None:
        self.earliest: int | None = None
        self.latest: int | None = None
        self.backwards = False

    def see(self, ts_ns: npt.NDArray[np.int64]) -> None:
        """Note the timestamps of a block, in order."""
        if not ts_ns.size:
            return
        if (self.latest is not None and int(ts_ns[0]) < self.latest) or bool(
            (ts_ns[1:] < ts_ns[:-1]).any()
        ):
            self.backwards = True
        lo, hi = int(ts_ns.min()), int(ts_ns.max())
        self.earliest = lo if self.earliest is None else min(self.earliest, lo)
        self.latest = hi if self.latest is None else max(self.latest, hi)

    def latest_seconds(self) -> float:
        """The latest timestamp in seconds (-inf before any)."""
        return -float("inf") if self.latest is None else seconds(self.latest)

    def then(self, later: TimeOrder) -> bool:
        """Whether ``later``'s timestamps follow these without time ever going back."""
        return (
            not self.backwards
            and not later.backwards
            and (self.latest is None or later.earliest is None or later.earliest >= self.latest)
        )
