"""``etcd.py status``: one look at a cluster for operators: its members, their health, the mode.

It observes into one snapshot (the member list; each member's Maintenance Status and
``/health``; the mode record; each member's agent status endpoint, which says the
instance, its region, the records decision it last logged and, on a leader, its last
housekeeping decisions), then renders that snapshot as a table or as JSON. Nothing is
changed. Agents that do not answer (a firewall in front of their port, say) are named
in one line; the rest is shown without them.

Exit codes: 0 every member is a healthy voting member or a learner catching up, and a
leader is known; 9 degraded (a member unhealthy or not answering, or no leader); 1 no
member answered at all; 2 bad input. The verdict is :mod:`appliance.rules.status_verdict`'s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import json

from appliance.adapters.etcd import answers
from appliance.adapters.etcd.auth import read_mode
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.status_endpoint import read_status
from appliance.commands import flags, targets, values
from appliance.model.exit_codes import ExitCode
from appliance.model.tls import TlsFiles
from appliance.rules.status_verdict import (
    STATUS_PORT,
    ClusterStatus,
    MemberStatus,
    agents_not_answering,
    housekeeping_decisions,
    verdict,
)


def observe(endpoints: tuple[str, ...], credentials=None, timeout: float = 3.0,
            status_port: int = STATUS_PORT, files: TlsFiles | None = None) -> ClusterStatus:
    """Look at the cluster through ``endpoints`` (``files`` for ``https`` endpoints; the agents' status
    endpoints are then HTTPS too, verified with its CA). Nothing is changed.

    Raises:
        EtcdFailure: no endpoint answered the member list, or etcd refused it.
    """
    client = EtcdClient(list(endpoints), timeout=timeout, credentials=credentials, tls=files)
    listed = client.member_list()
    try:
        mode, revision = read_mode(client)
        mode_line = f"{mode.value} since revision {revision}"
    except EtcdFailure as exc:
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
        except (EtcdFailure, ValueError):
            members.append(MemberStatus(**seen, answered=False, healthy=False, leader=False))
            continue
        members.append(MemberStatus(**seen, answered=True, healthy=client.healthy(url),
                                    leader=status.leader_id == m.id, version=status.version,
                                    leader_seen=format(status.leader_id, "x") if status.leader_id else "",
                                    revision=status.revision, raft_index=status.raft_index, db_size=status.db_size,
                                    errors=status.errors, db_size_in_use=status.db_size_in_use))
    return ClusterStatus(format(listed.cluster_id, "x"), mode_line, tuple(members), status_port)


def _agent_status(client_url: str, port: int, timeout: float, ca_file: str | None = None) -> dict:
    """The agent's ``/status`` on the member's host (HTTPS verified with ``ca_file`` where the member's
    URL is ``https``), or {} when no agent answers there."""
    host = client_url.split("://", 1)[-1].rsplit(":", 1)[0]
    return (read_status(host, port, timeout, ca_file) or {}) if host else {}


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
    lines = _table(rows) + [""] + _table(_space_rows(view))
    lines += ["", f"cluster {view.cluster_id}: {verdict(view)[1]}", f"mode: {view.mode}"]
    silent = agents_not_answering(view)
    if silent:
        lines.append(f"agents: no status endpoint answered on port {view.status_port} for {', '.join(silent)}: "
                     "their instance, region and decisions are not shown")
    leader = next((m for m in view.members if m.leader), None)
    if leader is not None and leader.agent:
        lines.append(f"housekeeping ({leader.name}): {leader.agent.get('housekeeping') or '-'}")
        lines.append(f"records ({leader.name}): {leader.agent.get('records') or '-'}")
        for part, reason in (leader.agent.get("maintenance") or {}).items():
            lines.append(f"{part.replace('_', ' ')} ({leader.name}): {reason or '-'}")
    decisions = housekeeping_decisions(view)
    if decisions:
        lines += ["", f"housekeeping decisions (the newest {len(decisions)}, oldest first):"]
        lines += _table([("TIME", "BY", "ACTION", "MEMBER", "REASON")] + [
            (_utc(d["time"]), str(d["by"]), str(d.get("action") or "-"),
             f"{d['member']} ({d.get('instance') or 'never started'})" if d.get("member") else "-",
             str(d.get("reason") or "")) for d in decisions])
    return "\n".join(lines)


def _space_rows(view: ClusterStatus) -> list[tuple[str, ...]]:
    """Each member's space: file size, in use and free (etcd's Status), its last defragmentation and the compacted
    revision (its agent's records), and its alarms (etcd's Status errors)."""
    rows = [("NAME", "DB SIZE", "IN USE", "FREE", "LAST DEFRAG", "COMPACTED", "ALARMS")]
    for m in view.members:
        space = m.agent.get("space") if isinstance(m.agent.get("space"), dict) else {}
        in_use = m.db_size_in_use if m.answered else None
        free = f"{(m.db_size - in_use) / m.db_size:.0%}" if in_use is not None and m.db_size > 0 else "-"
        defrag = space.get("last_defragmentation")
        # Every member's Status lists the whole cluster's alarms: this row shows those naming this member.
        alarms = sorted({a.kind.value for a in answers.status_alarms(m.errors)
                         if format(a.member_id, "x") == m.member_id})
        rows.append((m.name or m.member_id, _size(m.db_size) if m.answered else "-",
                     _size(in_use) if in_use is not None else "-", free,
                     _utc(defrag) if _epoch(defrag) else "-", _revision(space.get("compacted_revision")),
                     ",".join(alarms) or "-"))
    return rows


def _epoch(value: object) -> bool:
    """``value`` (from an agent's answer) is a time this table can show."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e11 and value == value


def _revision(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2 ** 63 else "-"


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
    targets.add_sim_flags(p, exclusive=where, region_help="with --sim: only this region's instances (a mirrored "
                          "simulator runs a cluster per region; default there: its first region)")
    p.add_argument("--credentials", help="credentials file (see cluster-mode), where authentication is on")
    p.add_argument("--user", default="client", help="the user in --credentials (default client)")
    p.add_argument("--status-port", type=values.flag(values.PORT), default=STATUS_PORT,
                   help="the agents' status port (default 2378)")
    p.add_argument("--timeout", type=values.flag(values.REQUEST_SECONDS), default=3.0,
                   help="seconds per request (default 3)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    flags.add_tls_flags(p)
    p.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    """0 healthy, 9 degraded, 1 no member answered, 2 bad input (see the module's docstring)."""
    if args.sim:
        target = targets.sim(args, whole_cluster=True)
        urls, files = target.endpoints, flags.tls_from(args) or target.tls
    else:
        urls, files = flags.urls(args.endpoints, "--endpoints"), flags.tls_from(args)
    flags.positive(args.timeout, "--timeout")
    credentials = flags.user_credentials(args.credentials, args.user)
    try:
        view = observe(urls, credentials, args.timeout, args.status_port, files)
    except EtcdFailure as exc:
        print(f"etcd.py: error: no member answered the member list: {exc}")
        return ExitCode.FAILURE
    print(to_json(view) if args.json else render(view))
    return verdict(view)[0]
