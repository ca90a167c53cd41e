"""The CloudFormation signal, as a table: once per instance, when its member votes in a cluster with a leader."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rules.stack_signal import GIVE_UP_AFTER, MAX_BACKOFF, SignalFacts, backoff, decide

READY = dict(configured=True, sent=False, serving=True, voter=True, leader_known=True, terminating=False)


def facts(**kw):
    return SignalFacts(**{**READY, **kw})


CASES = [
    ("a voter of a cluster with a leader: signal", facts(), True, "signalling SUCCESS"),
    ("not asked for", facts(configured=False), False, "CFN_STACK_NAME"),
    ("signalled already", facts(sent=True), False, "already"),
    ("a learner still catching up", facts(voter=False), False, "waiting until this member is a voter"),
    ("no leader (an election)", facts(leader_known=False), False, "with a leader"),
    ("not serving (joining, waiting)", facts(serving=False), False, "waiting"),
    ("being taken out", facts(terminating=True), False, "taken out"),
    ("being taken out, signalled already", facts(terminating=True, sent=True), False, "already"),
    ("one failure, 10 s ago: wait", facts(failures=1, since_first_failure=10.0, since_last_failure=10.0), False,
     "next try 30 s after the last"),
    ("one failure, 30 s ago: try again", facts(failures=1, since_first_failure=30.0, since_last_failure=30.0), True,
     "signalling"),
    ("four failures: 240 s apart", facts(failures=4, since_first_failure=500.0, since_last_failure=239.0), False,
     "next try 240 s"),
    ("many failures: at most 10 minutes apart", facts(failures=30, since_first_failure=3000.0,
                                                      since_last_failure=600.0), True, "signalling"),
    ("an hour of failures: give up", facts(failures=9, since_first_failure=GIVE_UP_AFTER, since_last_failure=900.0),
     False, "gave up after 9 failed SignalResource calls"),
]


@pytest.mark.parametrize("f, send, reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_when_to_signal(f, send, reason):
    got, why = decide(f)
    assert got is send
    assert reason in why


@given(st.builds(SignalFacts, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
                 st.booleans()))
def test_only_a_ready_instance_signals_and_only_once(f):
    send, reason = decide(f)
    assert reason
    assert send == (f.configured and not f.sent and not f.terminating and f.serving and f.voter and f.leader_known)


@given(st.integers(1, 100), st.floats(0, 10 * GIVE_UP_AFTER), st.floats(0, 10 * GIVE_UP_AFTER))
def test_failed_tries_back_off_and_end(failures, since_first, since_last):
    send, _ = decide(facts(failures=failures, since_first_failure=since_first, since_last_failure=since_last))
    if send:
        assert since_last >= backoff(failures) and since_first < GIVE_UP_AFTER
    assert backoff(failures) <= MAX_BACKOFF
