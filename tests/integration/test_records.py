"""Route53 discovery records kept by the leader: they appear, follow instances, cost nothing when quiet,
and are what etcd's own DNS discovery reads (etcdctl --discovery-srv through the simulator's DNS server)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import ETCDCTL, SIM_DOMAIN, wait_until
from tests.integration.dns_namespace import namespace_unavailable, run_with_resolver


@pytest.fixture(scope="module")
def sim(cluster3):
    """The module's 3-instance stack (conftest's ``cluster3``), named as the records tests use it."""
    return cluster3


def test_records_appear_for_a_new_cluster(sim):
    wait_until(lambda: sim.records_match(), 30, "the records of the 3 members")
    assert len(sim.our_records()) == 6  # 2 SRV, the domain's A, 3 per-member A


@pytest.mark.soak  # about 30 s of watching; benchmarks/bench_route53.py reports the same figure
def test_a_quiet_cluster_sends_no_change_request(sim):
    wait_until(lambda: sim.records_match(), 30, "the records of the 3 members")
    time.sleep(6)  # the change that made them is confirmed INSYNC
    since = time.time()
    leader = sim.leader()["id"]
    before = sim.agent_status(leader)["updated"]
    time.sleep(22)  # more than 4 leader cycles of 5 s
    route53 = [c for c in sim.aws_calls(since) if c[2].startswith("route53:")]
    assert route53 == [], f"Route53 calls while nothing changed: {route53}"
    status = sim.agent_status(leader)
    assert status["updated"] - before >= 15, "the leader did not cycle"
    assert "records up to date" in status["records"], status["records"]


def test_etcdctl_finds_the_cluster_through_the_srv_records(sim):
    """etcd's client-side DNS discovery (etcdctl --discovery-srv) resolves our records to the members."""
    reason = namespace_unavailable()
    if reason:
        pytest.skip(reason)
    server = sim.state.get("dns_server")
    if not server:
        pytest.skip("the simulator could not bind port 53 for its DNS server (not root)")
    wait_until(lambda: sim.records_match(), 30, "the records of the 3 members")
    done = run_with_resolver(server.split(":")[0], [ETCDCTL, "--discovery-srv", SIM_DOMAIN.rstrip("."),
                                                    "--command-timeout=5s", "member", "list", "-w", "json"],
                             timeout=30)
    assert done.returncode == 0, done.stderr
    names = sorted(m.get("name", "") for m in json.loads(done.stdout)["members"])
    assert names == sorted(i["id"] for i in sim.status()["instances"])


# An extended test (`make test-all`) for the suite's length: in `make test`, test_mirrored.py's switchover test
# waits for a region's records to name a replacement.
@pytest.mark.extended  # test_mirrored.py waits for a replacement's records in make test
def test_records_follow_a_replacement(sim):
    wait_until(lambda: sim.records_match(), 30, "the records of the 3 members")
    victim = sim.non_leader()["id"]
    assert sim.cli("terminate", victim).returncode == 0
    wait_until(lambda: victim not in {i["id"] for i in sim.status()["instances"]}, 30, "the instance to go")
    wait_until(lambda: sim.records_match(), 90, "the records to follow the replacement")
    names = " ".join(v for values in sim.our_records().values() for v in values)
    assert victim not in names


def test_the_leader_writes_a_heartbeat_every_second(sim):
    def fresh():
        done = sim.etcdctl("get", "/__appliance/heartbeat", "--print-value-only")
        value = done.stdout.strip()
        return value and abs(time.time() - float(value)) < 2.5 and float(value)

    first = wait_until(fresh, 30, "a fresh heartbeat")
    time.sleep(2.5)
    assert wait_until(fresh, 10, "a fresh heartbeat") > first + 1.5
