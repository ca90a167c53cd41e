"""A real 3-member cluster on the local AWS, with TLS everywhere (``sim up --tls``, as a production stack
runs): bootstrap, refused strangers, crash, termination, failing AWS, graceful exit, snapshots.
(tests/integration/test_records.py and others run their clusters over plain HTTP.)"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time

import pytest
import requests

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdUnavailable
from appliance.sim import state
from appliance.sim.certificates import Authority
from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import REPO, Sim, etcd_pid, policy_actions, run_cli, wait_until
from tests.integration.test_guard import guard

GRACE = 5  # the simulator's default GRACE_PERIOD, seconds


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    """One 3-instance stack over TLS shared by this module's tests; each test leaves it healthy at full size."""
    sim = Sim(tmp_path_factory.mktemp("cluster3-tls"))
    try:
        sim.up(3, tls=True)
        yield sim
    finally:
        sim.down()


def member_names(sim) -> set[str]:
    return {m.get("name", "") for m in sim.members()}


def test_three_instances_form_one_healthy_cluster(cluster3):
    status = cluster3.status()
    assert status["healthy"], status["reason"]
    ids = {i["id"] for i in status["instances"]}
    assert len(ids) == 3 and sum(i["leader"] for i in status["instances"]) == 1
    health = cluster3.etcdctl("endpoint", "health")
    output = health.stdout + health.stderr  # etcdctl 3.4 prints health on stderr, 3.5 on stdout
    assert health.returncode == 0 and output.count("is healthy") == 3, output
    members = cluster3.members()
    assert {m["name"] for m in members} == ids
    assert not any(m.get("isLearner") for m in members)
    first, second = (i["client_url"] for i in status["instances"][:2])
    assert cluster3.etcdctl("put", "/demo/key", "written-on-first", endpoints=first).returncode == 0
    read = cluster3.etcdctl("get", "/demo/key", "--print-value-only", endpoints=second)
    assert read.stdout.strip() == "written-on-first"
    assert all(u.startswith("https://") for m in members for u in m["peerURLs"] + m["clientURLs"]), members
    wait_until(cluster3.records_match, 60, "the -ssl SRV and A records to name the three members")
    shown = run_cli("status", "--sim", "--state-dir", cluster3.state_dir, timeout=60)
    assert shown.returncode == 0 and "https://" in shown.stdout and "housekeeping (" in shown.stdout, \
        shown.stdout + shown.stderr
    assert cluster3.agent_status(cluster3.leader()["id"])["leader"] is True  # over HTTPS, verified
    # The staleness guard reads the heartbeat over TLS with the operator's certificate.
    guarded = run_cli("guard", "--endpoints", cluster3.endpoints(), "--max-staleness", "30",
                      *cluster3.tls_flags(), "--", "true", timeout=60)
    assert guarded.returncode == 0, guarded.stdout + guarded.stderr


def test_plain_http_and_certificates_of_another_ca_are_refused(cluster3, tmp_path):
    url = cluster3.leader()["client_url"]
    files, stranger = cluster3.tls, Authority(str(tmp_path / "other-ca"), "another CA").issue("intruder", server=False)
    assert EtcdClient([url], timeout=3, tls=files).member_list().members  # the operator's certificate works
    with pytest.raises(requests.ConnectionError):  # plain HTTP to a TLS port: etcd closes the connection
        requests.get(url.replace("https://", "http://") + "/version", timeout=3)
    with pytest.raises(requests.exceptions.SSLError):  # no client certificate
        requests.post(url + "/v3/cluster/member/list", data="{}", verify=files.ca_file, timeout=3)
    with pytest.raises(EtcdUnavailable, match="TLS"):  # a client certificate the cluster's CA did not sign
        EtcdClient([url], timeout=3, tls=dataclasses.replace(stranger, ca_file=files.ca_file)).member_list()
    with pytest.raises(EtcdUnavailable, match="certificate verify failed"):  # members not signed by the CA we trust
        EtcdClient([url], timeout=3, tls=stranger).member_list()
    ip = url.split("//", 1)[1].rsplit(":", 1)[0]
    with pytest.raises(requests.ConnectionError):  # the agents' status endpoints speak HTTPS only
        requests.get(f"http://{ip}:2378/status", timeout=3)


def test_backup_over_tls_is_verified(cluster3):
    # etcdctl snapshot save gets the CA and the client certificate in its environment.
    done = run_cli("backup", "--sim", "--state-dir", cluster3.state_dir, timeout=120)
    assert done.returncode == 0 and "verified" in done.stdout, done.stdout + done.stderr


def test_kill_9_of_etcd_restarts_it_with_the_same_member_and_data(cluster3):
    victim = cluster3.non_leader()
    before = {m["name"]: m["ID"] for m in cluster3.members()}
    assert cluster3.etcdctl("put", "/crash/key", "kept").returncode == 0
    old_pid = etcd_pid(victim["id"])
    os.kill(old_pid, signal.SIGKILL)
    new_pid = wait_until(lambda: (p := etcd_pid(victim["id"])) and p != old_pid and p, 30, "etcd restarted")
    cluster3.wait_healthy(60)
    after = {m["name"]: m["ID"] for m in cluster3.members()}
    assert after == before, "the restarted etcd must keep its member id"
    local = cluster3.etcdctl("get", "/crash/key", "--print-value-only", "--consistency=s",
                             endpoints=victim["client_url"])
    assert local.stdout.strip() == "kept"
    assert new_pid != old_pid
    assert "rejoin: data of member" in cluster3.agent_log(victim["id"])


# make test: the housekeeping and bootstrap tables' unknown-listing rows, and test_discovery_regions.py.
@pytest.mark.extended
def test_failed_listing_removes_nothing_and_never_seeds(cluster3):
    victim = cluster3.non_leader()
    fault = cluster3.cli("fault", "--operation", "DescribeAutoScalingGroups", "--error", "ServiceUnavailable")
    assert fault.returncode == 0, fault.stderr
    try:
        cluster3.aws("ec2").terminate_instances(InstanceIds=[victim["id"]])
        time.sleep(GRACE * 3)  # three grace periods in which a careless leader would remove it
        assert victim["id"] in member_names(cluster3), "a member was removed on a failed listing"
        members_now = {x["id"] for x in cluster3.status()["instances"] if x["member"]}
        replacement = [i for i in cluster3.state["instances"] if i not in members_now]
        assert len(replacement) == 1
        assert replacement[0] not in member_names(cluster3)
        # The replacement waits: it neither joined nor founded a cluster of its own.
        assert etcd_pid(replacement[0]) is None
        assert "AWS listing is incomplete" in cluster3.agent_status(replacement[0])["reason"]
    finally:
        assert cluster3.cli("fault", "--clear").returncode == 0
    healed = cluster3.wait_healthy(60)
    assert victim["id"] not in member_names(cluster3)
    assert len(healed["instances"]) == 3


# A soak test (`make test-all`) since TLS and checkov joined `make test`: a partial listing is a row of
# tests/unit/rules/test_housekeeping.py and of the fault proxy's tests, and the failed listing above shows a
# leader removing nothing on a listing it cannot trust.
@pytest.mark.soak
def test_partial_listing_removes_nothing(cluster3, stopped_group):
    victim = cluster3.non_leader()
    leader = cluster3.leader()
    victim_member = {m["name"]: m["ID"] for m in cluster3.members()}[victim["id"]]
    # The machine hangs (its member turns unhealthy) and the group's answer leaves it out.
    pgid = cluster3.agent_pid(victim["id"])
    stopped_group.append(pgid)
    os.killpg(pgid, signal.SIGSTOP)
    fault = cluster3.cli("fault", "--operation", "DescribeAutoScalingGroups", "--omit-instance", victim["id"])
    assert fault.returncode == 0, fault.stderr
    try:
        wait_until(lambda: "incomplete" in cluster3.agent_status(leader["id"]).get("housekeeping", ""), 30,
                   "the leader to see an incomplete listing")
        time.sleep(GRACE * 3)
        still = {m["name"]: m["ID"] for m in cluster3.members(endpoints=leader["client_url"])}
        assert still.get(victim["id"]) == victim_member, "a member was removed on a partial listing"
        assert "not listed in the group" in cluster3.agent_status(leader["id"])["housekeeping"]
    finally:
        cluster3.cli("fault", "--clear")
        os.killpg(pgid, signal.SIGCONT)
    cluster3.wait_healthy(60)
    assert {m["name"]: m["ID"] for m in cluster3.members()}[victim["id"]] == victim_member


def test_terminated_instance_is_replaced_and_its_member_removed(cluster3):
    """EC2's TerminateInstances (``sim terminate ID``): the machine vanishes at once, the group's termination hook
    plays no part (no lifecycle action, no CompleteLifecycleAction), and the leader removes the member."""
    victim = cluster3.non_leader()
    victim_member = {m["name"]: m["ID"] for m in cluster3.members()}[victim["id"]]
    pid = cluster3.agent_pid(victim["id"])
    done = cluster3.cli("terminate", victim["id"])
    assert done.returncode == 0, done.stderr
    wait_until(lambda: not state.pid_alive(pid), 3, "the machine to vanish", interval=0.1)
    healed = cluster3.wait_healthy(60)
    assert not [c for c in cluster3.aws_calls() if c[1] == victim["id"] and "LifecycleAction" in c[2]]
    names = member_names(cluster3)
    assert victim["id"] not in names and len(names) == 3
    replacement = next(i["id"] for i in healed["instances"] if i["id"] not in {victim["id"]} and
                       "added as learner member" in cluster3.agent_log(i["id"]) and
                       "promoted member" in cluster3.agent_log(i["id"]))
    assert replacement in names
    leader_log = cluster3.agent_log(cluster3.leader()["id"])
    assert f"housekeeping: removed member {int(victim_member):x}" in leader_log


def test_graceful_termination_leaves_without_the_leader(cluster3):
    victim = cluster3.leader()  # the hardest case: leadership must move first
    victim_member = {m["name"]: m["ID"] for m in cluster3.members()}[victim["id"]]
    done = cluster3.cli("terminate", "--graceful", victim["id"])
    assert done.returncode == 0, done.stderr
    # TerminateInstanceInAutoScalingGroup held it in Terminating:Wait until its agent completed the action.
    assert f"terminated {victim['id']} after its lifecycle action: completed (CONTINUE)" in done.stdout
    assert [c for c in cluster3.aws_calls() if c[1] == victim["id"] and c[2] == "autoscaling:CompleteLifecycleAction"]
    log = cluster3.agent_log(victim["id"])
    assert "moved leadership to member" in log
    assert f"removed this instance's member {int(victim_member):x}" in log
    assert victim["id"] not in member_names(cluster3)  # gone before the instance was terminated
    cluster3.wait_healthy(60)
    for instance_id in cluster3.state["instances"]:
        assert f"housekeeping: removed member {int(victim_member):x}" not in cluster3.agent_log(instance_id)


def test_access_denied_exits_2_naming_the_call(cluster3, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "keep-me").write_text("operator's file")
    instance_id = next(iter(cluster3.status()["instances"]))["id"]
    cli = cluster3.cli("fault", "--operation", "DescribeAutoScalingGroups", "--error", "AccessDenied",
                       "--for-instance", "probe")
    assert cli.returncode == 0
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": cluster3.state["agent_aws_endpoint"],
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SDK_UA_APP_ID": "probe",
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{cluster3.state['metadata_port']}/{instance_id}/",
               "DATA_DIR": str(data_dir), "APPLIANCE_ETCD_BINARY": etcd_binary()}
        done = run_cli("run", env=env, timeout=60)
    finally:
        cluster3.cli("fault", "--clear")
    assert done.returncode == 2
    assert "AccessDenied: autoscaling:DescribeAutoScalingGroups is not allowed" in done.stderr
    assert sorted(os.listdir(data_dir)) == ["keep-me"]


# Allowed by the single-region template, but not called in this module's scenario: where each is needed.
NOT_CALLED_HERE = {
    "route53:GetChange": "waiting for a record change to be INSYNC (appliance/agent/components/records.py)",
    "s3:DeleteObject": "retention beyond SNAPSHOT_KEEP, and a snapshot that does not verify (test_snapshot_store.py)",
    "s3:AbortMultipartUpload": "a multipart upload of a snapshot over 16 MiB that fails (boto3's transfer manager)",
    "autoscaling:RecordLifecycleActionHeartbeat": "only while a leave runs 20 s or more "
                                                  "(tests/unit/agent/test_aws_reports.py)",
    "cloudwatch:PutMetricData": "only with CLOUDWATCH_NAMESPACE, the templates' AlarmTopicArn, off here "
                                "(tests/unit/adapters/test_aws_reports_calls.py puts one into moto)",
}


def test_agents_call_only_what_the_template_allows_and_it_allows_nothing_else(cluster3):
    """Every AWS operation the agents made during this module is in the template's IAM policy, and the
    policy allows nothing beyond those and the few this scenario does not reach (named above)."""
    made = cluster3.agent_operations()
    allowed = policy_actions(REPO / "cloudformation" / "etcd-cluster.yaml")
    assert made, "the agents made no AWS call?"
    assert made <= allowed, f"calls outside the policy: {made - allowed}"
    assert allowed - made <= set(NOT_CALLED_HERE), f"allowed but never called: {allowed - made - set(NOT_CALLED_HERE)}"


def test_plain_restart_of_the_agent_keeps_the_member(cluster3):
    victim = cluster3.non_leader()
    before = {m["name"]: m["ID"] for m in cluster3.members()}
    old_agent = cluster3.agent_pid(victim["id"])
    os.kill(old_agent, signal.SIGTERM)  # the agent alone, as a service manager's restart does
    wait_until(lambda: cluster3.agent_pid(victim["id"]) not in (None, old_agent), 30, "the agent to come back")
    cluster3.wait_healthy(60)
    log = cluster3.agent_log(victim["id"])
    assert "SIGTERM: stopping etcd; this member stays in the cluster" in log
    assert "rejoin: data of member" in log
    assert {m["name"]: m["ID"] for m in cluster3.members()} == before


def test_member_entry_without_local_data_is_replaced(cluster3):
    """A disk replaced under a running instance: its stale member is removed and it joins afresh."""
    victim = cluster3.non_leader()
    old_member = {m["name"]: m["ID"] for m in cluster3.members()}[victim["id"]]
    old_agent = cluster3.agent_pid(victim["id"])
    data_dir = os.path.join(cluster3.state_dir, "instances", victim["id"], "data")
    os.killpg(old_agent, signal.SIGKILL)
    wait_until(lambda: etcd_pid(victim["id"]) is None, 10, "etcd to die with its agent")
    shutil.rmtree(data_dir)
    wait_until(lambda: cluster3.agent_pid(victim["id"]) not in (None, old_agent), 30, "the agent to come back")
    cluster3.wait_healthy(60)
    log = cluster3.agent_log(victim["id"])
    assert "claims this instance but there is no usable local data" in log
    new_member = {m["name"]: m["ID"] for m in cluster3.members()}[victim["id"]]
    assert new_member != old_member


def test_a_guard_on_a_member_without_quorum_stops_the_child(cluster3, guards):
    """The staleness guard, over TLS, on this module's cluster. Two of three members frozen: the third
    cannot serve a linearizable read, so the data counts as stale (whatever it holds), exactly as for a
    guarded host cut off from the majority."""
    members = [i for i in cluster3.status()["instances"] if i["member"]]
    kept = next(i for i in members if not i["leader"])
    frozen = [etcd_pid(i["id"]) for i in members if i is not kept]
    assert all(frozen), frozen
    proc = guard(kept["client_url"], max_staleness=3, extra=tuple(cluster3.tls_flags()))
    guards.append(proc)
    try:
        assert proc.stdout.readline().strip() == "started"
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        assert proc.wait(20) == 11, proc.stderr.read()
        assert time.monotonic() - stopped_at < 3 + 0.5 + 3.5  # + up to 1 s of heartbeat age, a read timeout
        assert "last read failed" in proc.stderr.read()
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    cluster3.wait_healthy(60)
