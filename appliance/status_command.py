"""``etcd.py status``: one look at a cluster for operators: its members, their health, the mode.

It observes into one snapshot (the member list; each member's Maintenance Status and
``/health``; the mode record; each member's agent status endpoint, which says the
instance, its region, the records decision it last logged and, on a leader, its last
housekeeping decisions), then renders that snapshot as a table or as JSON. Nothing is
changed. Agents that do not answer (a firewall in front of their port, say) are named
in one line; the rest is shown without them.

Exit codes: 0 every member is a healthy voting member or a learner catching up, and a
leader is known; 9 degraded (a member unhealthy or not answering, or no leader); 1 no
member answered at all; 2 bad input.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json

from appliance.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from appliance.etcd import tls
from appliance.status_server import read_status

EXIT_DEGRADED = 9
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
        return EXIT_DEGRADED, "degraded: " + "; ".join(problems)
    voters = sum(1 for m in view.members if not m.learner)
    return EXIT_OK, f"healthy: {voters} voting members" + (
        f", {len(view.members) - voters} learner" if voters < len(view.members) else "")


def observe(endpoints: tuple[str, ...], credentials=None, timeout: float = 3.0,
            status_port: int = STATUS_PORT, files=None) -> ClusterStatus:
    """Look at the cluster through ``endpoints`` (``files``: a :class:`~appliance.etcd.tls.TlsFiles` for
    ``https`` endpoints; the agents' status endpoints are then HTTPS too, verified with its CA).

    Raises:
        EtcdUnavailable: no endpoint answered the member list. EtcdError: etcd refused it.
    """
    from appliance.cluster import access
    from appliance.etcd.client import EtcdClient, EtcdError, EtcdUnavailable

    client = EtcdClient(list(endpoints), timeout=timeout, credentials=credentials, tls=files)
    listed = client.member_list()
    try:
        mode, revision = access.read_mode(client)
        mode_line = f"{mode.value} since revision {revision}"
    except (EtcdError, EtcdUnavailable) as exc:
        mode_line = f"unknown ({exc})"
    urls = [m.client_urls[0] if m.client_urls else "" for m in listed.members]
    # Side by side: where a firewall drops the status port, each agent costs a whole timeout.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        agents = list(pool.map(lambda url: _agent_status(url, status_port, timeout, files.ca_file if files else None),
                               urls))
    members = []
    for m, url, agent in zip(listed.members, urls, agents, strict=True):
        seen = dict(name=m.name, member_id=m.hex_id, client_url=url, learner=m.is_learner, agent=agent)
        try:
            status = client.status(url)
        except (EtcdError, EtcdUnavailable, ValueError):
            members.append(MemberStatus(**seen, answered=False, healthy=False, leader=False))
            continue
        members.append(MemberStatus(**seen, answered=True, healthy=client.healthy(url),
                                    leader=status.leader_id == m.id, version=status.version,
                                    leader_seen=format(status.leader_id, "x") if status.leader_id else "",
                                    revision=status.revision, raft_index=status.raft_index, db_size=status.db_size,
                                    errors=status.errors))
    return ClusterStatus(format(listed.cluster_id, "x"), mode_line, tuple(members), status_port)


def _agent_status(client_url: str, port: int, timeout: float, ca_file: str | None = None) -> dict:
    """The agent's ``/status`` on the member's host (HTTPS verified with ``ca_file`` where the member's
    URL is ``https``), or {} when no agent answers there."""
    host = client_url.split("://", 1)[-1].rsplit(":", 1)[0]
    return (read_status(host, port, timeout, ca_file) or {}) if host else {}


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


def render(view: ClusterStatus) -> str:
    """The snapshot as a table, then the cluster's lines, the agents that did not answer, the leader agent's
    current housekeeping and records decisions, and the last housekeeping decisions of every agent."""
    names = {m.member_id: m.name or m.member_id for m in view.members}
    rows = [("NAME", "INSTANCE", "REGION", "ROLE", "LEADER", "CLIENT URL", "REVISION", "DB SIZE", "HEALTH",
             "VERSION")]
    for m in view.members:
        health = "healthy" if m.answered and m.healthy else "unhealthy" if m.answered else "no answer"
        rows.append((m.name or f"({m.member_id}, not started)", m.agent.get("instance_id") or "-",
                     m.agent.get("region") or "-", m.role, names.get(m.leader_seen, m.leader_seen) or "-",
                     m.client_url, str(m.revision or "-"), _size(m.db_size) if m.answered else "-", health,
                     m.version or "-"))
    lines = _table(rows)
    lines += ["", f"cluster {view.cluster_id}: {verdict(view)[1]}", f"mode: {view.mode}"]
    silent = agents_not_answering(view)
    if silent:
        lines.append(f"agents: no status endpoint answered on port {view.status_port} for {', '.join(silent)}: "
                     "their instance, region and decisions are not shown")
    leader = next((m for m in view.members if m.leader), None)
    if leader is not None and leader.agent:
        lines.append(f"housekeeping ({leader.name}): {leader.agent.get('housekeeping') or '-'}")
        lines.append(f"records ({leader.name}): {leader.agent.get('records') or '-'}")
    decisions = housekeeping_decisions(view)
    if decisions:
        lines += ["", f"housekeeping decisions (the newest {len(decisions)}, oldest first):"]
        lines += _table([("TIME", "BY", "ACTION", "MEMBER", "REASON")] + [
            (_utc(d["time"]), str(d["by"]), str(d.get("action") or "-"),
             f"{d['member']} ({d.get('instance') or 'never started'})" if d.get("member") else "-",
             str(d.get("reason") or "")) for d in decisions])
    return "\n".join(lines)


def to_json(view: ClusterStatus) -> str:
    """The snapshot as JSON: the table's members (each with its agent's ``/status``), the verdict, the
    members whose agents did not answer, and the housekeeping decisions (see :func:`housekeeping_decisions`)."""
    code, line = verdict(view)
    members = [{**dataclasses.asdict(m), "role": m.role} for m in view.members]
    return json.dumps({"cluster_id": view.cluster_id, "mode": view.mode, "verdict": line, "exit_code": code,
                       "members": members, "agents_not_answering": agents_not_answering(view),
                       "housekeeping_decisions": housekeeping_decisions(view)}, indent=1)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n: float) -> str:
    """Bytes as B, KiB, MiB or GiB (one decimal above bytes)."""
    unit = "B"
    for larger in ("KiB", "MiB", "GiB"):
        if n < 1024:
            break
        n, unit = n / 1024, larger
    return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"


def add_parser(sub) -> None:
    """Add ``status`` to the top-level subparsers."""
    p = sub.add_parser("status", help="members, health, leader, revision, DB size, mode and the last housekeeping "
                       "decisions")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoints", help="client URLs of the cluster, comma-separated")
    where.add_argument("--sim", action="store_true", help="the simulator's cluster (see --state-dir)")
    p.add_argument("--state-dir", default=".sim", help="with --sim: the simulator's state directory")
    p.add_argument("--region", help="with --sim: only this region's instances (a mirrored simulator runs a "
                   "cluster per region; default there: its first region)")
    p.add_argument("--credentials", help="credentials file (see cluster-mode), where authentication is on")
    p.add_argument("--user", default="client", help="the user in --credentials (default client)")
    p.add_argument("--status-port", type=int, default=STATUS_PORT, help="the agents' status port (default 2378)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per request (default 3)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    tls.add_flags(p)
    p.set_defaults(handler=cmd_status)


def cmd_status(args) -> int:
    """0 healthy, 9 degraded, 1 no member answered, 2 bad input (see the module's docstring)."""
    from appliance.cluster.access import credentials_for
    from appliance.etcd.client import EtcdError, EtcdUnavailable
    from appliance.replication.commands import _urls

    if args.sim:
        from appliance.sim import state
        current = state.load(args.state_dir) or {}
        region = args.region or (current.get("region") if current.get("mode") == "mirrored" else None)
        urls = tuple(state.client_url(current, i["private_ip"]) for i in current.get("instances", {}).values()
                     if i.get("private_ip") and region in (None, i.get("region")))
        if not urls:
            raise ConfigError(f"--sim: no running simulator with instances in {args.state_dir}")
        files = tls.from_flags(args) or state.tls_files(current)
    else:
        urls = _urls(args.endpoints, "--endpoints")
        files = tls.from_flags(args)
    if args.timeout <= 0:
        raise ConfigError("--timeout must be a positive number of seconds")
    credentials = credentials_for(args.credentials, args.user) if args.credentials else None
    try:
        view = observe(urls, credentials, args.timeout, args.status_port, files)
    except (EtcdError, EtcdUnavailable) as exc:
        print(f"etcd.py: error: no member answered the member list: {exc}")
        return EXIT_FAILURE
    print(to_json(view) if args.json else render(view))
    return verdict(view)[0]
