"""The snapshot an agent cycle observes, and the decision it takes from it.

Everything here is plain immutable data: the decision functions in
``bootstrap.py`` and ``housekeeper.py`` read these and nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Mapping

from appliance.aws.discovery import Listing
from appliance.etcd.client import Member
from appliance.etcd.process import LocalData


class Action(str, enum.Enum):
    """What one agent cycle does."""

    ANNOUNCE_SEED = "announce-seed"  # publish the intent to seed, then check once more
    SEED = "seed"                  # start a one-member cluster
    JOIN = "join"                  # MemberAdd as a learner, start etcd (existing)
    REJOIN = "rejoin"              # start etcd with the member's own data
    REMOVE_STALE = "remove-stale"  # remove a member entry claiming this instance, set data aside
    SET_ASIDE = "set-aside"        # move away data of a member the cluster no longer lists
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
    """One action and the sentence that explains it (logged as one line)."""

    action: Action
    reason: str
    member_id: int | None = None  # the member acted on, where there is one
    source: str = ""  # RESTORE_SNAPSHOT: s3://… or a file; "" for the newest good snapshot in S3


class Marker(str, enum.Enum):
    """What S3 says of the cluster's durable marker (written when the cluster was first created)."""

    OFF = "off"          # no SNAPSHOT_BUCKET: no marker is kept
    ABSENT = "absent"    # no cluster of this name ever existed (as far as the marker knows)
    PRESENT = "present"  # one did: never start it again empty
    UNKNOWN = "unknown"  # S3 did not say


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
    """An operator's ``etcd.py restore``: ``source`` is "own-data" (this member's data as a one-member
    cluster), an ``s3://`` URI or a local file (a snapshot)."""

    source: str


@dataclasses.dataclass(frozen=True)
class PeerStatus:
    """What another instance's agent said on its status endpoint."""

    instance_id: str
    running: bool
    has_data: bool
    seeding: bool = False  # it announced the intent to seed
    quorum: bool = False   # its member sees a leader
    revision: int | None = None  # its member's store revision, where it said


@dataclasses.dataclass(frozen=True)
class MemberHealth:
    """A member and whether its ``/health`` answered healthy this cycle."""

    member: Member
    healthy: bool


@dataclasses.dataclass(frozen=True)
class ClusterView:
    """The etcd cluster as one member saw it. ``leader_id`` is None when it knows no leader;
    ``version`` is the cluster version (``GET /version``), None when not asked or not decided."""

    cluster_id: int
    members: tuple[Member, ...]
    leader_id: int | None
    version: tuple[int, int, int] | None = None

    def by_id(self, member_id: int | None) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def by_name_or_peer(self, name: str, peer_url: str) -> Member | None:
        return next((m for m in self.members if m.name == name or peer_url in m.peer_urls), None)


@dataclasses.dataclass(frozen=True)
class AgentSnapshot:
    """Facts gathered by one agent cycle.

    Attributes:
        instance_id, peer_url: this instance and the peer URL it advertises.
        local: the data directory's content.
        etcd_running: the local etcd process is alive.
        may_start: the restart backoff after an etcd crash has run out.
        terminating: the instance is being taken out (metadata or ASG says so).
        listing: the AWS listing, or None if not taken this cycle.
        cluster: the cluster as some member answered, or None if no member answered.
        peers: other InService instances' agents -> their status, None if no answer.
        seed_announced: this agent's intent to seed was published on its status
            endpoint before this snapshot's peers were asked.
        binary_version: the local etcd binary's version, e.g. (3, 5, 1).
        upgrade_lock_holder: instance id holding the upgrade lock; None if free or
            not read this cycle; "unknown (…)" if it could not be read.
        local_healthy: the local member's ``/health`` said healthy (read only while
            this instance holds the upgrade lock).
        peer_access_problem: why the other regions' security groups do not let their
            members reach this instance yet ("" when they do, or in a single region).
        unaware_members: for a joiner in a cluster across regions, the members whose agents
            said their ACTIVE_REGIONS leave out this instance's region (such an agent, as
            leader, would take this member for gone and remove it).
    """

    instance_id: str
    peer_url: str
    local: LocalData
    etcd_running: bool
    may_start: bool = True
    terminating: bool = False
    listing: Listing | None = None
    cluster: ClusterView | None = None
    peers: Mapping[str, PeerStatus | None] = dataclasses.field(default_factory=dict)
    seed_announced: bool = False
    binary_version: tuple[int, int, int] | None = None
    upgrade_lock_holder: str | None = None
    local_healthy: bool = False
    peer_access_problem: str = ""
    unaware_members: tuple[str, ...] = ()
    marker: Marker = Marker.OFF
    marker_problem: str = ""
    quorum_lost_for: float | None = None
    revision: int | None = None
    quorum_recovery: str = "auto"
    quorum_loss_wait: float = 60.0
    restore_request: RestoreRequest | None = None
