"""The facts one agent cycle gathers (its observation), read by the pure rules and nothing else.

Named an observation, not a snapshot: a snapshot in this project is always etcd's (a copy of
the keyspace in S3).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Mapping

from appliance.model.formats import is_region
from appliance.model.instances import Listing
from appliance.model.maintenance import Maintenance
from appliance.model.members import ClusterView, LocalData, MemberHealth
from appliance.model.modes import Mode
from appliance.model.security_groups import RuleChange


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
    regions: tuple[str, ...] = ()  # the regions it counts as active (its ACTIVE_REGIONS, else its own region)


class MalformedStatus(ValueError):
    """An agent's ``/status`` answer is not a status document; the message says why, in one line."""


_REVISION_LIMIT = 2 ** 63  # etcd's revisions are int64


def _flag(body: dict, name: str, required: bool) -> bool:
    if not required and name not in body:
        return False
    value = body.get(name)
    if not isinstance(value, bool):
        raise MalformedStatus(f"{name} is {_shown(value)}, not a JSON boolean")
    return value


def _shown(value: object) -> str:
    """``value`` for a one-line message: its repr, cut short (it comes from elsewhere)."""
    if value is None:
        return "missing or null"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def peer_status(instance_id: str, body: object) -> PeerStatus:
    """Another agent's ``/status`` document as a :class:`PeerStatus`, its shape checked where it enters.

    A document is understood only whole: ``running`` and ``has_data`` are JSON booleans, ``seeding`` and
    ``quorum`` JSON booleans where present (absent: false, as agents say them only once they know),
    ``revision`` null or an integer in [0, 2**63) where present, ``region`` a region name and
    ``active_regions``, where present, a list of region names. Other keys are not looked at.

    Args:
        instance_id: the instance whose agent answered (not checked against the document).
        body: the decoded JSON answer.

    Raises:
        MalformedStatus: anything else, e.g. ``"running": "false"``; the peer then counts as not answering
            (docs/design.md, "The control loop": what could not be learned is unknown, never guessed).
    """
    if not isinstance(body, dict):
        raise MalformedStatus(f"the answer is a JSON {type(body).__name__}, not an object")
    running, has_data = _flag(body, "running", True), _flag(body, "has_data", True)
    seeding, quorum = _flag(body, "seeding", False), _flag(body, "quorum", False)
    revision = body.get("revision")
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)
                                 or not 0 <= revision < _REVISION_LIMIT):
        raise MalformedStatus(f"revision is {_shown(revision)}, not an integer in [0, 2**63)")
    region = body.get("region")
    if not is_region(region):
        raise MalformedStatus(f"region is {_shown(region)}, not a region name")
    active = body.get("active_regions", [])
    if not isinstance(active, list) or not all(is_region(r) for r in active):
        raise MalformedStatus(f"active_regions is {_shown(active)}, not a list of region names")
    return PeerStatus(instance_id, running, has_data, seeding, quorum, revision, tuple(active) or (region,))


@dataclasses.dataclass(frozen=True)
class Observation:
    """Facts gathered by one agent cycle; observing them changed nothing.

    Attributes:
        instance_id, peer_url: this instance and the peer URL it advertises.
        local: the data directory's content.
        etcd_running: the local etcd process is alive.
        may_start: the restart backoff after an etcd crash has run out.
        terminating: the instance is being taken out (metadata or ASG says so).
        listing: the AWS listing, or None if none was ever taken.
        cluster: the cluster as some member answered, or None if no member answered.
        is_leader: etcd runs here and its member is the leader the cluster reports.
        peers: other InService instances' agents -> their status, None if no answer (or an answer that is
            not a status document: see :func:`peer_status`).
        seed_announced: this agent's intent to seed was published on its status
            endpoint before this observation's peers were asked.
        binary_version: the local etcd binary's version, e.g. (3, 5, 1).
        upgrade_lock_holder: instance id holding the upgrade lock; None if free or
            not read this cycle; "unknown (…)" if it could not be read.
        local_healthy: the local member's ``/health`` said healthy (read only while
            this instance holds the upgrade lock).
        peer_access_problem: why the other regions' security groups could not be read
            ("" when they could, or in a single region).
        missing_access: the rules the other regions' groups still lack for this instance
            before it seeds or joins (empty once they are there, or in a single region).
        unaware_members: for a joiner in a cluster across regions, the members whose agents
            said their ACTIVE_REGIONS leave out this instance's region (such an agent, as
            leader, would take this member for gone and remove it).
        marker, marker_problem: the S3 marker (read only when this instance may seed) and why unknown.
        quorum_lost_for: seconds etcd has run here with no member seeing a leader (None: one does).
        revision: this member's store revision, read only while quorum is lost.
        quorum_recovery, quorum_loss_wait: the settings of the recovery rule (auto|manual, seconds).
        restore_request: an operator's pending ``etcd.py restore``, None if none.
        member_health: on the serving leader, every member with its ``/health`` this cycle; () elsewhere.
        mode: on the leader of a cluster linked by the mirror, (its mode, the revision of its mode
            record, 0 for none); None when not read or unknown.
        maintenance: on a serving member with a leader, the space (every member's on the leader, its own
            elsewhere), the alarms and the leader's maintenance records; None elsewhere.
    """

    instance_id: str
    peer_url: str
    local: LocalData
    etcd_running: bool
    may_start: bool = True
    terminating: bool = False
    listing: Listing | None = None
    cluster: ClusterView | None = None
    is_leader: bool = False
    peers: Mapping[str, PeerStatus | None] = dataclasses.field(default_factory=dict)
    seed_announced: bool = False
    binary_version: tuple[int, int, int] | None = None
    upgrade_lock_holder: str | None = None
    local_healthy: bool = False
    peer_access_problem: str = ""
    missing_access: tuple[RuleChange, ...] = ()
    unaware_members: tuple[str, ...] = ()
    marker: Marker = Marker.OFF
    marker_problem: str = ""
    quorum_lost_for: float | None = None
    revision: int | None = None
    quorum_recovery: str = "auto"
    quorum_loss_wait: float = 60.0
    restore_request: RestoreRequest | None = None
    member_health: tuple[MemberHealth, ...] = ()
    mode: tuple[Mode, int] | None = None
    maintenance: Maintenance | None = None
