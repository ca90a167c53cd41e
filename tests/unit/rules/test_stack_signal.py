"""The CloudFormation signal, as a table: once per instance, when its member votes in a cluster with a leader."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rules.stack_signal import SignalFacts, decide

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
