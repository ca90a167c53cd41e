"""Many instances at once, and simulators side by side."""

import json

import pytest


def cluster_ids(sim) -> set[str]:
    done = sim.etcdctl("endpoint", "status", "-w", "json")
    assert done.returncode == 0, done.stderr
    return {str(e["Status"]["header"]["cluster_id"]) for e in json.loads(done.stdout)}


# Soak tests (`make test-all`), five attempts: the seeding race that would found a second cluster is a
# matter of timing, so repetition is what finds it. `make test` starts five instances at once in
# test_stretched.py (across three regions, under the same seeding rule).
@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(5))
def test_five_instances_started_together_form_exactly_one_cluster(sim_factory, attempt):
    sim = sim_factory(f"five{attempt}")
    sim.up(5, timeout=90)
    status = sim.status()
    assert status["healthy"], status["reason"]
    members = sim.members()
    assert len(members) == 5 and not any(m.get("isLearner") for m in members)
    assert {m["name"] for m in members} == {i["id"] for i in status["instances"]}
    assert len(cluster_ids(sim)) == 1, "every member must belong to the same cluster"
    seeders = [i["id"] for i in status["instances"] if "seed: listing complete" in sim.agent_log(i["id"])]
    assert len(seeders) == 1


# An extended test since the snapshots' tests joined `make test` (the simulator's own isolation, not the agent's).
@pytest.mark.extended
def test_two_simulators_run_side_by_side(sim_factory):
    first, second = sim_factory("left"), sim_factory("right")
    first.up(1)
    second.up(1)
    a, b = first.status()["instances"][0], second.status()["instances"][0]
    assert a["private_ip"].rsplit(".", 1)[0] != b["private_ip"].rsplit(".", 1)[0], "subnets must differ"
    assert first.state["aws_endpoint"] != second.state["aws_endpoint"]
    assert cluster_ids(first) != cluster_ids(second)
    assert first.etcdctl("put", "/who", "left").returncode == 0
    assert second.etcdctl("get", "/who", "--print-value-only").stdout.strip() == ""
