"""The agent's decision: seed, join, rejoin, promote, leave, serve or wait.

A pure function of an :class:`AgentSnapshot`; the safety rules it encodes are
DESIGN.md's "Safety rules" (one seeder, only on a complete listing when no other
instance runs or holds a member; join as a learner; one joiner at a time).

Seeding is announce-then-check: the lowest instance first publishes its intent on
its status endpoint, and seeds only if a check made after that still finds every
other agent without data, etcd or an intent of its own. Two agents cannot both
seed: the later of the two announcements precedes that agent's check, which sees
the earlier intent and waits.
"""

from __future__ import annotations

from appliance.cluster import recovery
from appliance.cluster.model import Action, AgentSnapshot, Decision, Marker
from appliance.etcd import versions


def decide(s: AgentSnapshot) -> Decision:
    """Return the one action this cycle should take, with its reason."""
    if s.terminating:
        return Decision(Action.LEAVE, "instance is being terminated: leaving the cluster")
    if s.restore_request is not None:
        return recovery.decide_request(s)
    if s.etcd_running and s.quorum_lost_for is not None:
        return recovery.decide_quorum_loss(s)
    if s.etcd_running:
        return _decide_running(s)
    if not s.may_start:
        return Decision(Action.WAIT, "etcd exited recently: waiting out the restart backoff")
    if s.local.has_data:
        return _decide_with_data(s)
    if s.peer_access_problem:  # seeding asks every agent, and a joiner must be reachable: both cross regions
        return Decision(Action.WAIT, f"the other regions cannot reach this instance yet: {s.peer_access_problem}")
    if s.cluster is not None:
        return _decide_join(s)
    return _decide_seed(s)


def _decide_running(s: AgentSnapshot) -> Decision:
    if s.cluster is None:
        return Decision(Action.SERVE, "etcd runs; no member answered this cycle")
    me = s.cluster.by_id(s.local.member_id) or s.cluster.by_name_or_peer(s.instance_id, s.peer_url)
    if me is None and s.local.member_id is not None and s.cluster.leader_id is not None:
        # Its data belongs to a member the cluster with a leader has removed (a recovery restarted
        # another member as a one-member cluster, or restored a snapshot): it can never rejoin.
        return Decision(Action.SET_ASIDE, f"etcd runs with the data of member {s.local.member_id:x}, which "
                        f"cluster {s.cluster.cluster_id:x} (with a leader) does not list: stopping it and setting "
                        "the data aside, to join afresh", s.local.member_id)
    if me is None:
        return Decision(Action.SERVE, "etcd runs but the cluster does not list this member (yet)")
    if me.is_learner:
        return Decision(Action.PROMOTE, f"member {me.hex_id} is a learner: promoting once caught up",
                        me.id)
    if s.upgrade_lock_holder == s.instance_id:
        if s.local_healthy:
            return Decision(Action.RELEASE_UPGRADE_LOCK, f"member {me.hex_id} is a healthy voting member: "
                            "releasing the upgrade lock", me.id)
        return Decision(Action.SERVE, f"member {me.hex_id} is a voting member, not yet healthy: "
                        "keeping the upgrade lock", me.id)
    return Decision(Action.SERVE, f"member {me.hex_id} is a voting member", me.id)


def _decide_with_data(s: AgentSnapshot) -> Decision:
    member_id = s.local.member_id
    if s.cluster is None:
        return Decision(Action.REJOIN, "local data present and no member answers: restarting with it",
                        member_id)
    if member_id is not None and s.cluster.by_id(member_id) is not None:
        return Decision(Action.REJOIN, f"data of member {member_id:x}, which the cluster lists: "
                        "restarting with it", member_id)
    if member_id is None:
        named = s.cluster.by_name_or_peer(s.instance_id, s.peer_url)
        if named is not None and named.name == s.instance_id:
            return Decision(Action.REJOIN, f"unmarked data; the cluster lists member {named.hex_id} "
                            "under this instance's name: restarting with it", named.id)
    owner = f"member {member_id:x}" if member_id is not None else "an unknown member"
    return Decision(Action.SET_ASIDE, f"local data belongs to {owner}, which cluster "
                    f"{s.cluster.cluster_id:x} no longer lists: setting it aside", member_id)


def _decide_join(s: AgentSnapshot) -> Decision:
    cluster = s.cluster
    assert cluster is not None
    if cluster.leader_id is None:
        return Decision(Action.WAIT, f"cluster {cluster.cluster_id:x} answers but has no leader")
    stale = cluster.by_name_or_peer(s.instance_id, s.peer_url)
    if stale is not None:
        return Decision(Action.REMOVE_STALE, f"member {stale.hex_id} claims this instance but there is "
                        "no usable local data: removing it to join afresh", stale.id)
    learners = [m for m in cluster.members if m.is_learner]
    if learners:
        return Decision(Action.WAIT, f"member {learners[0].hex_id} ({learners[0].name or 'not started'}) "
                        "is still a learner: one joiner at a time")
    if s.unaware_members:
        return Decision(Action.WAIT, "not joining: the agents of " + ", ".join(s.unaware_members)
                        + " do not count this instance's region among their ACTIVE_REGIONS; as leader they "
                        "would take this member for gone and remove it (replace those instances first)")
    joining = f"cluster {cluster.cluster_id:x} is healthy and this instance is not a member yet"
    if cluster.version is None or s.binary_version is None:
        return Decision(Action.WAIT, f"cluster {cluster.cluster_id:x}: cluster version not known yet")
    mine, theirs = versions.minor(s.binary_version), versions.minor(cluster.version)
    verdict = versions.join_verdict(s.binary_version, cluster.version)
    if verdict == "older":
        return Decision(Action.WAIT, f"refusing to join: this instance's etcd {mine} is older than the cluster "
                        f"version {theirs} (etcd does not downgrade); run etcd {theirs} or newer here")
    if verdict == "too-new":
        return Decision(Action.WAIT, f"refusing to join: this instance's etcd {mine} is more than one minor "
                        f"version newer than the cluster version {theirs} (etcd upgrades one minor at a time)")
    if verdict == "upgrade":
        holder = s.upgrade_lock_holder
        if holder == s.instance_id:
            return Decision(Action.JOIN, f"{joining}; etcd {mine} upgrades cluster version {theirs} and this "
                            "instance holds the upgrade lock: joining as a learner")
        if holder:
            return Decision(Action.WAIT, f"etcd {mine} upgrades cluster version {theirs}, but the upgrade lock "
                            f"is held by {holder}: one upgrade at a time")
        return Decision(Action.TAKE_UPGRADE_LOCK, f"etcd {mine} is newer than cluster version {theirs}: "
                        "taking the upgrade lock before joining")
    return Decision(Action.JOIN, f"{joining}: joining as a learner")


def _decide_seed(s: AgentSnapshot) -> Decision:
    listing = s.listing
    if listing is None or not listing.complete:
        problem = listing.problem if listing is not None else "not taken"
        return Decision(Action.WAIT, f"no member answers and the AWS listing is incomplete ({problem})")
    me = listing.get(s.instance_id)
    if me is None or not me.in_service:
        state = me.lifecycle_state if me else "not listed"
        return Decision(Action.WAIT, f"no member answers; this instance is {state} in its group, "
                        "not InService")
    others = sorted(i.instance_id for i in listing.in_service() if i.instance_id != s.instance_id)
    silent = [i for i in others if s.peers.get(i) is None]
    if silent:
        return Decision(Action.WAIT, "no member answers; no answer from the agents of "
                        + ", ".join(silent) + " (they may hold a cluster this instance cannot see)")
    holders = [i for i in others if s.peers[i].running or s.peers[i].has_data]
    if holders:
        return Decision(Action.WAIT, "no member answers; " + ", ".join(holders)
                        + " run etcd or hold a member's data: waiting for them")
    seeders = [i for i in others if s.peers[i].seeding]
    if seeders:
        return Decision(Action.WAIT, "no cluster yet: " + ", ".join(seeders) + " announced it seeds")
    lowest = min([s.instance_id, *others])
    if lowest != s.instance_id:
        return Decision(Action.WAIT, f"no cluster yet: waiting for {lowest} (lowest instance id) to seed")
    facts = (f"listing complete with {len(others) + 1} InService instances, none runs, holds a member "
             "or seeds, and this is the lowest instance id")
    if s.marker is Marker.UNKNOWN:
        # DESIGN.md: never bootstrap a new empty cluster where one existed; S3 not answering is not "none did".
        return Decision(Action.WAIT, f"{facts}, but whether this cluster existed before is unknown "
                        f"({s.marker_problem}): neither seeding empty nor restoring")
    if not s.seed_announced:
        return Decision(Action.ANNOUNCE_SEED, f"{facts}: announcing the intent to seed, then checking again")
    if s.marker is Marker.PRESENT:
        return Decision(Action.RESTORE_SNAPSHOT, f"{facts}, checked after announcing; the cluster's marker says "
                        "it existed and every member's data is gone: restoring the newest good snapshot into a "
                        "one-member cluster (never an empty one)")
    return Decision(Action.SEED, f"{facts}, checked after announcing: seeding a one-member cluster")
