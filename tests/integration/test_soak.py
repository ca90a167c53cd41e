"""Soak: many rounds of losing an instance, the leader included. Run with `make test-all` or `pytest -m soak`."""

import os
import random

import pytest

ROUNDS = int(os.environ.get("SOAK_ROUNDS", "10"))


@pytest.mark.soak
@pytest.mark.timeout(ROUNDS * 120 + 180)
def test_repeated_terminations_always_heal_and_keep_the_data(sim_factory):
    sim = sim_factory("soak")
    sim.up(3)
    rng = random.Random(20261121)
    for round_no in range(ROUNDS):
        assert sim.etcdctl("put", f"/soak/{round_no}", str(round_no)).returncode == 0
        status = sim.status()
        victim = rng.choice([i for i in status["instances"] if i["member"]])
        if round_no % 3 == 2:
            assert sim.cli("terminate", "--graceful", victim["id"]).returncode == 0
        else:
            sim.aws("ec2").terminate_instances(InstanceIds=[victim["id"]])
        sim.wait_healthy(90)
        names = {m["name"] for m in sim.members()}
        assert victim["id"] not in names and len(names) == 3, f"round {round_no}"
    keys = sim.etcdctl("get", "/soak/", "--prefix", "--keys-only").stdout.split()
    assert sorted(keys) == sorted(f"/soak/{n}" for n in range(ROUNDS))
