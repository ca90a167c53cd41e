"""``etcd.py status``: one look at a cluster for operators: its members, their health, the mode.

It observes into one snapshot (the member list; each member's Maintenance Status and
``/health``; the mode record; each member's agent status endpoint, which says the
instance's region and the housekeeping and records decisions it last logged), then
renders that snapshot as a table or as JSON. Nothing is changed.

Exit codes: 0 every member is a healthy voting member or a learner catching up, and a
leader is known; 9 degraded (a member unhealthy or not answering, or no leader); 1 no
member answered at all; 2 bad input.
"""

from __future__ import annotations

import dataclasses
import json

import requests

from appliance.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from appliance.etcd import tls

EXIT_DEGRADED = 9
STATUS_PORT = 2378  # the agents' status endpoint (STATUS_PORT of the agents)


@dataclasses.dataclass(frozen=True)
class MemberStatus:
    """One member as ``status`` saw it. Sizes in bytes; ``revision`` and ``raft_index`` as etcd gave them
    (0 when the member did not answer); ``agent`` is its agent's ``/status`` JSON ({} if none answered)."""

    name: str
    member_id: str
    client_url: str
    learner: bool
    answered: bool
    healthy: bool
    leader: bool
    version: str = ""
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
    """The whole snapshot: cluster id (hex), the mode line, the members."""

    cluster_id: str
    mode: str
    members: tuple[MemberStatus, ...]


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
            status_port: int = STATUS_PORT, tls=None) -> ClusterStatus:
    """Look at the cluster through ``endpoints`` (``tls``: a :class:`~appliance.etcd.tls.TlsFiles` for
    ``https`` endpoints; the agents' status endpoints are then HTTPS too, verified with its CA).

    Raises:
        EtcdUnavailable: no endpoint answered the member list. EtcdError: etcd refused it.
    """
    from appliance.cluster import access
    from appliance.etcd.client import EtcdClient, EtcdError, EtcdUnavailable

    client = EtcdClient(list(endpoints), timeout=timeout, credentials=credentials, tls=tls)
    listed = client.member_list()
    try:
        mode, revision = access.read_mode(client)
        mode_line = f"{mode.value} since revision {revision}"
    except (EtcdError, EtcdUnavailable) as exc:
        mode_line = f"unknown ({exc})"
    members = []
    for m in listed.members:
        url = m.client_urls[0] if m.client_urls else ""
        seen = dict(name=m.name, member_id=m.hex_id, client_url=url, learner=m.is_learner,
                    agent=_agent_status(url, status_port, timeout, tls.ca_file if tls else None))
        try:
            status = client.status(url)
        except (EtcdError, EtcdUnavailable, ValueError):
            members.append(MemberStatus(**seen, answered=False, healthy=False, leader=False))
            continue
        members.append(MemberStatus(**seen, answered=True, healthy=client.healthy(url),
                                    leader=status.leader_id == m.id, version=status.version,
                                    revision=status.revision, raft_index=status.raft_index, db_size=status.db_size,
                                    errors=status.errors))
    return ClusterStatus(format(listed.cluster_id, "x"), mode_line, tuple(members))


def _agent_status(client_url: str, port: int, timeout: float, ca_file: str | None = None) -> dict:
    """The agent's ``/status`` on the member's host (HTTPS verified with ``ca_file`` where the member's
    URL is ``https``), or {} when no agent answers there."""
    scheme, _, rest = client_url.partition("://")
    host = rest.rsplit(":", 1)[0]
    if not host:
        return {}
    try:
        answer = requests.get(f"{scheme}://{host}:{port}/status", timeout=timeout,
                              verify=ca_file if ca_file else True)
        return answer.json() if answer.status_code == 200 else {}
    except (requests.RequestException, ValueError):
        return {}


def render(view: ClusterStatus) -> str:
    """The snapshot as a table, then the cluster's lines and the leader agent's decisions."""
    rows = [("NAME", "REGION", "ROLE", "CLIENT URL", "REVISION", "DB SIZE", "HEALTH", "VERSION")]
    for m in view.members:
        health = "healthy" if m.answered and m.healthy else "unhealthy" if m.answered else "no answer"
        rows.append((m.name or f"({m.member_id}, not started)", m.agent.get("region", "-"), m.role, m.client_url,
                     str(m.revision or "-"), _size(m.db_size) if m.answered else "-", health, m.version or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += ["", f"cluster {view.cluster_id}: {verdict(view)[1]}", f"mode: {view.mode}"]
    leader = next((m for m in view.members if m.leader), None)
    if leader is not None and leader.agent:
        lines.append(f"housekeeping ({leader.name}): {leader.agent.get('housekeeping') or '-'}")
        lines.append(f"records ({leader.name}): {leader.agent.get('records') or '-'}")
    return "\n".join(lines)


def to_json(view: ClusterStatus) -> str:
    code, line = verdict(view)
    members = [{**dataclasses.asdict(m), "role": m.role} for m in view.members]
    return json.dumps({"cluster_id": view.cluster_id, "mode": view.mode, "verdict": line, "exit_code": code,
                       "members": members}, indent=1)


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
    p = sub.add_parser("status", help="members, health, leader, revision, DB size, mode and the leader's decisions")
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
