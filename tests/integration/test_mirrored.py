"""Regional clusters linked by the mirror (``sim up --mode mirrored``): a cluster of 1 in eu-central-1
(active) and of 3 in eu-west-1 (passive), whose leader runs the inbound mirror under the mirror lock,
all over TLS (``--tls``: client certificates required, the ``-ssl`` records).
Writes cross; killing the passive leader moves the mirror to the new leader with no change lost or
repeated; a switchover makes eu-west-1 active, eu-central-1's leader then mirrors from it, and eu-west-1's
leader keeps the write record naming its members."""

from __future__ import annotations

import json
import math
import os
import threading
import time

import pytest

from appliance.adapters.etcd.errors import EtcdError, EtcdFailure
from appliance.model.keys import HEARTBEAT_KEY, prefix_end
from appliance.rules import records
from appliance.sim import mirrored
from tests.integration.conftest import Sim, run_cli, wait_until

pytestmark = pytest.mark.timeout(420)

ACTIVE, PASSIVE = "eu-central-1", "eu-west-1"


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    """The mirrored simulator shared by this module's tests, in their order (the last switches over)."""
    sim = Sim(tmp_path_factory.mktemp("mirrored"))
    try:
        # Agents cycling every 2 s (5 by default) react sooner: the suite's time, not the behaviour.
        sim.up("1,3", regions=f"{ACTIVE},{PASSIVE}", mode="mirrored", timeout=150, agent_env=("LOOP_INTERVAL=2",),
               tls=True)
        yield sim
    finally:
        sim.down()


def client(sim: Sim, region: str, user: str = "client"):
    return mirrored.client(sim.state, region, user)


def versions(sim: Sim, region: str, prefix: bytes) -> dict[bytes, tuple[bytes, int]]:
    """key -> (value, version) under ``prefix`` in ``region``'s cluster."""
    page = client(sim, region).range(prefix, prefix_end(prefix))
    return {kv.key: (kv.value, kv.version) for kv in page.kvs}


def holder(sim: Sim, region: str = PASSIVE) -> str | None:
    return mirrored.mirror_state(sim.state, region)["mirror_lock_holder"]


def test_writes_in_the_active_region_appear_in_the_passive_one(linked):
    status = linked.status_all()
    assert status["mode"] == "mirrored" and status["healthy"], status["reason"]
    regions = status["regions"]
    assert (regions[ACTIVE]["mode"], regions[PASSIVE]["mode"]) == ("active", "passive")
    assert (regions[ACTIVE]["stack"], regions[PASSIVE]["stack"]) == (f"etcd-{ACTIVE}", f"etcd-{PASSIVE}")
    assert [len(regions[r]["instances"]) for r in (ACTIVE, PASSIVE)] == [1, 3]
    # The passive cluster's leader holds the mirror lock; the active cluster runs no mirror.
    leader = next(i["id"] for i in regions[PASSIVE]["instances"] if i["leader"])
    assert regions[PASSIVE]["mirror_lock_holder"] == leader and regions[ACTIVE]["mirror_lock_holder"] is None
    assert linked.agent_status(leader)["mirroring_from"] == ACTIVE
    client(linked, ACTIVE).put("/config/greeting", "hello")
    wait_until(lambda: client(linked, PASSIVE).get("/config/greeting"), 15, "the write in the passive cluster")
    with pytest.raises(EtcdError, match="permission denied"):
        client(linked, PASSIVE).put("/config/greeting", "written in the passive region")
    # Two clusters, not one: their members never meet.
    assert client(linked, ACTIVE).member_list().cluster_id != client(linked, PASSIVE).member_list().cluster_id
    # The passive cluster's heartbeat is the active one's, brought by the mirror: it keeps advancing.
    reader = client(linked, PASSIVE)
    first = float(reader.get(HEARTBEAT_KEY)[0])
    wait_until(lambda: float(reader.get(HEARTBEAT_KEY)[0]) > first, 10, "the active heartbeat in eu-west-1")
    # The passive leader's agent exports the lag of the mirror it runs; an agent that runs none says NaN; the active
    # leader's heartbeat is fresh, and the passive leader's age stays fresh too (the mirror carries the heartbeat).
    wait_until(lambda: 0 <= linked.metric(leader, "etcd_appliance_mirror_lag_seconds") < 10 or None, 20,
               "the mirror's lag on the passive leader's agent")
    assert 0 <= linked.metric(leader, "etcd_appliance_mirror_lag_revisions") < 1000
    follower = next(i["id"] for i in regions[PASSIVE]["instances"] if not i["leader"])
    assert math.isnan(linked.metric(follower, "etcd_appliance_mirror_lag_seconds"))
    active_leader = regions[ACTIVE]["instances"][0]["id"]
    assert 0 <= linked.metric(active_leader, "etcd_appliance_heartbeat_age_seconds") < 5
    assert 0 <= linked.metric(leader, "etcd_appliance_heartbeat_age_seconds") < 5
    shown = run_cli("status", "--sim", "--state-dir", linked.state_dir, "--region", PASSIVE, "--credentials",
                    linked.state["credentials_file"], timeout=60)
    assert shown.returncode == 0 and "mode: passive since revision" in shown.stdout, shown.stdout + shown.stderr


def test_killing_the_passive_leader_moves_the_mirror_with_no_change_lost_or_repeated(linked):
    first = holder(linked)
    assert first is not None
    stop, written, failures = threading.Event(), [0], []
    active = client(linked, ACTIVE)

    def write():
        # Paced (about 100 puts a second) and bounded in count and time.
        deadline = time.monotonic() + 180
        while not stop.wait(0.01) and written[0] < 20000 and time.monotonic() < deadline:
            try:
                active.put(f"/config/kill/k{written[0] % 10}", str(written[0]))
                written[0] += 1
            except EtcdFailure as exc:
                failures.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_until(lambda: written[0] > 50, 30, "the first writes")
        assert linked.cli("terminate", first).returncode == 0
        wait_until(lambda: (holder(linked) or first) != first, 30, "the mirror lock to pass to the new leader")
        before = written[0]
        wait_until(lambda: written[0] > before + 50, 30, "writes after the takeover")
    finally:
        stop.set()
        writer.join(10)
    assert not failures, failures[:3]
    new = holder(linked)
    assert f"took the mirror lock /__appliance/locks/mirror as {new}" in linked.agent_log(new)
    # A key's version counts its puts since creation: a change applied twice would raise it, one
    # lost would lower it (or leave an older value).
    wait_until(lambda: versions(linked, PASSIVE, b"/config/kill/") == versions(linked, ACTIVE, b"/config/kill/")
               or None, 30, "the passive cluster to hold every write, once")
    assert sum(v for _, v in versions(linked, ACTIVE, b"/config/kill/").values()) == written[0]
    linked.wait_healthy(90)  # the replacement joined: the next test starts from full size


def published(sim: Sim, region: str) -> bool | None:
    """True once the region's client SRV record names exactly its instances (the write record copies it)."""
    zone = sim.state["hosted_zone"]
    srv = sim.records().get((records.client_srv_name(f"etcd-{region}.{zone}", tls=True), "SRV"), [])
    instances = sim.status_all()["regions"][region]["instances"]
    return sorted(v.split()[-1] for v in srv) == sorted(f"{i['id']}.etcd-{region}.{zone}" for i in instances) or None


def write_record_follows(sim: Sim) -> bool | None:
    """True when the write record equals eu-west-1's client record."""
    zone, found = sim.state["hosted_zone"], sim.records()
    return found.get((f"_etcd-client-ssl-rw._tcp.etcd.{zone}", "SRV")) == found[
        (records.client_srv_name(f"etcd-{PASSIVE}.{zone}", tls=True), "SRV")] or None


@pytest.mark.extended  # make test: test_switchover.py runs every step, its undo and its failures on real servers
def test_a_switchover_makes_the_passive_region_active_and_the_mirror_turns_around(linked):
    state = linked.state
    for n in range(20):
        client(linked, ACTIVE).put(f"/config/before/{n}", str(n))
    env = {**os.environ, "AWS_ENDPOINT_URL": state["aws_endpoint"], "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": ACTIVE}
    zone = state["hosted_zone"]
    done = run_cli("switchover", "--from", ",".join(mirrored.endpoints(state, ACTIVE)),
                   "--to", ",".join(mirrored.endpoints(state, PASSIVE)), "--prefix", "/config/",
                   "--credentials", state["credentials_file"], "--hosted-zone", zone,
                   "--write-name", f"etcd.{zone}", "--to-domain", f"etcd-{PASSIVE}.{zone}", *linked.tls_flags(),
                   env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: reverse-mirror" in done.stdout and "switched over" in done.stdout
    # Every write made in the old active region is in the new one, which now takes writes...
    assert len(versions(linked, PASSIVE, b"/config/before/")) == 20
    client(linked, PASSIVE).put("/config/after", "written in eu-west-1")
    # ...and the old one's leader mirrors them back by itself, while refusing client writes.
    wait_until(lambda: client(linked, ACTIVE).get("/config/after"), 20, "the write in eu-central-1")
    with pytest.raises(EtcdError, match="permission denied"):
        client(linked, ACTIVE).put("/config/after", "written in the old active region")
    modes = {r: part["mode"] for r, part in linked.status_all()["regions"].items()}
    assert modes == {ACTIVE: "passive", PASSIVE: "active"}
    assert holder(linked, ACTIVE) is not None
    # eu-west-1's leader stops its mirror within a cycle of seeing its cluster active.
    wait_until(lambda: holder(linked, PASSIVE) is None or None, 20, "eu-west-1's mirror to stop")
    # The write record names the new active cluster's members (the switchover copied its client record;
    # its leader keeps it equal to that record, which may still have been following the last replacement).
    wait_until(lambda: write_record_follows(linked), 30, "the write record to name eu-west-1's members")
    # Between switchovers the active cluster's leader keeps the write record: a replacement there shows.
    # First the replacement of the previous test must have joined: a second member lost while the first
    # is still missing would be 2 of 3, a quorum loss.
    wait_until(lambda: linked.status_all()["regions"][PASSIVE]["healthy"], 90, "eu-west-1 at full size")
    gone = next(i["id"] for i in linked.status_all()["regions"][PASSIVE]["instances"] if not i["leader"])
    assert linked.cli("terminate", gone).returncode == 0
    wait_until(lambda: (lambda part: part["healthy"] and gone not in {i["id"] for i in part["instances"]})(
        linked.status_all()["regions"][PASSIVE]) or None, 90, "eu-west-1 healed", interval=1)
    wait_until(lambda: published(linked, PASSIVE), 60, "eu-west-1's records to name the replacement")
    wait_until(lambda: write_record_follows(linked), 30, "the write record to follow")
    client(linked, PASSIVE).put("/config/after-replacement", "x")
    wait_until(lambda: client(linked, ACTIVE).get("/config/after-replacement"), 20, "a write after the replacement")
    with open(state["credentials_file"]) as f:
        secrets = list(json.load(f).values())
    logs = [linked.agent_log(i) for i in linked.state["instances"]]
    assert not [s for s in secrets for text in logs if s in text], "a password reached an agent's (or mirror's) log"


# An extended test (`make test-all`): tests/integration/test_recovery.py restores a cluster without users in
# `make test`; this one shows that users, roles and the mode come back with the snapshot.
@pytest.mark.extended
def test_every_instance_of_an_authenticated_cluster_lost_comes_back_with_its_mode_and_users(linked):
    """All of eu-west-1's instances vanish: the snapshot restored holds its mode (taken since the mode
    changed), its users and its data; every member serves the client user's token (a joiner that caught
    up from a snapshot of etcd 3.5.1 rejects tokens until restarted, which its agent does)."""
    part = wait_until(lambda: (p := linked.status_all()["regions"][PASSIVE])["healthy"] and p, 90, "eu-west-1 healthy")
    mode = part["mode"]
    old = [i["id"] for i in part["instances"]]
    writable = PASSIVE if mode == "active" else ACTIVE  # the switchover test may have run before
    client(linked, writable).put("/config/before-the-loss", "kept")
    wait_until(lambda: client(linked, PASSIVE).get("/config/before-the-loss"), 30, "the write in eu-west-1")
    assert run_cli("backup", "--sim", "--state-dir", linked.state_dir, "--region", PASSIVE).returncode == 0
    for instance_id in old:
        assert linked.cli("terminate", instance_id).returncode == 0
    part = wait_until(lambda: (p := linked.status_all()["regions"][PASSIVE])["healthy"]
                      and not set(old) & {i["id"] for i in p["instances"]} and p, 150, "eu-west-1 restored")
    assert part["mode"] == mode
    for instance in part["instances"]:  # a member its agent restarts for its tokens is down for a moment
        one = mirrored.client(linked.state, PASSIVE, "client")
        one.endpoints = [instance["client_url"]]
        wait_until(lambda one=one: served(one), 30, f"{instance['id']} to serve the client user")
    logs = "".join(linked.agent_log(i["id"]) for i in part["instances"])
    assert "RECOVERY THAT MAY LOSE WRITES: restored" in logs
    assert "still rejects the tokens" not in logs


def served(one) -> bool:
    try:
        return one.get("/config/before-the-loss") == (b"kept", 0)
    except EtcdFailure:
        return False
