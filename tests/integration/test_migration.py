"""Migrating a running single-region cluster to one stretched across two regions, in the simulator, as
docs/multiregion.md, "Migrating from one region to two", does it: update the stack to the multiregion
template (ACTIVE_REGIONS), rotate the instances so each runs with it, deploy the stack in the second region,
scale that region up. A client writes throughout; the cluster keeps its identity and every acknowledged
write."""

from __future__ import annotations

import json

import pytest

from appliance.sim.writer import ContinuousWriter
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.timeout(600)

HOME, SECOND = "eu-central-1", "eu-west-1"


def cluster_id(sim) -> str:
    done = sim.etcdctl("member", "list", "-w", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["header"]["cluster_id"]


@pytest.mark.extended  # make test: test_stretched.py forms one cluster across regions
def test_a_single_region_cluster_migrates_to_two_regions_losing_nothing(sim_factory):
    sim = sim_factory("migrate")
    sim.up(3)
    before = cluster_id(sim)
    assert sim.etcdctl("put", "/kept/before-migration", "yes").returncode == 0
    writer = ContinuousWriter(sim.state_dir, prefix="/migrate/")
    writer.start()
    try:
        steps = [("update", "--active-regions", f"{HOME},{SECOND}"),
                 ("rotate",),
                 ("add-region", SECOND, "--instances", "1"),
                 ("scale", "--region", SECOND, "2")]
        for step in steps:
            done = sim.cli(*step, timeout=600)
            assert done.returncode == 0, f"sim {' '.join(step)}:\n{done.stdout}\n{done.stderr}"
    finally:
        writer.stop()

    status = sim.status_all()
    assert status["healthy"] and status["mode"] == "stretched", status["reason"]
    assert {r: len(p["instances"]) for r, p in status["regions"].items()} == {HOME: 3, SECOND: 2}
    # The same cluster, with its data: migrated, not replaced by a second one.
    assert cluster_id(sim) == before
    assert sim.etcdctl("get", "/kept/before-migration", "--print-value-only").stdout.strip() == "yes"
    assert len(writer.acknowledged) > 100, f"only {len(writer.acknowledged)} writes acknowledged"
    done = sim.etcdctl("get", "/migrate/", "--prefix", "--keys-only")
    assert done.returncode == 0, done.stderr
    assert [k for k in writer.acknowledged if k not in set(done.stdout.split())] == []
    # Every home instance now runs with both regions (the rotation), and the groups let exactly the
    # other region's members in.
    for inst in status["regions"][HOME]["instances"]:
        assert f"one cluster across regions {HOME},{SECOND}" in sim.agent_log(inst["id"])
    instances = sim.instances()

    def exact() -> bool:
        return all(sim.peer_rules(region) == {
            d: {f"{i['private_ip']}/32" for i in instances if i["region"] != region} for d in ("ingress", "egress")}
            for region in (HOME, SECOND))
    wait_until(exact, 60, "the security groups to allow exactly the other region's members")


def member_names(sim) -> set[str]:
    return {m["name"] for m in sim.members()}


def home_members(sim) -> int:
    return sum(1 for i in sim.instances() if i["region"] == HOME and i["member"])


# An extended test (`make test-all`) since the snapshots' tests joined `make test`: the rule it shows is the
# "unaware members" rows of tests/unit/rules/test_bootstrap.py, and the migration above runs in the right order.
@pytest.mark.extended
def test_a_region_added_before_the_rotation_waits_instead_of_being_removed(sim_factory):
    """The walkthrough's order broken: the second region is deployed while the home instance still runs
    without ACTIVE_REGIONS (as leader it would take the newcomer for gone and remove it). The newcomer
    waits, saying why, and joins once the home instance is replaced by one that knows both regions."""
    sim = sim_factory("misordered")
    sim.up(1)
    assert sim.cli("update", "--active-regions", f"{HOME},{SECOND}").returncode == 0
    done = sim.cli("add-region", SECOND, "--instances", "1", "--timeout", "5")
    assert done.returncode == 1 and "no healthy cluster within 5 s" in done.stderr, done.stdout + done.stderr
    newcomer = next(i for i in sim.instances() if i["region"] == SECOND)
    wait_until(lambda: "do not count this instance's region" in sim.agent_status(newcomer["id"])["reason"], 30,
               "the newcomer to say why it waits")
    old = next(i["id"] for i in sim.instances() if i["region"] == HOME)
    assert member_names(sim) == {old}
    # Replace the home instance, launch first: a second home instance (launched after the update, so it
    # knows both regions) joins; then the old one leaves gracefully and the group launches another.
    done = sim.cli("scale", "--region", HOME, "2", "--timeout", "1")
    assert done.returncode == 1, done.stdout + done.stderr  # not healthy: the newcomer is still waiting
    wait_until(lambda: home_members(sim) == 2, 60, "the second home instance to join")
    assert newcomer["id"] not in member_names(sim)
    assert sim.cli("terminate", "--graceful", old).returncode == 0
    wait_until(lambda: old not in member_names(sim) and home_members(sim) == 2, 60, f"{old} to be replaced")
    wait_until(lambda: newcomer["id"] in member_names(sim) and sim.healthy(), 60,
               "the newcomer to join once every home agent knows its region")
    assert len(member_names(sim)) == 3
