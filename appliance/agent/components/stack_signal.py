"""The CloudFormation signal: SUCCESS once this instance's member is a voter of a cluster with a leader.

The rule is :mod:`appliance.rules.stack_signal`'s. Sent once per instance: a marker file beside the data
directory (``<DATA_DIR>.signalled``, on the same volume) survives restarts of the agent, so that a restarted
agent on an old instance never answers for a new one during a rolling update.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

from appliance.adapters.aws import stack_signal
from appliance.adapters.aws.stack_signal import StackSignal
from appliance.agent.components.reasons import ReasonLog
from appliance.model.decisions import Action, Decision
from appliance.model.observation import Observation
from appliance.rules.stack_signal import SignalFacts, decide

log = logging.getLogger("agent")


def marker_path(data_dir: str) -> str:
    """``<DATA_DIR>.signalled``: present once this instance signalled CloudFormation."""
    return data_dir.rstrip("/") + ".signalled"


class CreationSignal:
    """One SUCCESS signal per instance.

    Args:
        signal: the SignalResource call, None without CFN_STACK_NAME and CFN_SIGNAL_RESOURCE. marker: the marker
        file's path. instance_id: the signal's unique id. metrics: the agent's (``cloudformation_signals``).
        clock: monotonic seconds.
    """

    def __init__(self, signal: StackSignal | None, marker: str, instance_id: str, metrics,
                 clock: Callable[[], float] = time.monotonic):
        self.signal = signal
        self.marker = marker
        self.instance_id = instance_id
        self.metrics = metrics
        self.clock = clock
        self.failures = 0
        self.first_failure: float | None = None
        self.last_failure: float | None = None
        self.reason = ReasonLog(log, "cloudformation signal")

    def _sent(self) -> bool:
        return os.path.exists(self.marker)

    def tick(self, s: Observation, decision: Decision) -> str:
        """Signal if the rule says so; returns the reason (logged when it changes)."""
        mine = s.cluster.by_id(s.local.member_id) if s.cluster is not None and s.local.member_id else None
        now = self.clock()
        facts = SignalFacts(configured=self.signal is not None, sent=self.signal is not None and self._sent(),
                            serving=decision.action is Action.SERVE, voter=mine is not None and not mine.is_learner,
                            leader_known=s.cluster is not None and s.cluster.leader_id is not None,
                            terminating=s.terminating, failures=self.failures,
                            since_first_failure=None if self.first_failure is None else now - self.first_failure,
                            since_last_failure=None if self.last_failure is None else now - self.last_failure)
        send, reason = decide(facts)
        if not send:
            self.reason.say(reason, loud=facts.configured)
            return reason
        try:
            took = self.signal.send(self.instance_id)
        except stack_signal.ERRORS as exc:
            self.metrics.cloudformation_signals.labels(outcome="failed").inc()
            self.failures += 1
            self.last_failure = self.clock()
            self.first_failure = self.first_failure if self.first_failure is not None else self.last_failure
            reason = f"SignalResource failed ({exc}); trying again later"
            log.warning("cloudformation signal: %s", reason)
            self.reason.clear()
            return reason
        self.metrics.cloudformation_signals.labels(outcome="sent" if took else "refused").inc()
        self._mark()
        reason = ("signalled SUCCESS to CloudFormation" if took else
                  "CloudFormation waits for no signal from this stack now (ValidationError): none sent again")
        self.reason.say(reason)
        return reason

    def _mark(self) -> None:
        try:
            with open(self.marker, "w") as f:
                f.write(self.instance_id + "\n")
        except OSError as exc:  # a marker that cannot be written costs a repeated signal, which CFN tolerates
            log.warning("could not write %s (%s): this instance may signal again after a restart", self.marker, exc)
