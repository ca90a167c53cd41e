"""The staleness verdict (pure): is data whose newest heartbeat is this old fresh enough?

Staleness = now - the newest heartbeat read with a quorum (see :mod:`appliance.guard.freshness`).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Freshness:
    """One check's verdict. ``staleness``: seconds (None: no heartbeat ever read); ``reason``: one line."""

    fresh: bool
    staleness: float | None
    reason: str


def judge(newest_beat: float | None, now: float, max_staleness: float, error: str = "") -> Freshness:
    """The verdict from the newest heartbeat read so far (Unix seconds) and, if the last read failed,
    its error (pure; unit-tested as a table)."""
    failed = f" (last read failed: {error})" if error else ""
    if newest_beat is None:
        return Freshness(False, None, "no heartbeat read yet" + failed)
    staleness = max(0.0, now - newest_beat)
    if staleness > max_staleness:
        return Freshness(False, staleness, f"data {staleness:.1f} s old, more than {max_staleness:g} s{failed}")
    return Freshness(True, staleness, f"data {staleness:.1f} s old{failed}")
