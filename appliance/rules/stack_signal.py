"""When the agent tells CloudFormation that its instance is ready (pure).

A CreationPolicy or an UpdatePolicy with WaitOnResourceSignals makes CloudFormation wait for one SUCCESS
signal per new instance (AWS CloudFormation user guide, "CreationPolicy attribute", "UpdatePolicy
attribute"). The appliance's meaning of ready is the one a rolling update needs before it may take out the
next instance: this instance's member votes in a cluster that has a leader. Once per instance (the signal's
unique id is the instance id), never while the instance is being taken out.
"""

from __future__ import annotations

import dataclasses

GIVE_UP_AFTER = 3600.0  # seconds of failed tries: longer than any CreationPolicy or rolling update waits here
FIRST_BACKOFF = 30.0    # seconds after the first failed try; doubled after each, up to MAX_BACKOFF
MAX_BACKOFF = 600.0


@dataclasses.dataclass(frozen=True)
class SignalFacts:
    """What the rule needs.

    Attributes:
        configured: CFN_STACK_NAME and CFN_SIGNAL_RESOURCE are set. sent: this instance signalled already (a
        marker beside the data directory says so, across restarts of the agent). serving: this cycle's decision
        is serve. voter: the member list names this instance's member as a voter. leader_known: the cluster
        reports a leader. terminating: the instance is being taken out. failures: SignalResource calls that failed
        (AWS refused or did not answer). since_first_failure, since_last_failure: seconds since those (None: none).
    """

    configured: bool
    sent: bool
    serving: bool
    voter: bool
    leader_known: bool
    terminating: bool = False
    failures: int = 0
    since_first_failure: float | None = None
    since_last_failure: float | None = None


def backoff(failures: int) -> float:
    """Seconds between the ``failures``-th failed try and the next: 30, 60, 120, … up to 600."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, failures - 1))


def decide(f: SignalFacts) -> tuple[bool, str]:
    """(send the SUCCESS signal now, why)."""
    if not f.configured:
        return False, "no CloudFormation signal is asked for (CFN_STACK_NAME, CFN_SIGNAL_RESOURCE)"
    if f.sent:
        return False, "this instance has signalled CloudFormation already"
    if f.terminating:
        return False, "the instance is being taken out: it is not ready"
    if not (f.serving and f.voter and f.leader_known):
        return False, "waiting until this member is a voter of a cluster with a leader"
    if f.failures and f.since_first_failure is not None and f.since_first_failure >= GIVE_UP_AFTER:
        return False, (f"gave up after {f.failures} failed SignalResource calls over {GIVE_UP_AFTER / 3600:.0f} h: "
                       "whatever waited for the signal has timed out (check the role and the route to CloudFormation)")
    if f.failures and f.since_last_failure is not None and f.since_last_failure < backoff(f.failures):
        return False, f"SignalResource failed {f.failures} times: next try {backoff(f.failures):.0f} s after the last"
    return True, "this member is a voter of a cluster with a leader: signalling SUCCESS to CloudFormation"
