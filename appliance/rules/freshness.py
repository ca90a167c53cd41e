"""The staleness verdict (pure): is data whose newest heartbeat is this old fresh enough?

Staleness = now - the newest heartbeat read with a quorum (see :mod:`appliance.guard.freshness`).
"""

from __future__ import annotations

import dataclasses
import math

# Seconds a heartbeat may lie ahead of the reader's clock (clocks of instances differ a little). A time further
# ahead is garbage, not a heartbeat: kept as "the newest", it would make the data look fresh for ever.
FUTURE_TOLERANCE = 60.0


@dataclasses.dataclass(frozen=True)
class Freshness:
    """One check's verdict. ``staleness``: seconds (None: no heartbeat ever read); ``reason``: one line."""

    fresh: bool
    staleness: float | None
    reason: str


def heartbeat_time(value: bytes | str, now: float) -> float | None:
    """The time (Unix seconds) a heartbeat value holds, None when it holds no plausible time: not a number, not
    finite (``nan``, ``inf``), not positive, or more than :data:`FUTURE_TOLERANCE` seconds after ``now``."""
    try:
        beat = float(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if not math.isfinite(beat) or beat <= 0 or beat > now + FUTURE_TOLERANCE:
        return None
    return beat


def judge(newest_beat: float | None, now: float, max_staleness: float, error: str = "") -> Freshness:
    """The verdict from the newest heartbeat read so far (Unix seconds) and, if the last read failed,
    its error (pure; unit-tested as a table)."""
    failed = f" (last read failed: {error})" if error else ""
    if newest_beat is None or not math.isfinite(newest_beat) or not math.isfinite(now):
        return Freshness(False, None, "no heartbeat read yet" + failed)
    staleness = max(0.0, now - newest_beat)
    if staleness > max_staleness:
        return Freshness(False, staleness, f"data {staleness:.1f} s old, more than {max_staleness:g} s{failed}")
    return Freshness(True, staleness, f"data {staleness:.1f} s old{failed}")
