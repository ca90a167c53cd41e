"""A running member (pure): promote it, record which member its data is, release the upgrade lock, or
set aside the data of a member the cluster removed."""

from __future__ import annotations

from appliance.model.decisions import Action, Decision
from appliance.model.observation import Observation


def decide(s: Observation) -> Decision:
    """etcd runs here and a leader is known (or nobody answered): what to do for its member, and why."""
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
    if s.local.has_data and s.local.member_id is None:
        # A seeder's or a restored member's data: recorded now, so that after a restart this
        # instance tells its own data from a removed member's.
        return Decision(Action.MARK_DATA, f"member {me.hex_id} runs on data that does not say whose it is: "
                        "recording it", me.id)
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
