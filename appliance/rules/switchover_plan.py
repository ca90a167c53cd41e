"""The switchover's steps from both clusters' state (pure), and what each step is.

See :mod:`appliance.replication.switchover` for the steps' order and why.
"""

from __future__ import annotations

import dataclasses
import enum

from appliance.model.modes import Mode


class Step(str, enum.Enum):
    OLD_READ_ONLY = "old-read-only"
    CATCH_UP = "catch-up"
    REVERSE_POSITION = "reverse-position"
    NEW_WRITABLE = "new-writable"
    REVERSE_MIRROR = "reverse-mirror"
    WRITE_RECORD = "write-record"


UNDOABLE = (Step.OLD_READ_ONLY, Step.CATCH_UP, Step.REVERSE_POSITION, Step.NEW_WRITABLE)


@dataclasses.dataclass(frozen=True)
class Side:
    """One cluster as the switchover sees it. Revisions are etcd revisions; 0 = none."""

    cluster_id: int
    mode: Mode
    mode_revision: int
    revision: int
    position: int | None  # the position of the mirror INTO this cluster, as stored here


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to run (``steps``, in order) or why not (``refusal``); ``summary`` is printed first."""

    steps: tuple[Step, ...]
    summary: str
    refusal: str = ""


def plan(old: Side, new: Side, with_record: bool) -> Plan:
    """Decide the steps from both clusters' state (pure; unit-tested as a table)."""
    tail = (Step.REVERSE_MIRROR, Step.WRITE_RECORD) if with_record else (Step.REVERSE_MIRROR,)
    if old.cluster_id == new.cluster_id:
        return Plan((), "", f"--from and --to are the same cluster ({old.cluster_id:x})")
    if old.mode is Mode.PASSIVE and new.mode is Mode.ACTIVE:
        return Plan(tail, "already switched over (OLD passive, NEW active): checking the steps after it")
    if old.mode is Mode.ACTIVE and new.mode is Mode.ACTIVE:
        return Plan((), "", "both clusters are active: the mirrors are paused or copying over each other; "
                    "decide which cluster holds the writes to keep and make the other passive with cluster-mode")
    if old.mode is Mode.PASSIVE and new.mode is Mode.PASSIVE:
        if new.position is not None and new.position >= old.mode_revision:
            return Plan((Step.REVERSE_POSITION, Step.NEW_WRITABLE, *tail),
                        "both clusters passive, NEW has every write of OLD: resuming at the reverse position")
        return Plan((), "", f"both clusters are passive and NEW's mirror position ({new.position}) is behind "
                    f"OLD's last write (revision {old.mode_revision}): start the mirror OLD→NEW, then run again")
    if new.position is None:
        return Plan((), "", "no mirror position in NEW: the mirror OLD→NEW has never run (start it first)")
    return Plan((Step.OLD_READ_ONLY, Step.CATCH_UP, Step.REVERSE_POSITION, Step.NEW_WRITABLE, *tail),
                f"OLD active, NEW passive, the mirror OLD→NEW at revision {new.position} of {old.revision}")


DESCRIPTIONS = {
    Step.OLD_READ_ONLY: "make OLD read-only (passive) for clients",
    Step.CATCH_UP: "wait until the mirror OLD→NEW has applied OLD's last client write",
    Step.REVERSE_POSITION: "store NEW's revision as the position of the mirror NEW→OLD (in OLD)",
    Step.NEW_WRITABLE: "make NEW writable (active) for clients",
    Step.REVERSE_MIRROR: "wait until the mirror NEW→OLD follows NEW",
    Step.WRITE_RECORD: "point the write record at NEW",
}

REMEDIES = {
    Step.REVERSE_MIRROR: "start the mirror NEW→OLD (etcd.py mirror --source NEW --dest OLD …); it resumes at the "
                         "stored position",
    Step.WRITE_RECORD: "run the switchover again once Route53 answers (it repeats only what is missing)",
}
