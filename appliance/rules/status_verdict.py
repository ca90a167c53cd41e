"""``etcd.py status``'s verdict on what it saw (pure): healthy, or degraded and why.

The status command observes into a :class:`ClusterStatus` (every member's Maintenance Status,
``/health`` and agent status), and these functions judge and summarise it, so that the rules are
tested as tables.
"""

from __future__ import annotations

import dataclasses

from appliance.model.exit_codes import ExitCode

STATUS_PORT = 2378  # the agents' status endpoint (STATUS_PORT of the agents)
DECISIONS_SHOWN = 10  # the newest housekeeping decisions shown, from every agent that answered


@dataclasses.dataclass(frozen=True)
class MemberStatus:
    """One member as ``status`` saw it. Sizes in bytes; ``revision`` and ``raft_index`` as etcd gave them
    (0 when the member did not answer); ``leader_seen``: the hex id of the member it reports as the
    leader ("" if none or no answer); ``agent`` is its agent's ``/status`` JSON ({} if none answered)."""

    name: str
    member_id: str
    client_url: str
    learner: bool
    answered: bool
    healthy: bool
    leader: bool
    version: str = ""
    leader_seen: str = ""
    revision: int = 0
    raft_index: int = 0
    db_size: int = 0
    errors: tuple[str, ...] = ()
    agent: dict = dataclasses.field(default_factory=dict)
    db_size_in_use: int | None = None

    @property
    def role(self) -> str:
        return "learner" if self.learner else "leader" if self.leader else "follower"


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    """The whole snapshot: cluster id (hex), the mode line, the members, and the agents' status port asked."""

    cluster_id: str
    mode: str
    members: tuple[MemberStatus, ...]
    status_port: int = STATUS_PORT


def verdict(view: ClusterStatus) -> tuple[int, str]:
    """(exit code, one line) for ``view``: pure, so the rules are tested as a table."""
    problems = [f"{m.name or m.member_id} {'does not answer' if not m.answered else 'is unhealthy'}"
                for m in view.members if not m.learner and not (m.answered and m.healthy)]
    problems += [f"{m.name or m.member_id} reports {', '.join(m.errors)}" for m in view.members if m.errors]
    if not any(m.leader for m in view.members):
        problems.append("no member is the leader")
    if problems:
        return ExitCode.STATUS_DEGRADED, "degraded: " + "; ".join(problems)
    voters = sum(1 for m in view.members if not m.learner)
    return ExitCode.OK, f"healthy: {voters} voting members" + (
        f", {len(view.members) - voters} learner" if voters < len(view.members) else "")


def housekeeping_decisions(view: ClusterStatus, count: int = DECISIONS_SHOWN) -> list[dict]:
    """The newest ``count`` housekeeping decisions the agents that answered published, oldest first.

    Each is the agent's entry (``time`` in epoch seconds, ``action``, ``reason``, ``member`` hex id and
    ``instance``, or None) with ``by``: the instance whose agent decided. Leadership moves, so every
    agent's entries count, not only the current leader's; malformed entries are left out.
    """
    found = []
    for m in view.members:
        entries = m.agent.get("housekeeping_decisions")
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("time"), (int, float)):
                found.append({**entry, "by": m.agent.get("instance_id") or m.name})
    found.sort(key=lambda entry: entry["time"])
    return found[-count:]


def agents_not_answering(view: ClusterStatus) -> list[str]:
    """The members (names, else hex ids) whose agent's status endpoint did not answer."""
    return [m.name or m.member_id for m in view.members if not m.agent]
