"""``etcd.py status``: the verdict (exit code and line) as a table of cluster views, and the table it prints."""

import dataclasses
import json

import pytest

from appliance.commands.status import render, to_json
from appliance.model.exit_codes import ExitCode
from appliance.rules.status_verdict import ClusterStatus, MemberStatus, housekeeping_decisions, verdict

DEGRADED = ExitCode.STATUS_DEGRADED


def member(name: str, *, leader: bool = False, answered: bool = True, healthy: bool = True, learner: bool = False,
           errors: tuple[str, ...] = ()) -> MemberStatus:
    return MemberStatus(name=name, member_id=f"{len(name):x}", client_url="http://127.0.1.4:2379", learner=learner,
                      answered=answered, healthy=healthy, leader=leader, version="3.5.1", revision=42,
                      db_size=20480, errors=errors, agent={"region": "eu-central-1", "housekeeping": "nothing to do"})


def view(*members: MemberStatus) -> ClusterStatus:
    return ClusterStatus("c1", "active since revision 7", members)


@pytest.mark.parametrize("members,code,words", [
    pytest.param((member("i-1", leader=True), member("i-2"), member("i-3")), 0, "healthy: 3 voting members",
                 id="all-healthy"),
    pytest.param((member("i-1", leader=True), member("i-2"), member("i-3", learner=True, healthy=False)), 0,
                 "healthy: 2 voting members, 1 learner", id="a-learner-catching-up"),
    pytest.param((member("i-1", leader=True), member("i-2"), member("i-3", answered=False)), ExitCode.STATUS_DEGRADED,
                 "i-3 does not answer", id="a-member-silent"),
    pytest.param((member("i-1", leader=True), member("i-2", healthy=False)), DEGRADED, "i-2 is unhealthy",
                 id="a-member-unhealthy"),
    pytest.param((member("i-1"), member("i-2")), ExitCode.STATUS_DEGRADED, "no member is the leader",
                 id="no-leader"),
    pytest.param((member("i-1", leader=True, errors=("NOSPACE",)),), ExitCode.STATUS_DEGRADED, "i-1 reports NOSPACE",
                 id="an-alarm"),
    pytest.param((member("", leader=True), member("", answered=False)), ExitCode.STATUS_DEGRADED, "0 does not answer",
                 id="a-member-not-started-is-named-by-its-id"),
])
def test_verdict(members, code, words):
    got_code, line = verdict(view(*members))
    assert got_code == code and words in line, line


AGENT_1 = {"instance_id": "i-1", "region": "eu-central-1", "records": "3 members published",
           "housekeeping": "no member's instance is known to be gone",
           "space": {"last_defragmentation": 1714564800.0, "compacted_revision": 40},
           "maintenance": {"compaction": "compacted 12 s ago; the next within 360 s",
                           "corruption_check": "3 members agree at revision 42"},
           "housekeeping_decisions": [
               {"time": 1714564800.0, "action": "none", "reason": "no member's instance is known to be gone",
                "member": None, "instance": None},
               {"time": 1714564920.0, "action": "remove-member",
                "reason": "member 3 (i-3): instance gone for 6 s (grace 5 s): removing it", "member": "3",
                "instance": "i-3"}]}
# A former leader's decision, between the current leader's two.
# Its space is garbage (a NaN time, a boolean revision): shown as unknown, never a crash.
AGENT_2 = {"instance_id": "i-2", "region": "eu-west-1", "space": {"last_defragmentation": float("nan"),
                                                                  "compacted_revision": True},
           "housekeeping_decisions": [
    {"time": 1714564860.0, "action": "snapshot-first", "reason": "member 3 (i-3): taking a snapshot before removing it",
     "member": None, "instance": None}, "not an entry", {"action": "none"}]}


def fixed_view() -> ClusterStatus:
    return ClusterStatus("c1", "active since revision 7", (
        dataclasses.replace(member("i-1", leader=True), member_id="1", leader_seen="1", agent=AGENT_1,
                            db_size_in_use=5 * 1024, errors=("memberID:1 alarm:NOSPACE ",)),
        dataclasses.replace(member("i-2"), member_id="2", leader_seen="1", agent=AGENT_2, db_size_in_use=20 * 1024),
        dataclasses.replace(member("i-3", answered=False), member_id="3", revision=0, version="", agent={}),
        dataclasses.replace(member("", learner=True, answered=False, healthy=False), member_id="4", revision=0,
                            version="", agent={}),
    ), status_port=2378)


EXPECTED_TABLE = "\n".join([
    "NAME              INSTANCE  REGION        ROLE      LEADER  "
    "CLIENT URL             REVISION  DB SIZE   HEALTH     VERSION",
    "i-1               i-1       eu-central-1  leader    i-1     "
    "http://127.0.1.4:2379  42        20.0 KiB  healthy    3.5.1",
    "i-2               i-2       eu-west-1     follower  i-1     "
    "http://127.0.1.4:2379  42        20.0 KiB  healthy    3.5.1",
    "i-3               -         -             follower  -       "
    "http://127.0.1.4:2379  -         -         no answer  -",
    "(4, not started)  -         -             learner   -       "
    "http://127.0.1.4:2379  -         -         no answer  -",
    "",
    "NAME  DB SIZE   IN USE    FREE  LAST DEFRAG           COMPACTED  ALARMS",
    "i-1   20.0 KiB  5.0 KiB   75%   2024-05-01T12:00:00Z  40         NOSPACE",
    "i-2   20.0 KiB  20.0 KiB  0%    -                     -          -",
    "i-3   -         -         -     -                     -          -",
    "4     -         -         -     -                     -          -",
    "",
    "cluster c1: degraded: i-3 does not answer; i-1 reports memberID:1 alarm:NOSPACE ",
    "mode: active since revision 7",
    "agents: no status endpoint answered on port 2378 for i-3, 4:"
    " their instance, region and decisions are not shown",
    "housekeeping (i-1): no member's instance is known to be gone",
    "records (i-1): 3 members published",
    "compaction (i-1): compacted 12 s ago; the next within 360 s",
    "corruption check (i-1): 3 members agree at revision 42",
    "",
    "housekeeping decisions (the newest 3, oldest first):",
    "TIME                  BY   ACTION          MEMBER   REASON",
    "2024-05-01T12:00:00Z  i-1  none            -        no member's instance is known to be gone",
    "2024-05-01T12:01:00Z  i-2  snapshot-first  -        member 3 (i-3): taking a snapshot before removing it",
    "2024-05-01T12:02:00Z  i-1  remove-member   3 (i-3)  member 3"
    " (i-3): instance gone for 6 s (grace 5 s): removing it",
])


def test_render_from_a_fixed_view():
    """Every column, the verdict, the silent agents in one line, and every agent's decisions merged by time."""
    assert render(fixed_view()) == EXPECTED_TABLE


def test_json_carries_the_decisions_and_the_silent_agents():
    data = json.loads(to_json(fixed_view()))
    assert data["exit_code"] == ExitCode.STATUS_DEGRADED
    assert [m["role"] for m in data["members"]] == ["leader", "follower", "follower", "learner"]
    assert [m["leader_seen"] for m in data["members"]] == ["1", "1", "", ""]
    assert data["agents_not_answering"] == ["i-3", "4"]
    assert [(d["by"], d["action"], d["member"]) for d in data["housekeeping_decisions"]] == [
        ("i-1", "none", None), ("i-2", "snapshot-first", None), ("i-1", "remove-member", "3")]


@pytest.mark.parametrize("agents,count,expected", [
    pytest.param((AGENT_1, AGENT_2), 10, ["none", "snapshot-first", "remove-member"], id="merged-by-time"),
    pytest.param((AGENT_1, AGENT_2), 2, ["snapshot-first", "remove-member"], id="only-the-newest"),
    pytest.param(({"housekeeping_decisions": "garbage"}, {}), 10, [], id="malformed-or-none"),
])
def test_housekeeping_decisions(agents, count, expected):
    shown = view(*(dataclasses.replace(member(f"i-{n}"), agent=a) for n, a in enumerate(agents)))
    assert [d["action"] for d in housekeeping_decisions(shown, count)] == expected


def test_an_agent_without_decisions_shows_its_current_housekeeping_only():
    """An agent from before the decisions were kept (mid rolling upgrade): its current housekeeping line."""
    table = render(view(member("i-1", leader=True), member("i-2")))
    assert "housekeeping (i-1): nothing to do" in table and "housekeeping decisions" not in table
    assert "agents:" not in table
