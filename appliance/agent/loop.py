"""The instance agent's loop: observe (reads only) → decide (a pure rule) → act → components, and log why.

One cycle (docs/design.md, "The control loop"):

1. observe: :class:`~appliance.agent.observer.Observer` gathers an immutable
   :class:`~appliance.model.observation.Observation`;
2. decide: :func:`appliance.rules.lifecycle.decide` chooses this instance's one action and says why;
3. act: :class:`~appliance.agent.actuator.Actuator` carries it out;
4. components: while the member serves, each concern keeps its part (on the leader: housekeeping,
   snapshots, records, peer access, maintenance, the CloudWatch data point; on every member: the token
   check, the inbound mirror and the CloudFormation signal). An instance being taken out leaves the
   cluster, then answers its termination lifecycle hook and stays idle until the machine goes.
   Each logs its reason when it changes, and the status endpoint shows the leader's (housekeeping,
   records, peer access, snapshots, inbound mirror); a failure in one is logged with its traceback
   and does not keep the others from their work.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from typing import Callable, TypeVar

from appliance.adapters import logs
from appliance.adapters.status_endpoint import StatusServer
from appliance.agent.actuator import Actuator
from appliance.agent.components.backups import Backups
from appliance.agent.components.heartbeat import Heartbeat
from appliance.agent.components.housekeeping import Housekeeping
from appliance.agent.components.inbound_mirror import InboundMirror
from appliance.agent.components.leader_metric import HealthyLeaderMetric
from appliance.agent.components.listing import BUSY_LISTING_INTERVAL, ListingCadence
from appliance.agent.components.maintenance import ClusterMaintenance
from appliance.agent.components.peer_access import PeerAccess
from appliance.agent.components.reasons import ReasonLog
from appliance.agent.components.records import Records
from appliance.agent.components.stack_signal import CreationSignal
from appliance.agent.components.termination_hook import TerminationHook
from appliance.agent.components.tokens import TokenCheck
from appliance.agent.observer import Observer
from appliance.agent.status import StatusDocument
from appliance.model.decisions import Action, Decision
from appliance.model.exit_codes import ExitCode
from appliance.model.observation import Observation
from appliance.rules import lifecycle
from appliance.rules.termination_hook import Step

log = logging.getLogger("agent")

BOOTSTRAP_INTERVAL = 1.0  # seconds between cycles until the member serves
FAILED = object()  # what _guarded gives for a component that raised this cycle
T = TypeVar("T")


@dataclasses.dataclass
class Components:
    """The agent's concerns; the optional ones are None where their setting is off."""

    cadence: ListingCadence
    housekeeping: Housekeeping
    tokens: TokenCheck
    heartbeat: Heartbeat | None = None
    backups: Backups | None = None          # SNAPSHOT_BUCKET
    records: Records | None = None          # HOSTED_ZONE
    peer_access: PeerAccess | None = None   # ACTIVE_REGIONS
    inbound: InboundMirror | None = None    # MIRROR_PREFIX
    maintenance: ClusterMaintenance | None = None  # compaction, defragmentation, NOSPACE, corruption
    termination: TerminationHook = dataclasses.field(
        default_factory=lambda: TerminationHook(None, None, None))  # LIFECYCLE_HOOK_NAME
    signal: CreationSignal | None = None               # CFN_STACK_NAME, CFN_SIGNAL_RESOURCE
    leader_metric: HealthyLeaderMetric | None = None   # CLOUDWATCH_NAMESPACE


class Agent:
    """Runs one instance's member of the cluster until SIGTERM or the instance's termination.

    Args:
        observer, actuator: the loop's first and third steps. status: the status document.
        components: the concerns kept while the member serves. instance_id: this instance.
        loop_interval: seconds between cycles once the member serves (LOOP_INTERVAL).
    """

    def __init__(self, observer: Observer, actuator: Actuator, status: StatusDocument, components: Components,
                 instance_id: str, loop_interval: float):
        self.observer, self.actuator, self.status, self.c = observer, actuator, status, components
        self.me = instance_id
        self.loop_interval = loop_interval
        self.stop_requested = threading.Event()
        self.reason = ReasonLog(log)

    def run(self, status_server: StatusServer | None = None) -> int:
        """Cycle until stopped; returns the process exit code (0 after a clean stop or leave)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_requested.set())
        if self.c.heartbeat is not None:
            self.c.heartbeat.start()
        try:
            while not self.stop_requested.is_set():
                try:
                    pause = self.cycle()
                except Exception:  # noqa: BLE001 - a bug in one cycle must not take etcd down with the agent
                    logs.unexpected(log, "agent cycle failed; etcd keeps running, next cycle in %.0f s",
                                    self.loop_interval)
                    pause = self.loop_interval
                if pause is None:  # left the cluster
                    if self.c.termination.after_leave() is Step.HOLD:
                        # Docker's restart policy would start an agent that exited again, on a machine going away.
                        self.c.termination.hold(self.stop_requested)
                        log.info("SIGTERM after leaving the cluster: exiting")
                    return ExitCode.OK
                self.stop_requested.wait(pause)
            return self.shutdown()
        finally:
            if self.c.heartbeat is not None:
                self.c.heartbeat.stop()
            if self.c.inbound is not None:
                self.c.inbound.stop()
            if status_server is not None:
                status_server.close()

    def cycle(self) -> float | None:
        """One cycle; returns the seconds to wait before the next, None once the agent left the cluster."""
        s = self.observer.observe()
        decision = lifecycle.decide(s)
        self.reason.say(f"{decision.action.value}: {decision.reason}")
        self.status.decided(decision, s)
        if decision.action is Action.LEAVE:
            self.c.housekeeping.step_down()
            if self.c.inbound is not None:
                self.c.inbound.stop()  # its lock is released now, not at its TTL: the next leader mirrors sooner
            with self.c.termination.heartbeats():
                if self.actuator.act(decision, s):
                    return None
        elif self.actuator.act(decision, s):
            return None
        self.keep(s, decision)
        return self.interval(decision, s)

    def keep(self, s: Observation, decision: Decision) -> None:
        """The components' part of the cycle, after the decision was acted on."""
        c = self.c
        serving = decision.action is Action.SERVE
        if serving and s.is_leader:
            outcome = _guarded("housekeeping", c.housekeeping.tick, s)
            done = [outcome]
            if c.backups is not None and outcome is not FAILED and outcome.lease_holder == self.me:
                done.append(_guarded("snapshots", c.backups.tick, s, outcome.decision.snapshot_first))
            # After a removal too: records and rules follow the members from this same look.
            if c.records is not None:
                done.append(_guarded("records", c.records.tick, s))
            if c.peer_access is not None:
                done.append(_guarded("peer access", c.peer_access.tick, s))
            if c.maintenance is not None:
                lease = outcome is not FAILED and outcome.lease_holder == self.me
                done.append(_guarded("maintenance", c.maintenance.tick, s, lease))
            if FAILED not in done:  # a success only when every part of the leader's work did its part
                c.housekeeping.completed(outcome)
            c.cadence.calm = c.housekeeping.calm and not (c.maintenance is not None and c.maintenance.busy)
        elif serving:
            c.housekeeping.step_down()
        if not s.is_leader and c.backups is not None:
            c.backups.lost_leadership()
        if serving:
            _guarded("token check", c.tokens.tick)
            if c.maintenance is not None:
                fields = _guarded("space report", c.maintenance.report, s)
                if fields is not FAILED:
                    self.status.update(**fields)
        if c.inbound is not None:
            _guarded("inbound mirror", c.inbound.tick, s, serving)
        if c.signal is not None:
            _guarded("cloudformation signal", c.signal.tick, s, decision)
        if c.leader_metric is not None:
            _guarded("cloudwatch data point", c.leader_metric.tick, s, decision)
        self.status.update(
            housekeeping=c.housekeeping.reason.last, housekeeping_decisions=list(c.housekeeping.history),
            records=c.records.reason.last if c.records is not None else "",
            peer_access=c.peer_access.reason.last if c.peer_access is not None else "",
            snapshots=c.backups.status(s.is_leader) if c.backups is not None else None)
        if c.inbound is not None:
            self.status.update(inbound_mirror=c.inbound.reason.last, mirroring_from=c.inbound.region_mirrored)

    def interval(self, decision: Decision, s: Observation) -> float:
        """Seconds to the next cycle: short while bootstrapping, and while the leader sees changes."""
        if decision.action is not Action.SERVE:
            return BOOTSTRAP_INTERVAL
        if s.is_leader and not self.c.cadence.calm:
            return min(self.loop_interval, BUSY_LISTING_INTERVAL)
        return self.loop_interval

    def shutdown(self) -> int:
        """SIGTERM: leave the cluster if the instance is being terminated, else just stop etcd
        (the inbound mirror first, so that it releases its lock)."""
        if self.c.inbound is not None:
            self.c.inbound.stop()
        if self.observer.terminated_by_metadata():
            log.info("SIGTERM and the instance's target lifecycle state is Terminated: leaving the cluster")
            self.c.housekeeping.step_down()
            with self.c.termination.heartbeats():
                self.actuator.leave(self.observer.observe())
            # One attempt: Docker's stop timeout is running, and with the hook in place a SIGTERM of the machine
            # comes after the action ended anyway; the process ends whatever it says.
            self.c.termination.after_leave(max_attempts=1)
        else:
            log.info("SIGTERM: stopping etcd; this member stays in the cluster")
            self.actuator.etcd.stop()
        return ExitCode.OK


def _guarded(name: str, tick: Callable[..., T], *args) -> T | object:
    """Run one component's part; a bug in it is logged with its traceback and gives :data:`FAILED`, so that
    the other components still do theirs this cycle."""
    try:
        return tick(*args)
    except Exception:  # noqa: BLE001 - see the docstring
        logs.unexpected(log, "%s failed this cycle; the other components go on", name)
        return FAILED
