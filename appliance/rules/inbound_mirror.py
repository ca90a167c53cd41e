"""The inbound mirror of a regional cluster (``MIRROR_PREFIX``): whether this agent runs it, and from where.

Regional clusters of one service (``DNS_SERVICE_NAME``) are linked by the mirror:
the cluster whose mode record says passive copies the prefix from the other one.
Its leader's agent runs ``etcd.py mirror`` as a child process, with the mirror lock
(:mod:`appliance.replication.mirror_lock`) so that exactly one mirror writes even while leadership
moves; the lock passes to the new leader's mirror once the old one stopped or its
lease expired.

Why only the passive side: two active clusters mirroring each other would copy
each other's copies forever. Around a switchover both are passive for a moment;
then the new passive side's mirror starts with no position and a passive source,
and the mirror itself pauses before copying anything, until the switchover has
stored the position it resumes from (see :mod:`appliance.replication.switchover`).

The source is the other region's read record (``_etcd-client._tcp.<S>.<zone>``,
the latency record whose SetIdentifier is that region), resolved through Route53
(SRV targets, then their A records). The write record is no source: during a
switchover it still names the old cluster when the old cluster needs the new one.

:func:`decide` is pure and unit-tested as a table.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Mapping

from appliance.model.modes import Mode


class Act(str, enum.Enum):
    START = "start"      # start the mirror from ``source``
    RESTART = "restart"  # the source's members changed: stop, then start from ``source``
    STOP = "stop"        # stop the running mirror (it releases its lock)
    KEEP = "keep"        # the running mirror stays as it is
    IDLE = "idle"        # no mirror, and none is wanted


@dataclasses.dataclass(frozen=True)
class InboundFacts:
    """What the agent knows this cycle.

    ``mode``: this cluster's mode, None if it could not be read. ``sources``: the other
    regions' client URLs from their read records (region -> URLs, possibly empty), None if
    Route53 could not be read. ``running``: the running mirror's source URLs, None when no
    mirror runs. ``hold_off``: seconds before a mirror that exited may start again.
    ``last_exit``: how the last mirror ended ("" if none did). ``serving``: this cycle's decision
    for the instance is to serve (not to restart, rejoin or recover).
    """

    leader: bool
    mode: Mode | None
    sources: Mapping[str, tuple[str, ...]] | None
    running: tuple[str, ...] | None
    hold_off: float = 0.0
    last_exit: str = ""
    serving: bool = True


@dataclasses.dataclass(frozen=True)
class InboundDecision:
    act: Act
    reason: str
    source: tuple[str, ...] = ()
    region: str = ""


def decide(s: InboundFacts) -> InboundDecision:
    """Start, keep, restart or stop the inbound mirror; the reason is logged when it changes.

    What cannot be known (mode, records) never stops a running mirror: its lock fences it.
    """
    running = s.running is not None
    if not s.serving:  # etcd here is restarting, rejoining or recovering: this member leads nothing
        return InboundDecision(Act.STOP if running else Act.IDLE, "this member does not serve: "
                               + ("stopping the mirror" if running else "no mirror"))
    if not s.leader:
        return InboundDecision(Act.STOP if running else Act.IDLE,
                               "not the leader: the leader's agent runs the inbound mirror")
    if s.mode is None:
        return InboundDecision(Act.KEEP if running else Act.IDLE, "this cluster's mode is unknown: "
                               + ("the mirror keeps running" if running else "no mirror started"))
    if s.mode is Mode.ACTIVE:
        return InboundDecision(Act.STOP if running else Act.IDLE,
                               "this cluster is active (clients write here): nothing to mirror in")
    if s.sources is None:
        return InboundDecision(Act.KEEP if running else Act.IDLE, "the other regions' read records are unknown: "
                               + ("the mirror keeps its source" if running else "no mirror started"))
    found = {region: urls for region, urls in s.sources.items() if urls}
    if len(found) != 1:
        what = (f"several regions publish read records ({', '.join(sorted(found))}), the mirror needs exactly one"
                if found else "no other region publishes a read record with members")
        return InboundDecision(Act.KEEP if running else Act.IDLE,
                               what + (": the mirror keeps its source" if running else ": no mirror started"))
    region, urls = next(iter(found.items()))
    if running and set(s.running) == set(urls):
        return InboundDecision(Act.KEEP, f"passive: mirroring from {region} ({', '.join(urls)})", urls, region)
    if running:
        return InboundDecision(Act.RESTART, f"passive: {region}'s members changed, mirroring from "
                               f"{', '.join(urls)} (resumes at the stored position)", urls, region)
    if s.hold_off > 0:
        return InboundDecision(Act.IDLE, f"passive: the mirror {s.last_exit}; starting it again in "
                               f"{s.hold_off:.0f} s", urls, region)
    return InboundDecision(Act.START, f"passive: mirroring from {region} ({', '.join(urls)})", urls, region)


def source_urls(latency_sets: Mapping[str, tuple[str, ...]], addresses: Mapping[str, str], own_region: str,
                scheme: str = "http") -> dict[str, tuple[str, ...]]:
    """The other regions' client URLs from their read records (pure).

    Args:
        latency_sets: region -> the SRV values of that region's read record ("priority weight port target").
        addresses: target host name (fqdn) -> IPv4 address, from the targets' A records.
        own_region: left out.

    Returns:
        region -> sorted client URLs; a target without an A record is left out.
    """
    found = {}
    for region, values in latency_sets.items():
        if region == own_region:
            continue
        urls = set()
        for value in values:
            parts = value.split()
            if len(parts) == 4 and parts[3] in addresses:
                urls.add(f"{scheme}://{addresses[parts[3]]}:{parts[2]}")
        found[region] = tuple(sorted(urls))
    return found
