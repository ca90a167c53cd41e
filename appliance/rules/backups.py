"""When the leader takes a snapshot (pure).

A snapshot is taken every ``interval`` seconds, counted from the newest one in S3 (so that a
new leader does not start the count again), before a member is removed (docs/design.md,
"Removal guards"), and after a change of the cluster's mode; on the first cycle of a leadership
the marker is checked (and written if missing) with the newest snapshot's time.
"""

from __future__ import annotations

import dataclasses
import enum

RETRY_AFTER = 60.0       # seconds after a failed snapshot before the next try


class Step(str, enum.Enum):
    SURVEY = "survey"  # read the marker (write it if missing) and the newest snapshot's time
    TAKE = "take"
    WAIT = "wait"


@dataclasses.dataclass(frozen=True)
class BackupFacts:
    """Facts for one decision; times are epoch seconds.

    Attributes:
        surveyed: the marker and the snapshots' listing were read during this leadership.
        newest_at: when the newest snapshot was taken, None if there is none.
        failed_at: when the last attempt failed, None if it did not.
        removal_waiting: the housekeeping waits for a snapshot before it removes a member.
        interval, retry_after: seconds.
        newest_revision: the store revision of the newest snapshot, None if there is none.
        must_cover: a revision the newest snapshot must hold (the cluster's mode record, whose
            loss would restore a passive cluster as active); 0 for none.
    """

    now: float
    in_progress: bool
    surveyed: bool
    newest_at: float | None
    failed_at: float | None
    removal_waiting: bool
    interval: float
    retry_after: float = RETRY_AFTER
    newest_revision: int | None = None
    must_cover: int = 0


@dataclasses.dataclass(frozen=True)
class BackupDecision:
    step: Step
    reason: str


def decide(s: BackupFacts) -> BackupDecision:
    """What the leader's snapshot work does this cycle."""
    if s.in_progress:
        return BackupDecision(Step.WAIT, "a snapshot is being taken")
    if s.failed_at is not None and s.now - s.failed_at < s.retry_after:
        return BackupDecision(Step.WAIT, f"the last attempt failed {s.now - s.failed_at:.0f} s ago; retrying "
                              f"{s.retry_after:.0f} s after it" + (" (a removal waits for it)" if s.removal_waiting
                                                                    else ""))
    if s.removal_waiting:  # before the survey: a new leader's first removal waits no longer than it must
        return BackupDecision(Step.TAKE, "a member is to be removed: snapshot first")
    if not s.surveyed:
        return BackupDecision(Step.SURVEY, "new leadership: checking the marker and the newest snapshot")
    if s.newest_at is None:
        return BackupDecision(Step.TAKE, "no snapshot of this cluster yet")
    if s.must_cover and (s.newest_revision or 0) < s.must_cover:
        return BackupDecision(Step.TAKE, f"the cluster's mode changed at revision {s.must_cover}, after the newest "
                              f"snapshot (revision {s.newest_revision})")
    age = s.now - s.newest_at
    if age >= s.interval:
        return BackupDecision(Step.TAKE, f"the newest snapshot is {age:.0f} s old (interval {s.interval:.0f} s)")
    return BackupDecision(Step.WAIT, f"the newest snapshot is {age:.0f} s old; next in {s.interval - age:.0f} s")
