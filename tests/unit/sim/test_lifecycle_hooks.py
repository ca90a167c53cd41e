"""The termination hook's state machine (appliance/sim/lifecycle_hooks.py) as AWS documents it: completion,
heartbeat timeout, heartbeats extending it up to the global timeout, idempotent terminations, ABANDON ending
the other hooks' actions, ValidationError where nothing is pending; and its persistence for ``sim status``."""

import json

import pytest

from appliance.sim.lifecycle_hooks import (
    GLOBAL_TIMEOUT_CAP,
    PROCEED,
    WAIT,
    Hook,
    NoPendingAction,
    PendingActions,
    load_pending,
    outcomes,
)

T0 = 1_800_000_000.0
HOOK = Hook("etcd-appliance-leave", 30.0, "CONTINUE")


@pytest.fixture
def actions(tmp_path):
    return PendingActions(str(tmp_path))


def begin(actions, instance="i-1", hooks=(HOOK,), decrement=False, now=T0):
    return actions.begin(instance, "g", "eu-central-1", list(hooks), decrement, "TerminateInstanceInAutoScalingGroup",
                         now)


def test_a_terminating_instance_waits_until_its_action_is_completed(actions):
    assert begin(actions)
    assert actions.state_of("i-1") == WAIT
    assert actions.due(T0 + 29) == []
    actions.complete("g", HOOK.name, "i-1", None, "CONTINUE", T0 + 5)
    assert actions.state_of("i-1") == PROCEED
    [going] = actions.due(T0 + 5)
    assert (going.instance_id, going.outcome, going.decrement) == ("i-1", "completed (CONTINUE)", False)


@pytest.mark.parametrize("default,after,outcome", [
    pytest.param("CONTINUE", 30, "heartbeat timeout (DefaultResult CONTINUE)", id="continue-at-the-timeout"),
    pytest.param("ABANDON", 31, "heartbeat timeout (DefaultResult ABANDON)", id="abandon-after-the-timeout"),
])
def test_without_completion_the_heartbeat_timeout_applies_the_default_result(actions, default, after, outcome):
    begin(actions, hooks=[Hook("h", 30.0, default)])
    assert actions.due(T0 + 29.9) == []
    [going] = actions.due(T0 + after)
    assert going.outcome == outcome


def outcomes_of(actions, now):
    [going] = actions.due(now)
    return going.outcome


def test_each_heartbeat_restarts_the_timeout(actions):
    begin(actions)
    assert actions.heartbeat("g", HOOK.name, "i-1", None, T0 + 20) == T0 + 50
    assert actions.due(T0 + 49) == []
    assert [g.outcome for g in actions.due(T0 + 50)] == ["heartbeat timeout (DefaultResult CONTINUE)"]


def test_heartbeats_never_extend_the_wait_beyond_100_times_the_heartbeat_timeout(actions):
    begin(actions)  # 30 s: the global timeout is 3000 s
    now = T0
    for _ in range(200):
        now += 25
        if actions.due(now):
            break
        actions.heartbeat("g", HOOK.name, "i-1", None, now)
    assert T0 + 3000 <= now < T0 + 3025
    assert outcomes_of(actions, now) == "global timeout (DefaultResult CONTINUE)"


def test_the_global_timeout_is_capped_at_48_hours(actions):
    begin(actions, hooks=[Hook("long", 7200.0)])
    [action] = actions.pending()
    assert action.global_deadline == T0 + GLOBAL_TIMEOUT_CAP < T0 + 100 * 7200


def test_a_second_termination_of_a_terminating_instance_changes_nothing(actions):
    assert begin(actions, decrement=False)
    [first] = actions.pending()
    assert not begin(actions, decrement=True, now=T0 + 10)
    [again] = actions.pending()
    assert again == first


@pytest.mark.parametrize("call", [
    pytest.param(lambda a: a.complete("g", HOOK.name, "i-2", None, "CONTINUE", T0), id="complete-other-instance"),
    pytest.param(lambda a: a.complete("other", HOOK.name, "i-1", None, "CONTINUE", T0), id="complete-other-group"),
    pytest.param(lambda a: a.complete("g", "other-hook", "i-1", None, "CONTINUE", T0), id="complete-other-hook"),
    pytest.param(lambda a: a.heartbeat("g", HOOK.name, None, "no-such-token", T0), id="heartbeat-unknown-token"),
])
def test_no_pending_action_is_a_validation_error(actions, call):
    begin(actions)
    with pytest.raises(NoPendingAction, match="No active Lifecycle Action found with"):
        call(actions)
    assert actions.state_of("i-1") == WAIT  # nothing changed


def test_a_completed_action_cannot_be_completed_again(actions):
    begin(actions)
    actions.complete("g", HOOK.name, "i-1", None, "CONTINUE", T0)
    with pytest.raises(NoPendingAction):
        actions.complete("g", HOOK.name, "i-1", None, "CONTINUE", T0 + 1)


def test_the_token_identifies_the_action_too(actions):
    begin(actions)
    [action] = actions.pending()
    actions.complete("g", HOOK.name, None, action.token, "ABANDON", T0)
    assert [g.outcome for g in actions.due(T0)] == ["completed (ABANDON)"]


def test_with_two_hooks_continue_waits_for_the_other_and_abandon_ends_it(actions):
    begin(actions, hooks=[HOOK, Hook("drain", 60.0)])
    actions.complete("g", HOOK.name, "i-1", None, "CONTINUE", T0)
    assert actions.state_of("i-1") == WAIT and actions.due(T0 + 1) == []
    actions.complete("g", "drain", "i-1", None, "ABANDON", T0 + 2)
    assert [g.outcome for g in actions.due(T0 + 2)] == ["completed (ABANDON)"]


def test_pending_actions_are_persisted_and_finished_ones_recorded(tmp_path, actions):
    begin(actions, instance="i-1", decrement=True)
    begin(actions, instance="i-2")
    assert actions.decrements("g") == 1
    assert [a["instance_id"] for a in load_pending(str(tmp_path))] == ["i-1", "i-2"]
    assert [a.instance_id for a in PendingActions(str(tmp_path)).pending()] == ["i-1", "i-2"]  # read back
    actions.complete("g", HOOK.name, "i-1", None, "CONTINUE", T0 + 3)
    [going] = actions.due(T0 + 3)
    actions.finish(going.instance_id, going.outcome, T0 + 4)
    assert [a["instance_id"] for a in load_pending(str(tmp_path))] == ["i-2"]
    assert actions.decrements("g") == 0
    [record] = outcomes(str(tmp_path))
    assert record == {"instance": "i-1", "group": "g", "region": "eu-central-1", "hooks": [HOOK.name],
                      "cause": "TerminateInstanceInAutoScalingGroup", "since": T0, "ended": T0 + 4,
                      "outcome": "completed (CONTINUE)"}
    assert json.loads((tmp_path / "lifecycle-actions.json").read_text())[0]["instance_id"] == "i-2"
