"""The inbound mirror of a regional cluster (``MIRROR_PREFIX``): run it while this member leads a passive
cluster, from the other region's members as its read record names them (:mod:`appliance.rules.inbound_mirror`).

The other region's read record is read again after :data:`SOURCE_REFRESH` seconds while the
mirror runs (it follows replacements there), and after :data:`SOURCE_RETRY` while it waits for one;
the last answer stands while Route53 fails.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

import botocore.exceptions

from appliance.adapters.aws.route53 import HostedZone
from appliance.adapters.mirror_process import MirrorChild
from appliance.agent.components.reasons import ReasonLog
from appliance.model.errors import AwsPermissionError, ConfigError
from appliance.model.modes import Mode
from appliance.model.observation import Observation
from appliance.rules import inbound_mirror
from appliance.rules.inbound_mirror import Act

log = logging.getLogger("agent")

SOURCE_REFRESH, SOURCE_RETRY = 60.0, 5.0  # seconds between reads of the other region's read record


class InboundMirror:
    """At most one inbound mirror, as this agent's child process.

    Args:
        child: the mirror process. zone: the hosted zone of the read records. read_name: the shared
            read record's name. region: this instance's region. scheme: ``http`` or ``https``.
        clock: monotonic seconds.
    """

    def __init__(self, child: MirrorChild, zone: HostedZone, read_name: str, region: str, scheme: str,
                 clock: Callable[[], float] = time.monotonic):
        self.child, self.zone, self.read_name, self.region, self.scheme = child, zone, read_name, region, scheme
        self.clock = clock
        self.sources: dict[str, tuple[str, ...]] | None = None
        self.target_addresses: dict[str, str] = {}  # read record target -> IP (fixed for an instance's life)
        self.sources_read_at = -math.inf
        self.reason = ReasonLog(log, "inbound mirror")
        self.region_mirrored: str | None = None

    def tick(self, s: Observation, serving: bool) -> str:
        """Start, keep, restart or stop the mirror; returns the decision's reason. ``serving``: this cycle's
        decision for the instance is to serve."""
        running = self.child.running_source()
        mode = s.mode[0] if s.is_leader and s.mode is not None else None
        sources = self._sources(running is not None) if serving and mode is Mode.PASSIVE else None
        decision = inbound_mirror.decide(inbound_mirror.InboundFacts(s.is_leader, mode, sources, running,
                                                                     self.child.hold_off(), self.child.last_exit,
                                                                     serving))
        if decision.act in (Act.STOP, Act.RESTART):
            self.child.stop()
        if decision.act in (Act.START, Act.RESTART):
            self.child.start(decision.source)
        self.region_mirrored = decision.region if self.child.source is not None else None
        # While it does not serve, an agent says so only when it stops a mirror (every agent starts that way).
        self.reason.say(decision.reason, loud=serving or decision.act is Act.STOP)
        return decision.reason

    def stop(self) -> None:
        """Stop the mirror (it releases its lock)."""
        self.child.stop()

    def _sources(self, running: bool) -> dict[str, tuple[str, ...]] | None:
        """The other regions' client URLs from their read records (see the module's docstring)."""
        if self.clock() - self.sources_read_at < (SOURCE_REFRESH if running else SOURCE_RETRY):
            return self.sources
        self.sources_read_at = self.clock()
        try:
            sets = self.zone.latency_sets(self.read_name)
            targets = {value.split()[-1] for region, values in sets.items() if region != self.region
                       for value in values}
            # A target names an instance, whose address never changes: only new targets are looked up.
            known = {t: ip for t, ip in self.target_addresses.items() if t in targets}
            self.target_addresses = {**known, **self.zone.addresses(targets - set(known))}
            self.sources = inbound_mirror.source_urls(sets, self.target_addresses, self.region, self.scheme)
        except (AwsPermissionError, ConfigError, botocore.exceptions.BotoCoreError,
                botocore.exceptions.ClientError) as exc:
            log.warning("inbound mirror: the read records could not be read (%s)", exc)
        return self.sources
