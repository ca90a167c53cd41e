"""Bootstrap (pure): seed a new cluster, join the one there is as a learner, or rejoin with this member's data.

The safety rules it encodes are docs/design.md's "One seeder" (only on a complete listing when no
other instance runs or holds a member), "Never an empty cluster where one existed", "One joiner
at a time, as a learner" and "Upgrade one minor at a time, under the upgrade lock".

Seeding is announce-then-check: the lowest instance first publishes its intent on
its status endpoint, and seeds only if a check made after that still finds every
other agent without data, etcd or an intent of its own. Two agents cannot both
seed: the later of the two announcements precedes that agent's check, which sees
the earlier intent and waits.
"""

from __future__ import annotations

from appliance.model import versions
from appliance.model.decisions import Action, Decision
from appliance.model.observation import Marker, Observation
from appliance.rules.versions import join_verdict


def decide_with_data(s: Observation) -> Decision:
    """etcd is stopped and the data directory holds a member's data: rejoin with it, or set it aside."""
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


def decide_join(s: Observation) -> Decision:
    """No local data and a cluster answers: join it as a learner (under the upgrade lock when this etcd is
    one minor newer), or wait, and why."""
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
    verdict = join_verdict(s.binary_version, cluster.version)
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


def decide_seed(s: Observation) -> Decision:
    """No local data and no member answers: seed (announce first, then check again), restore the newest
    snapshot where the cluster existed, or wait, and why."""
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
        # Never an empty cluster where one existed: S3 not answering is not "none did".
        return Decision(Action.WAIT, f"{facts}, but whether this cluster existed before is unknown "
                        f"({s.marker_problem}): neither seeding empty nor restoring")
    if not s.seed_announced:
        return Decision(Action.ANNOUNCE_SEED, f"{facts}: announcing the intent to seed, then checking again")
    if s.marker is Marker.PRESENT:
        return Decision(Action.RESTORE_SNAPSHOT, f"{facts}, checked after announcing; the cluster's marker says "
                        "it existed and every member's data is gone: restoring the newest good snapshot into a "
                        "one-member cluster (never an empty one)")
    return Decision(Action.SEED, f"{facts}, checked after announcing: seeding a one-member cluster")
