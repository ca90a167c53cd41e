"""What the simulator shows: each instance, its etcd role, and whether the cluster is healthy."""

from __future__ import annotations

import dataclasses
import time

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.sim import aws, state
from appliance.sim.lifecycle_hooks import Action, load_pending

CLIENT_PORT = 2379


@dataclasses.dataclass(frozen=True)
class ClusterReport:
    """The stack as seen now. ``healthy`` means: every InService instance is a healthy voting
    member, there are no other members, no instance is terminating, and one leader."""

    instances: list[dict]
    healthy: bool
    reason: str
    leader: str | None


def observe(sim_state: dict, timeout: float = 1.0, expected: int | None = None) -> ClusterReport:
    """Ask the local AWS for the instances and etcd for the members; never raises for etcd errors.

    ``expected``: the number of InService instances a healthy cluster has (default:
    the stack's InstanceCount); a rotation expects one more while it launches first.
    A mirrored simulator's report joins every region's (healthy if all are; the reason
    names each region).
    """
    if sim_state.get("mode") == "mirrored":
        return joined(observe_regions(sim_state, timeout))
    return _observe(sim_state, aws.stack_instances(sim_state), timeout, expected)


def joined(reports: dict[str, ClusterReport]) -> ClusterReport:
    """Several regional clusters' reports as one: every row, healthy if all are, each region's reason."""
    return ClusterReport([row for r in reports.values() for row in r.instances],
                         all(r.healthy for r in reports.values()),
                         "; ".join(f"{region}: {r.reason}" for region, r in reports.items()),
                         next((r.leader for r in reports.values() if r.leader), None))


def observe_regions(sim_state: dict, timeout: float = 1.0) -> dict[str, ClusterReport]:
    """A mirrored simulator: region -> the report of that region's own cluster."""
    reports = {}
    for region, facts in aws.stack_regions(sim_state).items():
        instances = aws.group_instances(aws.clients(sim_state["aws_endpoint"], region), facts["asg"], region)
        reports[region] = _observe(sim_state, instances, timeout, facts["instance_count"])
    return reports


def _observe(sim_state: dict, instances: list[dict], timeout: float, expected: int | None) -> ClusterReport:
    # moto knows nothing of lifecycle hooks: an instance in Terminating:Wait is InService there.
    waiting = {a["instance_id"] for a in load_pending(sim_state["state_dir"])}
    instances = [{**i, "lifecycle_state": "Terminating:Wait"} if i["id"] in waiting else i for i in instances]
    client = EtcdClient([], timeout=timeout, tls=state.tls_files(sim_state))
    members, leader_id = (), None
    for inst in instances:
        url = state.client_url(sim_state, inst["private_ip"], CLIENT_PORT)
        try:
            members = client.member_list(url).members
            leader_id = client.status(url).leader_id or None
            break
        except EtcdFailure:
            continue
    by_name = {m.name: m for m in members if m.name}
    rows, problems = [], []
    leader_name = None
    for inst in instances:
        member = by_name.get(inst["id"])
        url = state.client_url(sim_state, inst["private_ip"], CLIENT_PORT)
        is_leader = member is not None and member.id == leader_id
        leader_name = inst["id"] if is_leader else leader_name
        healthy = member is not None and client.healthy(url)
        rows.append({"id": inst["id"], "region": inst["region"], "private_ip": inst["private_ip"],
                     "public_ip": inst.get("public_ip"),
                     "lifecycle_state": inst["lifecycle_state"],
                     "member": member is not None and not member.is_learner,
                     "learner": member is not None and member.is_learner, "leader": is_leader,
                     "client_url": url, "member_id": member.hex_id if member else None, "healthy": healthy})
        if inst["lifecycle_state"] == "InService":
            if member is None:
                problems.append(f"{inst['id']} is not a member")
            elif member.is_learner:
                problems.append(f"{inst['id']} is a learner")
            elif not healthy:
                problems.append(f"{inst['id']} is not healthy")
    problems += [f"{i} is Terminating:Wait" for i in sorted(waiting & {i["id"] for i in instances})]
    listed = {i["id"] for i in instances}
    extra = [m.name or m.hex_id for m in members if m.name not in listed]
    if extra:
        problems.append("members without an instance: " + ", ".join(extra))
    if not members:
        problems.append("no etcd member answers")
    elif leader_id is None:
        problems.append("no leader")
    in_service = sum(1 for i in instances if i["lifecycle_state"] == "InService")
    expected = sim_state["instance_count"] if expected is None else expected
    if in_service != expected:
        problems.append(f"{in_service} of {expected} instances InService")
    return ClusterReport(rows, not problems, "; ".join(problems) or "healthy", leader_name)


def format_table(report: ClusterReport) -> str:
    """A human table of the instances, then the verdict."""
    header = (f"{'INSTANCE':<21} {'REGION':<14} {'PRIVATE IP':<12} {'LIFECYCLE':<19} {'ROLE':<8} "
              f"{'CLIENT URL':<24} HEALTH")
    lines = [header]
    for r in report.instances:
        role = "leader" if r["leader"] else "member" if r["member"] else "learner" if r["learner"] else "-"
        lines.append(f"{r['id']:<21} {r['region']:<14} {r['private_ip']:<12} {r['lifecycle_state']:<19} {role:<8} "
                     f"{r['client_url']:<24} {'ok' if r['healthy'] else '-'}")
    lines.append(f"cluster: {report.reason}")
    return "\n".join(lines)


def lifecycle_actions(sim_state: dict) -> list[dict]:
    """The pending lifecycle actions: [{"instance", "group", "hook", "cause", "since", "deadline",
    "global_deadline", "result"}], times in epoch seconds; "result" None while waiting."""
    actions = [Action(**a) for a in load_pending(sim_state["state_dir"])]
    return [{"instance": a.instance_id, "group": a.group, "hook": a.hook, "cause": a.cause, "since": a.started,
             "deadline": a.deadline, "global_deadline": a.global_deadline, "result": a.result} for a in actions]


def format_actions(actions: list[dict]) -> str:
    """A human table of the pending lifecycle actions ("" when none)."""
    if not actions:
        return ""
    clock = lambda t: time.strftime("%H:%M:%S", time.localtime(t))  # noqa: E731
    lines = [f"{'TERMINATING':<21} {'HOOK':<22} {'SINCE':<9} {'DEADLINE':<9} RESULT"]
    lines += [f"{a['instance']:<21} {a['hook']:<22} {clock(a['since']):<9} {clock(a['deadline']):<9} "
              f"{a['result'] or 'waiting'}" for a in actions]
    return "\n".join(lines)
