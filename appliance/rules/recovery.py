"""Disaster recovery decisions (pure): after a quorum loss, and on an operator's ``etcd.py restore``.

Quorum lost, some data left (e.g. 2 of 3 instances terminated at once): the survivors cannot
elect a leader, and etcd offers no way back but ``--force-new-cluster`` on one of them (etcd's
disaster recovery guide, "Restoring a cluster": restart one member with its own data as a
one-member cluster, then add the others). The rule here:

- only once the groups have all their desired instances InService, every one of their agents
  answers, and none of their members sees a leader: an instance that does not answer may be
  partitioned rather than lost, and then the cluster must wait, not fork;
- only after quorum has stayed lost for ``QUORUM_LOSS_WAIT`` seconds (elections and restarts
  take seconds; this is for minutes);
- the survivor with the highest store revision recovers (ties: the lowest instance id), so the
  most writes are kept; with ``QUORUM_RECOVERY=manual`` the agents say who that is and wait.
"""

from __future__ import annotations

from appliance.model.decisions import Action, Decision
from appliance.model.observation import Observation


def decide_quorum_loss(s: Observation) -> Decision:
    """While etcd runs here and no member sees a leader: recover (FORCE_NEW_CLUSTER) or wait, and why."""
    lost = "quorum lost"  # no running count in the reason: the agent logs a reason when it changes
    listing = s.listing
    if listing is None or not listing.complete:
        problem = listing.problem if listing is not None else "not taken"
        return Decision(Action.WAIT, f"{lost}; the AWS listing is incomplete ({problem}): no recovery")
    present = listing.in_service()
    if listing.desired_capacity is None or len(present) < listing.desired_capacity:
        return Decision(Action.WAIT, f"{lost}; {len(present)} of {listing.desired_capacity} desired instances "
                        "InService: waiting for the group's replacements before any recovery")
    others = sorted(i.instance_id for i in present if i.instance_id != s.instance_id)
    silent = [i for i in others if s.peers.get(i) is None]
    if silent:
        return Decision(Action.WAIT, f"{lost}; no answer from the agents of {', '.join(silent)}: they may be "
                        "partitioned, not lost, so no recovery")
    with_quorum = [i for i in others if s.peers[i].quorum]
    if with_quorum:
        return Decision(Action.WAIT, f"{lost} here, but {', '.join(with_quorum)} see a leader: waiting to "
                        "reach it again")
    if (s.quorum_lost_for or 0) < s.quorum_loss_wait:
        return Decision(Action.WAIT, f"{lost}, every agent answers and none sees a leader: recovery once that "
                        f"has lasted {s.quorum_loss_wait:.0f} s (QUORUM_LOSS_WAIT)")
    survivors = {i: s.peers[i].revision for i in others if s.peers[i].has_data}
    survivors[s.instance_id] = s.revision
    unknown = sorted(i for i, revision in survivors.items() if revision is None)
    if unknown:
        return Decision(Action.WAIT, f"{lost}; the revision of {', '.join(unknown)}'s data is not known yet: "
                        "the survivor with the highest revision recovers")
    chosen = min(survivors, key=lambda i: (-survivors[i], i))
    facts = (f"{lost}; all {len(present)} desired instances answer, none sees a leader; of the survivors "
             + ", ".join(f"{i} (revision {r})" for i, r in sorted(survivors.items())))
    if chosen != s.instance_id:
        return Decision(Action.WAIT, f"{facts}: {chosen} has the highest revision and recovers")
    if s.quorum_recovery == "manual":
        return Decision(Action.WAIT, f"{facts}: this instance has the highest revision; QUORUM_RECOVERY=manual: "
                        "run `etcd.py restore --own-data` here to restart it as a one-member cluster")
    return Decision(Action.FORCE_NEW_CLUSTER, f"{facts}: this instance has the highest revision: restarting its "
                    "member as a one-member cluster (--force-new-cluster); the others join it")


def decide_request(s: Observation) -> Decision:
    """An operator's ``etcd.py restore`` is pending: carry it out, or refuse it while a leader answers."""
    request = s.restore_request
    assert request is not None
    if s.cluster is not None and s.cluster.leader_id is not None:
        return Decision(Action.REFUSE_RESTORE, f"restore from {request.source} refused: cluster "
                        f"{s.cluster.cluster_id:x} has a leader (quorum); restoring would fork it",
                        source=request.source)
    if request.source == "own-data":
        if not s.local.has_data:
            return Decision(Action.REFUSE_RESTORE, "restore --own-data refused: this instance holds no member data",
                            source=request.source)
        return Decision(Action.FORCE_NEW_CLUSTER, "operator's restore --own-data, no member sees a leader: "
                        "restarting this member's data as a one-member cluster", s.local.member_id,
                        source=request.source)
    return Decision(Action.RESTORE_SNAPSHOT, f"operator's restore from {request.source}, no member sees a leader: "
                    "restoring it into a one-member cluster", source=request.source)
