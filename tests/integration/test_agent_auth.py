"""The agents with etcd's authentication on (``APPLIANCE_CREDENTIALS_FILE``): the appliance keeps healing.

``cluster-mode`` turns authentication on under running agents; from then on every request
needs a user. The agents authenticate as ``appliance`` (the root role), so a terminated
instance is still removed and its replacement added (MemberRemove and MemberAdd need root),
the leader keeps writing the heartbeat, and no password reaches an agent's log. ``etcd.py status``
shows the members with their regions and the mode (with a user; without one, the mode is unknown).

The same agents have ``DNS_SERVICE_NAME=config``: the leader also publishes the read record
``_etcd-client._tcp.config.<zone>`` for its region, a latency copy of its client SRV record.
"""

from __future__ import annotations

import json

import pytest

from appliance.adapters import credentials as access
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdError
from appliance.model.keys import HEARTBEAT_KEY
from appliance.rules import records
from tests.integration.conftest import SIM_DOMAIN, run_cli, wait_until

# An extended test since test_mirrored.py runs clusters with authentication on (modes set under running agents,
# a member replaced, the heartbeat, the read record, no password in a log); this one keeps the anonymous
# status view and the single-region read record for `make test-all`.
pytestmark = [pytest.mark.timeout(420), pytest.mark.extended]  # test_mirrored.py: authenticated clusters


def test_a_cluster_with_authentication_on_heals_and_keeps_its_heartbeat(sim_factory, tmp_path):
    path = str(tmp_path / "credentials.json")
    users = access.create_credentials(path)
    sim = sim_factory()
    sim.up(3, agent_env=(f"APPLIANCE_CREDENTIALS_FILE={path}", "DNS_SERVICE_NAME=config"))
    done = run_cli("cluster-mode", "--endpoints", sim.endpoints(), "--credentials", path, "--prefix", "/app/",
                   "active", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    endpoints = sim.endpoints().split(",")
    shown = run_cli("status", "--sim", "--state-dir", sim.state_dir, "--credentials", path, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "mode: active since revision" in shown.stdout and shown.stdout.count(sim.state["region"]) == 3, shown.stdout
    # Without a user, etcd still answers the member list and each member's status, but not the mode.
    anonymous = run_cli("status", "--sim", "--state-dir", sim.state_dir, "--json", timeout=60)
    assert anonymous.returncode == 0, anonymous.stdout + anonymous.stderr
    seen = json.loads(anonymous.stdout)
    assert seen["mode"].startswith("unknown") and len(seen["members"]) == 3, seen["mode"]
    with pytest.raises(EtcdError, match="user name is empty"):
        EtcdClient(endpoints, timeout=3).put("/app/anonymous", "refused")
    appliance = EtcdClient(endpoints, timeout=3, credentials=users["appliance"])

    def beat() -> float:
        found = appliance.get(HEARTBEAT_KEY)
        return float(found[0]) if found else 0.0

    first = beat()
    wait_until(lambda: beat() > first, 10, "the leader's heartbeat with authentication on")

    gone = sim.non_leader()["id"]
    done = sim.cli("terminate", gone)
    assert done.returncode == 0, done.stdout + done.stderr
    healed = wait_until(lambda: (lambda s: s if s["healthy"] and gone not in {i["id"] for i in s["instances"]}
                                 else None)(sim.status()), 120, "a replacement member", interval=1)
    names = {m.name for m in appliance.member_list().members}
    assert gone not in names and names == {i["id"] for i in healed["instances"] if i["member"]}, names
    later = beat()
    wait_until(lambda: beat() > later, 10, "the heartbeat after the replacement")
    read = records.read_record_name("config", sim.state["hosted_zone"])
    client = records.client_srv_name(SIM_DOMAIN)

    def read_record_follows():
        zone = sim.aws("route53").list_resource_record_sets(HostedZoneId=sim.state["hosted_zone_id"])
        sets = {(r["Name"], r["Type"], r.get("Region", "")): sorted(v["Value"] for v in r["ResourceRecords"])
                for r in zone["ResourceRecordSets"]}
        wanted = sorted(f"1 1 2379 {i}.{SIM_DOMAIN}" for i in names)
        return sets.get((client, "SRV", "")) == wanted and sets.get((read, "SRV", sim.state["region"])) == wanted
    wait_until(read_record_follows, 30, f"{read} ({sim.state['region']}) to list the members")
    with open(path) as f:
        secrets = list(json.load(f).values())
    logs = [sim.agent_log(i["id"]) for i in healed["instances"]]
    assert not [s for s in secrets for text in logs if s in text], "a password reached an agent's log"
