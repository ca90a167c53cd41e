"""What one agent cycle does for its instance, and why."""

from __future__ import annotations

import dataclasses
import enum


class Action(str, enum.Enum):
    """What one agent cycle does."""

    ANNOUNCE_SEED = "announce-seed"  # publish the intent to seed, then check once more
    SEED = "seed"                  # start a one-member cluster
    JOIN = "join"                  # MemberAdd as a learner, start etcd (existing)
    REJOIN = "rejoin"              # start etcd with the member's own data
    REMOVE_STALE = "remove-stale"  # remove a member entry claiming this instance, set data aside
    SET_ASIDE = "set-aside"        # move away data of a member the cluster no longer lists
    MARK_DATA = "mark-data"        # record in the data directory which member its data belongs to
    OPEN_PEER_ACCESS = "open-peer-access"  # before seeding or joining: the other regions' groups let it in
    PROMOTE = "promote"            # MemberPromote this learner
    TAKE_UPGRADE_LOCK = "take-upgrade-lock"        # a newer etcd than the cluster's: lock, then join
    RELEASE_UPGRADE_LOCK = "release-upgrade-lock"  # joined and healthy as a voting member: unlock
    RESTORE_SNAPSHOT = "restore-snapshot"    # restore a snapshot into a one-member cluster, start it
    FORCE_NEW_CLUSTER = "force-new-cluster"  # restart this member's data as a one-member cluster
    REFUSE_RESTORE = "refuse-restore"        # answer an operator's restore request with a refusal
    LEAVE = "leave"                # instance taken out: MemberRemove self, stop etcd, exit
    SERVE = "serve"                # a voting member serving: supervise (and housekeep if leader)
    WAIT = "wait"                  # nothing safe to do yet


@dataclasses.dataclass(frozen=True)
class Decision:
    """One action and the sentence that explains it (logged as one line).

    ``member_id``: the member acted on, where there is one. ``source``: for RESTORE_SNAPSHOT,
    ``s3://…`` or a file, "" for the newest good snapshot in S3.
    """

    action: Action
    reason: str
    member_id: int | None = None
    source: str = ""
