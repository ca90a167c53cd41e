"""The facts of the cluster's maintenance: each member's space, the alarms, a member's key-value hash.

Sizes are bytes, revisions are store revisions. The terms are etcd's (docs "Maintenance"): the
*database size* is the bbolt file, *in use* the part holding data; the rest is free pages, which
etcd reuses but which only a defragmentation gives back to the file system.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math

MIB = 1024 * 1024


class AlarmKind(str, enum.Enum):
    """etcd's alarm types (rpc.proto ``AlarmType``): NOSPACE refuses every write but deletes and
    compactions; CORRUPT refuses every request."""

    NOSPACE = "NOSPACE"
    CORRUPT = "CORRUPT"


@dataclasses.dataclass(frozen=True)
class Alarm:
    """One raised alarm: the member it names (64-bit id) and its kind."""

    member_id: int
    kind: AlarmKind


@dataclasses.dataclass(frozen=True)
class MemberSpace:
    """One member's space as its Maintenance Status answered this cycle (None: it did not answer).

    Attributes:
        member_id, name: the member. is_leader, is_learner: its role. healthy: its ``/health``.
        db_size, db_size_in_use: bytes. revision: its store revision.
    """

    member_id: int
    name: str
    is_leader: bool
    is_learner: bool
    healthy: bool
    db_size: int | None = None
    db_size_in_use: int | None = None
    revision: int | None = None

    @property
    def hex_id(self) -> str:
        return format(self.member_id, "x")

    @property
    def free_bytes(self) -> int | None:
        """Free pages in the file (bytes), None when unknown."""
        if self.db_size is None or self.db_size_in_use is None:
            return None
        return max(0, self.db_size - self.db_size_in_use)

    @property
    def free_fraction(self) -> float | None:
        """Free pages as a share of the file (0.0 to 1.0), None when unknown."""
        free = self.free_bytes
        if free is None or not self.db_size:
            return None
        return free / self.db_size

    def shown(self) -> str:
        """``member 8e9e05c52164694d (i-0abc)`` for a log line."""
        return f"member {self.hex_id} ({self.name or 'not started'})"


@dataclasses.dataclass(frozen=True)
class KvHash:
    """A member's HashKV answer: the hash of its key-value store up to ``revision``, and the revision it had
    compacted to (-1: never compacted). Two members' hashes are comparable only at the same revision and
    compacted revision (etcd's own corruption check compares only then)."""

    member_id: int
    revision: int
    hash: int
    compact_revision: int


@dataclasses.dataclass(frozen=True)
class DefragRecord:
    """The last defragmentation of a member, as the leader that ran it recorded it in etcd (so that every
    agent, and the next leader, knows it): when (epoch seconds), the file size before and after (bytes)
    and how long it took (seconds)."""

    time: float
    before: int
    after: int
    seconds: float

    def to_json(self) -> str:
        return json.dumps({"time": round(self.time, 3), "before": self.before, "after": self.after,
                           "seconds": round(self.seconds, 3)})

    @classmethod
    def from_json(cls, text: bytes | str) -> "DefragRecord | None":
        """The record, None if ``text`` is not one (a record of another shape is no record, never a crash)."""
        try:
            body = json.loads(text)
            record = cls(float(body["time"]), int(body["before"]), int(body["after"]), float(body["seconds"]))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            return None
        if not all(math.isfinite(v) and v >= 0 for v in (record.time, record.seconds)) or min(
                record.before, record.after) < 0:
            return None
        return record


@dataclasses.dataclass(frozen=True)
class CompactionRecord:
    """The cluster's last compaction as the leader that asked for it recorded it: the revision compacted
    to, and when (epoch seconds)."""

    revision: int
    time: float

    def to_json(self) -> str:
        return json.dumps({"revision": self.revision, "time": round(self.time, 3)})

    @classmethod
    def from_json(cls, text: bytes | str) -> "CompactionRecord | None":
        """The record, None if ``text`` is not one."""
        try:
            body = json.loads(text)
            record = cls(int(body["revision"]), float(body["time"]))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            return None
        if record.revision < 0 or not math.isfinite(record.time) or record.time < 0:
            return None
        return record


@dataclasses.dataclass(frozen=True)
class Maintenance:
    """What the observer read of the maintenance this cycle.

    Attributes:
        members: on the serving leader every member's space, elsewhere this member's alone.
        alarms: the cluster's raised alarms, None when they could not be read.
        compaction: the last compaction recorded, None if none (or unreadable).
        defragmented: member id -> its last defragmentation recorded.
        defragmenting: the member a leader says it is defragmenting now (its lease-bound key), None if none.
    """

    members: tuple[MemberSpace, ...] = ()
    alarms: tuple[Alarm, ...] | None = None
    compaction: CompactionRecord | None = None
    defragmented: dict[int, DefragRecord] = dataclasses.field(default_factory=dict)
    defragmenting: int | None = None

    def member(self, member_id: int | None) -> MemberSpace | None:
        return next((m for m in self.members if m.member_id == member_id), None)

    def alarmed(self, kind: AlarmKind) -> tuple[int, ...]:
        """The members with a raised alarm of ``kind`` (empty when none, or unknown)."""
        return tuple(a.member_id for a in self.alarms or () if a.kind is kind)
