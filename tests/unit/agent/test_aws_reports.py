"""What the agent tells AWS beside the listing, over fake AWS calls: the termination hook's heartbeats and completion,
the CloudFormation signal (once per instance, across restarts), the leader's CloudWatch data point; and the loop
around them: an agent that left holds until SIGTERM when a hook waits, exits when none does."""

import logging
import threading
import time

import botocore.exceptions
import pytest

from appliance.adapters.aws.lifecycle_actions import NoPendingAction
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.leader_metric import HealthyLeaderMetric
from appliance.agent.components.stack_signal import CreationSignal, marker_path
from appliance.agent.components.termination_hook import TerminationHook
from appliance.model.decisions import Action, Decision
from appliance.model.errors import AwsPermissionError
from appliance.model.members import LocalData
from appliance.model.observation import Observation
from appliance.rules.termination_hook import COMPLETE_ATTEMPTS, Step
from tests.unit.agent import test_loop
from tests.unit.agent.fakes import Clock, cluster, member

HOOK = "etcd-appliance-leave"
THROTTLED = botocore.exceptions.ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}},
                                            "CompleteLifecycleAction")


class Actions:
    """LifecycleActions' calls, answering from a script: each call takes the next outcome (None: success)."""

    def __init__(self, complete=(), heartbeat=()):
        self.outcomes = {"complete": list(complete), "heartbeat": list(heartbeat)}
        self.calls: list[str] = []

    def _answer(self, name):
        self.calls.append(name)
        if self.outcomes[name]:
            outcome = self.outcomes[name].pop(0)
            if outcome is not None:
                raise outcome

    def complete(self):
        self._answer("complete")

    def heartbeat(self):
        self._answer("heartbeat")


def hook(actions, name=HOOK):
    sleeps = []
    return TerminationHook(actions, name, AgentMetrics(), sleep=sleeps.append, heartbeat_interval=0.05), sleeps


def completed(component) -> float:
    return component.metrics.registry.get_sample_value("etcd_appliance_lifecycle_actions_total",
                                                       {"outcome": "completed"}) or 0.0


# -- the termination hook --------------------------------------------------------------------------------------

def test_completes_once_after_the_leave_then_holds():
    component, sleeps = hook(Actions())
    assert component.after_leave() is Step.HOLD
    assert component.actions.calls == ["complete"] and completed(component) == 1 and sleeps == []
    assert component.after_leave() is Step.HOLD and component.actions.calls == ["complete"]


def test_a_failed_completion_is_tried_again_then_left_to_the_heartbeat_timeout(caplog):
    component, sleeps = hook(Actions(complete=[THROTTLED] * 5))
    with caplog.at_level(logging.INFO):
        assert component.after_leave() is Step.HOLD
    assert component.actions.calls == ["complete"] * COMPLETE_ATTEMPTS
    assert len(sleeps) == COMPLETE_ATTEMPTS - 1 and completed(component) == 0
    assert "heartbeat timeout ends the wait" in caplog.text


def test_a_refused_completion_counts_as_failed_and_a_transient_one_recovers():
    denied = AwsPermissionError("AccessDenied: autoscaling:CompleteLifecycleAction is not allowed")
    component, _ = hook(Actions(complete=[denied, None]))
    assert component.after_leave() is Step.HOLD
    assert component.actions.calls == ["complete", "complete"] and completed(component) == 1
    assert component.metrics.registry.get_sample_value("etcd_appliance_lifecycle_actions_total",
                                                       {"outcome": "failed"}) == 1


def test_no_pending_action_is_done_not_failed(caplog):
    component, _ = hook(Actions(complete=[NoPendingAction("No active Lifecycle Action found")]))
    with caplog.at_level(logging.INFO):
        assert component.after_leave() is Step.HOLD
    assert component.completed and completed(component) == 0
    assert "no lifecycle action of hook etcd-appliance-leave waited" in caplog.text


def test_holding_tries_again_until_a_completion_succeeds(monkeypatch):
    monkeypatch.setattr("appliance.rules.termination_hook.HOLD_RETRY", 0.05)
    component, _ = hook(Actions(complete=[THROTTLED] * 4 + [None]))
    assert component.after_leave() is Step.HOLD and not component.completed
    stop = threading.Event()
    holding = threading.Thread(target=component.hold, args=(stop,), daemon=True)
    holding.start()
    deadline = time.monotonic() + 5
    while not component.completed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert component.completed and component.actions.calls == ["complete"] * 5
    time.sleep(0.2)
    assert component.actions.calls == ["complete"] * 5  # no call once completed
    assert holding.is_alive()  # still idle until SIGTERM
    stop.set()
    holding.join(timeout=5)
    assert not holding.is_alive()


def test_without_a_hook_the_agent_exits_and_calls_nothing():
    component = TerminationHook(None, None, AgentMetrics())
    assert component.after_leave() is Step.EXIT
    with component.heartbeats():
        pass


def test_heartbeats_run_only_while_the_leave_does():
    component, _ = hook(Actions())
    with component.heartbeats():
        deadline = time.monotonic() + 5
        while component.heartbeats_sent < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    sent = component.heartbeats_sent
    assert sent >= 2
    time.sleep(0.2)
    assert component.heartbeats_sent == sent  # stopped with the leave


def test_a_short_leave_sends_no_heartbeat():
    component = TerminationHook(Actions(), HOOK, AgentMetrics(), heartbeat_interval=30.0)
    with component.heartbeats():
        time.sleep(0.05)
    assert component.actions.calls == []


def test_heartbeats_stop_when_no_action_waits():
    component, _ = hook(Actions(heartbeat=[NoPendingAction("none")]))
    with component.heartbeats():
        time.sleep(0.4)
    assert component.actions.calls == ["heartbeat"]


# -- the CloudFormation signal ---------------------------------------------------------------------------------

class Signal:
    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.sent: list[str] = []

    def send(self, unique_id):
        self.sent.append(unique_id)
        outcome = self.outcomes.pop(0) if self.outcomes else True
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


ME = member(1, "i-1", "127.0.1.4")
LEARNER = member(1, "i-1", "127.0.1.4", learner=True)
OTHER = member(2, "i-2", "127.0.1.5")
SERVE = Decision(Action.SERVE, "serving")


def seen(*members, leader=2, terminating=False, is_leader=False, lost=None) -> Observation:
    return Observation(instance_id="i-1", peer_url="http://127.0.1.4:2380", local=LocalData(True, 1),
                       etcd_running=True, cluster=cluster(*members, leader=leader), terminating=terminating,
                       is_leader=is_leader, quorum_lost_for=lost)


def signal_component(tmp_path, *outcomes, clock=None):
    return CreationSignal(Signal(*outcomes), marker_path(str(tmp_path / "etcd")), "i-1", AgentMetrics(),
                          clock=clock or Clock())


def signals(component, outcome) -> float:
    return component.metrics.registry.get_sample_value("etcd_appliance_cloudformation_signals_total",
                                                       {"outcome": outcome}) or 0.0


def test_signals_once_when_a_voter_and_never_again_even_after_a_restart(tmp_path):
    component = signal_component(tmp_path)
    assert "waiting" in component.tick(seen(LEARNER, OTHER), SERVE)
    assert "waiting" in component.tick(seen(ME, OTHER, leader=None), SERVE)
    assert "waiting" in component.tick(seen(ME, OTHER), Decision(Action.WAIT, "w"))
    assert component.signal.sent == []
    assert component.tick(seen(ME, OTHER), SERVE) == "signalled SUCCESS to CloudFormation"
    assert component.tick(seen(ME, OTHER), SERVE) == "this instance has signalled CloudFormation already"
    assert (tmp_path / "etcd.signalled").read_text() == "i-1\n"
    restarted = CreationSignal(Signal(), marker_path(str(tmp_path / "etcd")), "i-1", AgentMetrics())
    restarted.tick(seen(ME, OTHER), SERVE)
    assert component.signal.sent == ["i-1"] and restarted.signal.sent == [] and signals(component, "sent") == 1


def test_a_failed_signal_is_sent_again_after_a_pause_and_a_refused_one_is_not(tmp_path):
    throttled = botocore.exceptions.ClientError({"Error": {"Code": "Throttling", "Message": "m"}}, "SignalResource")
    clock = Clock()
    component = signal_component(tmp_path, throttled, False, clock=clock)
    assert "failed" in component.tick(seen(ME, OTHER), SERVE)
    clock.advance(10)
    assert "next try 30 s after the last" in component.tick(seen(ME, OTHER), SERVE)
    assert component.signal.sent == ["i-1"]
    clock.advance(20)
    assert "waits for no signal" in component.tick(seen(ME, OTHER), SERVE)
    component.tick(seen(ME, OTHER), SERVE)
    assert component.signal.sent == ["i-1", "i-1"]
    assert (signals(component, "failed"), signals(component, "refused")) == (1, 1)


def test_signalling_ends_after_an_hour_of_failures(tmp_path):
    denied = AwsPermissionError("AccessDenied: cloudformation:SignalResource is not allowed for this instance's role")
    clock = Clock()
    component = signal_component(tmp_path, *[denied] * 50, clock=clock)
    for _ in range(400):  # an hour and more of cycles, 10 s apart
        component.tick(seen(ME, OTHER), SERVE)
        clock.advance(10)
    assert 5 <= len(component.signal.sent) <= 12  # backing off: 30, 60, 120 … 600 s apart, then not at all
    assert "gave up after" in component.tick(seen(ME, OTHER), SERVE)
    assert not (tmp_path / "etcd.signalled").exists()


def test_an_instance_being_taken_out_does_not_signal(tmp_path):
    component = signal_component(tmp_path)
    component.tick(seen(ME, OTHER, terminating=True), SERVE)
    assert component.signal.sent == [] and not (tmp_path / "etcd.signalled").exists()


# -- the leader's CloudWatch data point --------------------------------------------------------------------------

class Metric:
    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.puts = 0

    def put(self):
        self.puts += 1
        if self.outcomes and self.outcomes.pop(0) is not None:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_the_serving_leader_puts_one_data_point_a_minute():
    clock = Clock()
    component = HealthyLeaderMetric(Metric(), clock)
    leader = seen(ME, OTHER, leader=1, is_leader=True)
    assert component.tick(leader, SERVE) is True
    clock.advance(30)
    assert component.tick(leader, SERVE) is False
    clock.advance(30)
    assert component.tick(leader, SERVE) is True
    clock.advance(120)
    assert component.tick(seen(ME, OTHER, leader=2), SERVE) is False  # a follower
    assert component.tick(seen(ME, OTHER, leader=1, is_leader=True, lost=5.0), SERVE) is False  # no quorum
    assert component.metric.puts == 2


def test_a_failed_put_waits_for_the_next_minute(caplog):
    clock = Clock()
    component = HealthyLeaderMetric(Metric("fail", None), clock)
    leader = seen(ME, OTHER, leader=1, is_leader=True)
    assert component.tick(leader, SERVE) is False
    clock.advance(1)
    assert component.tick(leader, SERVE) is False and component.metric.puts == 1
    clock.advance(60)
    with caplog.at_level(logging.INFO):
        assert component.tick(leader, SERVE) is True
    assert "HealthyLeader not put" in caplog.text and "put again" in caplog.text


# -- the loop around the termination hook ----------------------------------------------------------------------

def looping(termination):
    loop, *_ = test_loop.agent(test_loop.Observer(test_loop.leading(terminating=True)))
    loop.c.termination = termination
    return loop


def test_an_agent_that_left_holds_until_sigterm_when_a_hook_waits():
    component, _ = hook(Actions())
    loop = looping(component)
    held = []

    def sigterm_later():  # run() installs signal handlers, so it runs in the main thread and this one stops it
        deadline = time.monotonic() + 5
        while component.actions.calls != ["complete"] and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        held.append(list(loop.actuator.decisions))
        loop.stop_requested.set()

    threading.Thread(target=sigterm_later, daemon=True).start()
    started = time.monotonic()
    assert loop.run() == 0
    assert time.monotonic() - started >= 0.3  # it held after completing
    assert held == [[Action.LEAVE]] and loop.actuator.decisions == [Action.LEAVE]  # no second leave on SIGTERM


def test_an_agent_that_left_exits_when_no_hook_is_set():
    loop = looping(TerminationHook(None, None, AgentMetrics()))
    assert loop.run() == 0
    assert loop.actuator.decisions == [Action.LEAVE]


@pytest.mark.parametrize("hook_name, outcomes, calls", [
    (HOOK, [], ["complete"]), (None, [], []),
    (HOOK, [THROTTLED, THROTTLED], ["complete"]),  # one attempt only: Docker's stop timeout runs
], ids=["hook", "no hook", "one attempt on the way out"])
def test_sigterm_of_a_terminated_instance_leaves_then_completes(hook_name, outcomes, calls):
    actions = Actions(complete=outcomes)
    loop, *_ = test_loop.agent(test_loop.Observer(test_loop.leading(), terminated=True))
    loop.c.termination = TerminationHook(actions if hook_name else None, hook_name, AgentMetrics())
    loop.stop_requested.set()
    assert loop.run() == 0
    assert len(loop.actuator.left) == 1 and actions.calls == calls
