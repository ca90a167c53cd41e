"""Which snapshots to keep: the newest K whatever their age, then one a day for D days (pure).

With the default interval (30 min), K = 48 keeps the last day at full resolution and
D = 14 two weeks of daily points; everything older goes.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Sequence

from appliance.model.snapshots import StoredSnapshot


@dataclasses.dataclass(frozen=True)
class RetentionPlan:
    """The snapshots to delete, and the sentence that says why."""

    delete: tuple[StoredSnapshot, ...]
    reason: str


def plan(snapshots: Sequence[StoredSnapshot], keep: int, keep_days: int, now: datetime.datetime) -> RetentionPlan:
    """Apply the retention rule to ``snapshots`` (any order).

    Args:
        keep: the newest ``keep`` (at least 1) are kept whatever their age.
        keep_days: of the older ones, the newest of each UTC day younger than ``keep_days``
            days is kept (0: none); the rest are deleted.
        now: aware UTC time.

    Only snapshots whose key names their own time and revision
    (:attr:`~appliance.model.snapshots.StoredSnapshot.named_as_taken`) are counted or ever deleted: an
    object whose name was not fully understood is kept, and said so in the reason.
    """
    strangers = [s for s in snapshots if not s.named_as_taken]
    plan = _plan([s for s in snapshots if s.named_as_taken], keep, keep_days, now)
    if not strangers:
        return plan
    return RetentionPlan(plan.delete, f"{plan.reason}; {len(strangers)} objects not named as snapshots are kept")


def _plan(snapshots: Sequence[StoredSnapshot], keep: int, keep_days: int, now: datetime.datetime) -> RetentionPlan:
    ordered = sorted(snapshots, key=lambda s: (s.taken_at, s.revision), reverse=True)
    newest, older = ordered[:max(1, keep)], ordered[max(1, keep):]
    horizon = now - datetime.timedelta(days=keep_days)
    days_kept: set[datetime.date] = {s.taken_at.date() for s in newest}
    delete = []
    for snapshot in older:  # newest first, so the first of each day is that day's newest
        day = snapshot.taken_at.date()
        if snapshot.taken_at >= horizon and day not in days_kept:
            days_kept.add(day)
        else:
            delete.append(snapshot)
    kept = len(ordered) - len(delete)
    if not delete:
        return RetentionPlan((), f"{kept} snapshots, none past retention (newest {keep}, daily for {keep_days} days)")
    return RetentionPlan(tuple(delete), f"deleting {len(delete)} of {len(ordered)} snapshots past retention "
                         f"(newest {keep}, daily for {keep_days} days); {kept} kept")
