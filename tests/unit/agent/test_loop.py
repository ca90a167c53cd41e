"""The agent's loop with fake adapters: what each cycle runs, in which order, and what one failure stops.

The observer and the actuator are fakes (their own tests are elsewhere); the components are the real ones
on fake adapters, so that a cycle here is the cycle the agent runs.
"""

import dataclasses
import logging

from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.housekeeping import Housekeeping
from appliance.agent.components.listing import ListingCadence
from appliance.agent.components.peer_access import PeerAccess
from appliance.agent.components.records import Records
from appliance.agent.components.tokens import TokenCheck
from appliance.agent.loop import BOOTSTRAP_INTERVAL, Agent, Components
from appliance.agent.status import StatusDocument
from appliance.model.decisions import Action
from appliance.model.instances import Instance, Listing
from appliance.model.keys import HOUSEKEEPING_KEY
from appliance.model.members import LocalData, MemberHealth
from appliance.model.observation import Observation
from appliance.model.security_groups import GroupRules
from tests.unit.agent.fakes import FakeEtcd, FakeGroups, FakeZone, cluster, member, settings

ME = "i-1"
M1, M2, M3 = member(1, ME, "127.0.1.4"), member(2, "i-2", "127.0.2.4"), member(3, "i-3", "127.0.1.6")
# i-3's instance is gone from a complete listing; i-2 runs in another region.
LISTING = Listing(True, (Instance(ME, "127.0.1.4", "InService", region="eu-central-1"),
                         Instance("i-2", "127.0.2.4", "InService", region="eu-west-1")),
                  gone=frozenset({"i-3"}), desired_capacity=3)


def leading(**facts) -> Observation:
    """This instance's member leads a cluster whose third member's instance is gone."""
    base = dict(instance_id=ME, peer_url="http://127.0.1.4:2380", local=LocalData(True, 1), etcd_running=True,
                listing=LISTING, cluster=cluster(M1, M2, M3), is_leader=True,
                member_health=(MemberHealth(M1, True), MemberHealth(M2, True), MemberHealth(M3, False)))
    base.update(facts)
    return Observation(**base)


class Observer:
    """Hands out the given observations, one a cycle."""

    def __init__(self, *observations: Observation, terminated: bool = False):
        self.observations = list(observations)
        self.terminated = terminated
        self.leading = False

    def observe(self) -> Observation:
        return self.observations.pop(0) if len(self.observations) > 1 else self.observations[0]

    def terminated_by_metadata(self) -> bool:
        return self.terminated


class Etcd:
    proc = None

    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1


class Actuator:
    """Records each decision; leaving ends the agent, as the real one says."""

    def __init__(self):
        self.decisions, self.left, self.etcd = [], [], Etcd()

    def act(self, decision, s) -> bool:
        self.decisions.append(decision.action)
        return decision.action is Action.LEAVE

    def leave(self, s) -> None:
        self.left.append(s)


class Discovery:
    def list(self, confirm=()):
        return LISTING

    def own_lifecycle_state(self):
        return "InService"


def agent(observer: Observer, grace: float = 0.0, records: bool = True, peer_access: bool = True):
    metrics = AgentMetrics()
    etcd = FakeEtcd()
    zone = FakeZone("example.org.")
    groups = FakeGroups({"eu-central-1": GroupRules("eu-central-1", "sg-1"),
                         "eu-west-1": GroupRules("eu-west-1", "sg-2")})
    s = settings(hosted_zone="example.org.")
    components = Components(ListingCadence(Discovery(), 30.0),
                            Housekeeping(etcd, ME, 15, grace, lambda: None, metrics), TokenCheck(Etcd(), None),
                            records=Records(zone, s, "eu-central-1") if records else None,
                            peer_access=PeerAccess(groups) if peer_access else None)
    status = StatusDocument(ME, "eu-central-1", ("eu-central-1",), True, "3.5.1", metrics)
    return Agent(observer, Actuator(), status, components, ME, 5.0), etcd, zone, groups


def test_after_a_removal_the_same_cycle_still_keeps_the_records_and_the_peer_rules():
    loop, etcd, zone, groups = agent(Observer(leading()))
    assert loop.cycle() is not None
    assert loop.actuator.decisions == [Action.SERVE]
    assert etcd.removed == [3]
    assert [c.record.name for c in zone.batches[0]] == [
        "_etcd-client._tcp.etcd.example.org.", "_etcd-server._tcp.etcd.example.org.", "etcd.example.org.",
        "i-1.etcd.example.org.", "i-2.etcd.example.org."]
    assert [str(c) for c in groups.applied if c.add] == [
        "open eu-central-1 ingress from 127.0.2.4/32", "open eu-central-1 egress to 127.0.2.4/32",
        "open eu-west-1 ingress from 127.0.1.4/32", "open eu-west-1 egress to 127.0.1.4/32"]
    status = loop.status.snapshot()
    assert "removing it" in status["housekeeping"] and status["housekeeping_decisions"][0]["member"] == "3"
    assert "2 members published" in status["records"]
    assert status["peer_access"].startswith("open ")


def test_a_failing_component_does_not_keep_the_others_from_their_work(caplog):
    loop, etcd, zone, groups = agent(Observer(leading()))
    groups.fail = ZeroDivisionError("a bug in the rules of the groups")  # not an error the component expects
    with caplog.at_level(logging.ERROR):
        assert loop.cycle() is not None
    assert etcd.removed == [3] and zone.batches
    assert "peer access failed this cycle; the other components go on" in caplog.text


def test_the_leader_that_holds_the_lease_and_the_one_that_does_not():
    loop, etcd, _, _ = agent(Observer(leading()))
    etcd.keys[HOUSEKEEPING_KEY] = (b"i-9", 0x99)  # another agent's lease
    loop.cycle()
    assert etcd.removed == []
    assert "housekeeping lease held by i-9" in loop.status.snapshot()["housekeeping"]


def test_a_follower_gives_the_housekeeping_lease_back():
    loop, etcd, _, _ = agent(Observer(leading(), leading(is_leader=False, member_health=())))
    loop.cycle()
    assert HOUSEKEEPING_KEY in etcd.keys
    loop.cycle()
    assert HOUSEKEEPING_KEY not in etcd.keys and etcd.removed == [3]


def test_leaving_ends_the_loop_after_giving_the_lease_back():
    loop, etcd, _, _ = agent(Observer(leading(), leading(terminating=True)))
    loop.cycle()
    assert loop.cycle() is None
    assert loop.actuator.decisions == [Action.SERVE, Action.LEAVE]
    assert HOUSEKEEPING_KEY not in etcd.keys


def test_the_pace_of_cycles():
    loop, _, _, _ = agent(Observer(leading(), leading(cluster=None, etcd_running=False, is_leader=False,
                                                      member_health=())), grace=300.0)
    assert loop.cycle() == 2.0  # the leader sees a gone member: busy
    assert loop.cycle() == BOOTSTRAP_INTERVAL
    calm = leading(listing=dataclasses.replace(LISTING, gone=frozenset()), cluster=cluster(M1, M2),
                   member_health=(MemberHealth(M1, True), MemberHealth(M2, True)))
    loop, _, _, _ = agent(Observer(calm))
    assert loop.cycle() == 5.0  # both members healthy, their instances listed, none gone: calm
    assert loop.c.cadence.calm is True


def test_the_status_says_the_decision_and_counts_it():
    loop, _, _, _ = agent(Observer(leading()))
    loop.cycle()
    status = loop.status.snapshot()
    assert (status["state"], status["leader"], status["member_id"], status["quorum"]) == ("serve", True, "1", True)
    assert b'etcd_appliance_decisions_total{action="serve",decider="bootstrap"} 1.0' in \
        loop.status.metrics.exposition()


def test_run_goes_on_after_a_cycle_that_raises_and_stops_etcd_on_sigterm(caplog):
    class Failing(Observer):
        def observe(self):
            loop.stop_requested.set()
            raise RuntimeError("a bug")

    loop, _, _, _ = agent(Failing(leading()))
    with caplog.at_level(logging.ERROR):
        assert loop.run() == 0
    assert "agent cycle failed; etcd keeps running" in caplog.text
    assert loop.actuator.etcd.stopped == 1 and loop.actuator.left == []


def test_sigterm_of_a_terminated_instance_leaves_the_cluster():
    loop, _, _, _ = agent(Observer(leading(), terminated=True))
    loop.stop_requested.set()
    assert loop.run() == 0
    assert len(loop.actuator.left) == 1 and loop.actuator.etcd.stopped == 0


def last_success(loop) -> float:
    return loop.status.metrics.registry.get_sample_value(
        "etcd_appliance_housekeeping_last_success_timestamp_seconds")


def test_a_failing_housekeeping_does_not_keep_records_and_rules_from_their_work(caplog):
    loop, etcd, zone, groups = agent(Observer(leading()))
    loop.c.housekeeping.tick = lambda s: 1 / 0  # a bug in the component
    with caplog.at_level(logging.ERROR):
        loop.cycle()
    assert "housekeeping failed this cycle; the other components go on" in caplog.text
    assert zone.batches and groups.applied and etcd.removed == []
    assert last_success(loop) == 0  # the leader's work did not run to its end


def test_a_refused_removal_is_no_completed_cycle_and_a_clean_one_is():
    loop, etcd, _, _ = agent(Observer(leading()))
    etcd.refuse["member_remove"] = "etcdserver: unhealthy cluster"
    loop.cycle()
    assert etcd.removed == [] and last_success(loop) == 0
    del etcd.refuse["member_remove"]
    loop.cycle()
    assert etcd.removed == [3] and last_success(loop) > 0
