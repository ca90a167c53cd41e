"""How far the leader compacts the key-value history (docs/design.md, "Compaction").

etcd keeps every revision of every key until it is compacted (etcd docs, "Maintenance: history
compaction"); a cluster that is never compacted fills its space quota and raises NOSPACE. The
history's consumers here are watchers and the mirror, which resume from a revision, and they
need minutes, not months. So the leader keeps ``COMPACTION_RETENTION`` seconds of history:

- it samples the cluster's revision every cycle, and compacts to the newest revision it saw at
  least the retention ago, at most once per tenth of the retention (as etcd's own periodic
  compactor paces itself) and never to a revision already compacted;
- under space pressure (a member's data in use at half the quota or more, of which the history
  since the last compaction is a tenth of the quota or more; or at 80 % of the quota) it keeps
  only the history since its previous sample (one cycle, seconds), because a cluster that takes writes
  matters more than a watcher that can reload (a mirror that misses history reloads its prefix);
  a writer filling the quota in seconds leaves no room for more;
- on a NOSPACE alarm it compacts everything up to the current revision (see :mod:`.alarms`), and
  again every :data:`NOSPACE_AGAIN` seconds while the alarm lasts and the revision moved;
- while a snapshot is being taken it waits, unless the space presses.

A pure function of :class:`CompactionFacts`; no clock, no I/O.
"""

from __future__ import annotations

import dataclasses

PRESSURE_RATIO = 0.5     # data in use / quota from which the space presses ...
HISTORY_SHARE = 0.1      # ... if the history since the last compaction takes this share of the quota,
FULL_RATIO = 0.8         # ... or whatever it takes once data in use reaches this share of the quota
MIN_PERIOD = 60.0        # seconds: the shortest pause between two compactions by retention
NOSPACE_AGAIN = 600.0    # seconds after which a NOSPACE that lasts is compacted again (if the revision moved)


@dataclasses.dataclass(frozen=True)
class CompactionFacts:
    """What the compaction rule needs.

    Attributes:
        now: epoch seconds. leads: this member leads and holds the housekeeping lease.
        revision: the cluster's current revision (None: unknown).
        compacted: the revision of the last compaction recorded (0: none).
        compacted_at: when it was asked for (epoch seconds, 0: never).
        samples: (epoch seconds, revision) seen by this agent, oldest first.
        retention: COMPACTION_RETENTION in seconds. quota: the space quota in bytes.
        in_use: the largest ``db_size_in_use`` among the members (bytes; None: unknown).
        in_use_floor: the lowest ``in_use`` seen since the last compaction (bytes; about the live data, so that
            ``in_use - in_use_floor`` is about the history; None: not known).
        nospace_since: when this agent first saw the raised NOSPACE alarm (epoch seconds; None: none raised).
        snapshot_running: a snapshot is being taken.
    """

    now: float
    leads: bool
    revision: int | None
    compacted: int
    compacted_at: float
    samples: tuple[tuple[float, int], ...]
    retention: float
    quota: int
    in_use: int | None
    nospace_since: float | None = None
    snapshot_running: bool = False
    in_use_floor: int | None = None


@dataclasses.dataclass(frozen=True)
class CompactionDecision:
    """Compact to ``revision`` (None: not now), and why, in one sentence."""

    revision: int | None
    reason: str


def _newest_before(samples: tuple[tuple[float, int], ...], moment: float) -> int | None:
    """The revision of the newest sample taken at ``moment`` or before (None: all are younger)."""
    chosen = None
    for at, revision in samples:
        if at <= moment:
            chosen = revision
    return chosen


def period(retention: float) -> float:
    """Seconds between two compactions by retention: a tenth of it, at least :data:`MIN_PERIOD`."""
    return max(MIN_PERIOD, retention / 10)


def pressing(in_use: int | None, quota: int, floor: int | None = None) -> bool:
    """The space presses: data in use at :data:`PRESSURE_RATIO` of the quota or more, and (when ``floor``, the
    lowest in use since the last compaction, is known) the history since then at :data:`HISTORY_SHARE` of it or
    more; or data in use at :data:`FULL_RATIO` of the quota whatever the history. Below that, a large live data
    set alone does not press: compacting could not give anything back."""
    if in_use is None or quota <= 0 or in_use < PRESSURE_RATIO * quota:
        return False
    return floor is None or in_use - floor >= HISTORY_SHARE * quota or in_use >= FULL_RATIO * quota


def decide(f: CompactionFacts) -> CompactionDecision:
    """The revision to compact to now, or None, with the reason."""
    if not f.leads:
        return CompactionDecision(None, "not the leader holding the housekeeping lease")
    if f.revision is None or f.revision <= 0:
        return CompactionDecision(None, "the cluster's revision is unknown this cycle")
    if f.nospace_since is not None:
        # Once per alarm (deletes and lease expiries still move the revision under NOSPACE), and again every
        # NOSPACE_AGAIN while it lasts: an operator's deletes then give their space back.
        if f.revision <= f.compacted or (f.compacted_at >= f.nospace_since
                                         and f.now - f.compacted_at < NOSPACE_AGAIN):
            return CompactionDecision(None, f"NOSPACE: history compacted to revision {f.compacted} since the alarm")
        return CompactionDecision(f.revision, f"NOSPACE: compacting all history up to the current revision "
                                              f"{f.revision}, so that defragmentation can return the space (a "
                                              "mirror or watcher behind it must reload)")
    if pressing(f.in_use, f.quota, f.in_use_floor):
        # The newest sample before this cycle's: the history of one cycle is kept.
        earlier = [revision for at, revision in f.samples if at < f.now]
        target = min(earlier[-1], f.revision) if earlier else None
        if target is None or target <= f.compacted:
            return CompactionDecision(None, f"space presses ({f.in_use} of {f.quota} bytes in use), but the "
                                            f"history before this cycle is compacted already (revision {f.compacted})")
        return CompactionDecision(target, f"space presses ({f.in_use} of {f.quota} bytes in use, "
                                          f"{PRESSURE_RATIO:.0%} or more): compacting to revision {target}, keeping "
                                          f"one cycle of history instead of {f.retention:.0f} s")
    if f.snapshot_running:
        return CompactionDecision(None, "a snapshot is being taken; compaction waits for it")
    if f.compacted_at and f.now - f.compacted_at < period(f.retention):
        return CompactionDecision(None, f"compacted {f.now - f.compacted_at:.0f} s ago; the next within "
                                        f"{period(f.retention):.0f} s")
    target = _newest_before(f.samples, f.now - f.retention)
    target = min(target, f.revision) if target is not None else None
    if target is None:
        return CompactionDecision(None, f"no revision seen {f.retention:.0f} s ago yet (history is kept that long)")
    if target <= f.compacted:
        return CompactionDecision(None, f"history before revision {f.compacted} is already compacted")
    return CompactionDecision(target, f"keeping {f.retention:.0f} s of history: compacting to revision {target}, "
                                      f"the newest seen {f.retention:.0f} s ago")
