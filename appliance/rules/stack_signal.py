"""When the agent tells CloudFormation that its instance is ready (pure).

A CreationPolicy or an UpdatePolicy with WaitOnResourceSignals makes CloudFormation wait for one SUCCESS
signal per new instance (AWS CloudFormation user guide, "CreationPolicy attribute", "UpdatePolicy
attribute"). The appliance's meaning of ready is the one a rolling update needs before it may take out the
next instance: this instance's member votes in a cluster that has a leader. Once per instance (the signal's
unique id is the instance id), never while the instance is being taken out.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SignalFacts:
    """What the rule needs.

    Attributes:
        configured: CFN_STACK_NAME and CFN_SIGNAL_RESOURCE are set. sent: this instance signalled already (a
        marker beside the data directory says so, across restarts of the agent). serving: this cycle's decision
        is serve. voter: the member list names this instance's member as a voter. leader_known: the cluster
        reports a leader. terminating: the instance is being taken out.
    """

    configured: bool
    sent: bool
    serving: bool
    voter: bool
    leader_known: bool
    terminating: bool = False


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
    return True, "this member is a voter of a cluster with a leader: signalling SUCCESS to CloudFormation"
