"""A mirrored simulator: one cluster per region, the first active, the others passive, linked by the mirror.

``sim up --mode mirrored`` does what an operator does once the regional stacks run:
``cluster-mode`` on each cluster (authentication on, the mode record), after which
the passive cluster's leader starts the inbound mirror by itself.
"""

from __future__ import annotations

import time

from appliance.cluster import access, locks
from appliance.cluster.access import Mode
from appliance.etcd.client import EtcdClient, EtcdError, EtcdUnavailable
from appliance.replication.mirror_lock import MIRROR_LOCK_KEY
from appliance.replication.switchover import position_key
from appliance.sim import aws, state, view


def endpoints(sim_state: dict, region: str) -> list[str]:
    """The client URLs of ``region``'s instances (its cluster's members once healthy)."""
    facts = aws.stack_regions(sim_state)[region]
    return [state.client_url(sim_state, i["private_ip"], view.CLIENT_PORT)
            for i in aws.group_instances(aws.clients(sim_state["aws_endpoint"], region), facts["asg"], region)]


def set_modes(sim_state: dict, timeout: float = 5.0) -> dict[str, str]:
    """The first region's cluster active, every other passive (``cluster-mode``); region -> what was done.

    Raises:
        EtcdError, EtcdUnavailable: a cluster refused or did not answer.
    """
    credentials = access.load_credentials(sim_state["credentials_file"])
    prefix = sim_state["mirror_prefix"].encode()
    done = {}
    for n, region in enumerate(aws.stack_regions(sim_state)):
        mode = Mode.ACTIVE if n == 0 else Mode.PASSIVE
        steps, _ = access.set_mode(endpoints(sim_state, region), credentials, mode, prefix, timeout,
                                   state.tls_files(sim_state))
        done[region] = "; ".join(steps)
    return done


def mirror_state(sim_state: dict, region: str, timeout: float = 1.0) -> dict:
    """One region's cluster as the mirror sees it: {"mode", "mirror_lock_holder", "position"} (None where
    etcd did not answer; position: the inbound mirror's, a source revision)."""
    client = access.admin_client(endpoints(sim_state, region), access.load_credentials(sim_state["credentials_file"]),
                                 timeout, state.tls_files(sim_state))
    try:
        mode, _ = access.read_mode(client)
        found = client.get(position_key(sim_state["mirror_prefix"].encode()))
        return {"mode": mode.value, "mirror_lock_holder": locks.holder(client, MIRROR_LOCK_KEY),
                "position": int(found[0]) if found else None}
    except (EtcdError, EtcdUnavailable):
        return {"mode": None, "mirror_lock_holder": None, "position": None}


def wait_for_mirror(sim_state: dict, timeout: float) -> str | None:
    """Wait until every passive cluster's inbound mirror holds a position; None when all do, else
    what is missing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    missing = ""
    while time.monotonic() < deadline:
        states = {r: mirror_state(sim_state, r) for r in aws.stack_regions(sim_state)}
        missing = ", ".join(r for r, s in states.items() if s["mode"] != Mode.ACTIVE.value and s["position"] is None)
        if not missing:
            return None
        time.sleep(0.5)
    return f"no inbound mirror position in {missing} after {timeout:.0f} s"


def client(sim_state: dict, region: str, user: str = "client", timeout: float = 3.0) -> EtcdClient:
    """A client of ``region``'s cluster as ``user`` (the credentials file's)."""
    return EtcdClient(endpoints(sim_state, region), timeout=timeout,
                      credentials=access.load_credentials(sim_state["credentials_file"])[user],
                      tls=state.tls_files(sim_state))
