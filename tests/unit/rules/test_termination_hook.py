"""After the leave: complete the termination hook's lifecycle action, hold, or exit, as a table; heartbeats during a
long leave."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rules.termination_hook import (
    COMPLETE_ATTEMPTS,
    HEARTBEAT_INTERVAL,
    HookFacts,
    Step,
    after_leave,
    heartbeat_due,
    retry_while_holding,
)

HOOK = "etcd-appliance-leave"

CASES = [
    ("no hook: exit as before hooks", HookFacts(None), Step.EXIT, "LIFECYCLE_HOOK_NAME"),
    ("no hook, whatever was tried", HookFacts(None, completed=True, attempts=9), Step.EXIT, "exiting"),
    ("a hook, nothing done yet: complete", HookFacts(HOOK), Step.COMPLETE, f"completing the lifecycle action of "
                                                                            f"hook {HOOK}"),
    ("one failure: complete again", HookFacts(HOOK, attempts=1), Step.COMPLETE, "completing"),
    ("the last attempt left", HookFacts(HOOK, attempts=COMPLETE_ATTEMPTS - 1), Step.COMPLETE, "completing"),
    ("every attempt failed: the heartbeat timeout ends it", HookFacts(HOOK, attempts=COMPLETE_ATTEMPTS), Step.HOLD,
     "heartbeat timeout"),
    ("completed: hold until the machine goes", HookFacts(HOOK, completed=True), Step.HOLD, "completed"),
    ("completed after failures: hold", HookFacts(HOOK, completed=True, attempts=2), Step.HOLD, "completed"),
    ("on the way out after SIGTERM: one attempt", HookFacts(HOOK, max_attempts=1), Step.COMPLETE, "completing"),
    ("on the way out, it failed: no more", HookFacts(HOOK, attempts=1, max_attempts=1), Step.HOLD, "trying again"),
]


@pytest.mark.parametrize("facts, retry", [
    (HookFacts(HOOK), True), (HookFacts(HOOK, attempts=COMPLETE_ATTEMPTS), True),
    (HookFacts(HOOK, completed=True), False), (HookFacts(None), False), (HookFacts(None, attempts=5), False),
], ids=["pending", "after the attempts in a row", "completed", "no hook", "no hook, failures"])
def test_holding_retries_only_what_is_still_pending(facts, retry):
    assert retry_while_holding(facts) is retry


@pytest.mark.parametrize("facts, step, reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_after_the_leave(facts, step, reason):
    got, why = after_leave(facts)
    assert got is step
    assert reason in why


HEARTBEATS = [
    ("a short leave sends none", 5.0, None, False),
    ("the interval from the leave's start", HEARTBEAT_INTERVAL, None, True),
    ("just before it", HEARTBEAT_INTERVAL - 0.01, None, False),
    ("just after one", 60.0, 1.0, False),
    ("an interval after the last one", 60.0, HEARTBEAT_INTERVAL, True),
    ("long overdue", 600.0, 300.0, True),
]


@pytest.mark.parametrize("started, last, due", [c[1:] for c in HEARTBEATS], ids=[c[0] for c in HEARTBEATS])
def test_heartbeats_during_the_leave(started, last, due):
    assert heartbeat_due(started, last) is due


@given(st.one_of(st.none(), st.text(min_size=1, max_size=20)), st.booleans(), st.integers(0, 10), st.integers(1, 5))
def test_never_completes_twice_nor_without_a_hook(hook, completed, attempts, most):
    step, reason = after_leave(HookFacts(hook, completed, attempts, most))
    assert reason
    if step is Step.COMPLETE:
        assert hook is not None and not completed and attempts < most
    assert (step is Step.EXIT) == (hook is None)


@given(st.floats(0, 1e6), st.one_of(st.none(), st.floats(0, 1e6)))
def test_at_most_one_heartbeat_an_interval(started, last):
    if heartbeat_due(started, last):
        assert (started if last is None else last) >= HEARTBEAT_INTERVAL
