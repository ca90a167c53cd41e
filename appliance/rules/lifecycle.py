"""Which rule decides for this instance this cycle (pure): leave, recover, serve, rejoin, join or seed.

The order is the rule: an instance being taken out leaves whatever else holds; an operator's
restore request comes before the automatic recovery after a quorum loss, which comes before
serving; a stopped etcd waits out its restart backoff; data on disk is rejoined before anything
new is started; and an instance of a cluster across regions is reachable from the other regions
before it seeds or joins.
"""

from __future__ import annotations

from appliance.model.decisions import Action, Decision
from appliance.model.observation import Observation
from appliance.rules import bootstrap, recovery, serving


def decide(s: Observation) -> Decision:
    """The one action this cycle takes for this instance, with its reason (logged when it changes)."""
    if s.terminating:
        return Decision(Action.LEAVE, "instance is being terminated: leaving the cluster")
    if s.restore_request is not None:
        return recovery.decide_request(s)
    if s.etcd_running and s.quorum_lost_for is not None:
        return recovery.decide_quorum_loss(s)
    if s.etcd_running:
        return serving.decide(s)
    if not s.may_start:
        return Decision(Action.WAIT, "etcd exited recently: waiting out the restart backoff")
    if s.local.has_data:
        return bootstrap.decide_with_data(s)
    # Seeding asks every agent, and a joiner must be reachable: both cross regions.
    if s.peer_access_problem:
        return Decision(Action.WAIT, f"the other regions cannot reach this instance yet: {s.peer_access_problem}")
    if s.missing_access:
        return Decision(Action.OPEN_PEER_ACCESS, "the other regions' security groups lack this instance's rules "
                        f"({', '.join(map(str, s.missing_access))}): opening them before it seeds or joins")
    if s.cluster is not None:
        return bootstrap.decide_join(s)
    return bootstrap.decide_seed(s)
