"""``etcd.py status``: the verdict (exit code and line) as a table of cluster views, and the table it prints."""

import json

import pytest

from appliance.status_command import EXIT_DEGRADED, ClusterStatus, MemberStatus, render, to_json, verdict


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
    pytest.param((member("i-1", leader=True), member("i-2"), member("i-3", answered=False)), EXIT_DEGRADED,
                 "i-3 does not answer", id="a-member-silent"),
    pytest.param((member("i-1", leader=True), member("i-2", healthy=False)), EXIT_DEGRADED, "i-2 is unhealthy",
                 id="a-member-unhealthy"),
    pytest.param((member("i-1"), member("i-2")), EXIT_DEGRADED, "no member is the leader", id="no-leader"),
    pytest.param((member("i-1", leader=True, errors=("NOSPACE",)),), EXIT_DEGRADED, "i-1 reports NOSPACE",
                 id="an-alarm"),
    pytest.param((member("", leader=True), member("", answered=False)), EXIT_DEGRADED, "0 does not answer",
                 id="a-member-not-started-is-named-by-its-id"),
])
def test_verdict(members, code, words):
    got_code, line = verdict(view(*members))
    assert got_code == code and words in line, line


def test_render_and_json_show_every_member_the_mode_and_the_leader_s_decisions():
    shown = view(member("i-1", leader=True), member("i-2", answered=False))
    table = render(shown)
    assert table.splitlines()[0].split() == ["NAME", "REGION", "ROLE", "CLIENT", "URL", "REVISION", "DB", "SIZE",
                                             "HEALTH", "VERSION"]
    rows = [line.split() for line in table.splitlines()[1:3]]
    assert rows[0] == ["i-1", "eu-central-1", "leader", "http://127.0.1.4:2379", "42", "20.0", "KiB", "healthy",
                       "3.5.1"]
    assert rows[1][:3] == ["i-2", "eu-central-1", "follower"] and "no answer" in table
    assert "mode: active since revision 7" in table and "housekeeping (i-1): nothing to do" in table
    data = json.loads(to_json(shown))
    assert data["exit_code"] == EXIT_DEGRADED and [m["role"] for m in data["members"]] == ["leader", "follower"]
