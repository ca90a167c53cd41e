"""A mirrored simulator: one cluster per region, the first active, the others passive, linked by the mirror.

``sim up --mode mirrored`` does what an operator does once the regional stacks run:
``cluster-mode`` on each cluster (authentication on, the mode record), after which
the passive cluster's leader starts the inbound mirror by itself.
"""

from __future__ import annotations

import time

from appliance.adapters.credentials import load_credentials
from appliance.adapters.etcd import locks
from appliance.adapters.etcd.auth import admin_client, read_mode
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.model.keys import MIRROR_LOCK_KEY, position_key
from appliance.model.modes import Mode
from appliance.replication.modes import set_mode
from appliance.sim import aws, state, view


def endpoints(sim_state: dict, region: str) -> list[str]:
    """The client URLs of ``region``'s instances (its cluster's members once healthy)."""
    facts = aws.stack_regions(sim_state)[region]
    return [state.client_url(sim_state, i["private_ip"], view.CLIENT_PORT)
            for i in aws.group_instances(aws.clients(sim_state["aws_endpoint"], region), facts["asg"], region)]


def set_modes(sim_state: dict, timeout: float = 5.0) -> dict[str, str]:
    """The first region's cluster active, every other passive (``cluster-mode``); region -> what was done.

    Raises:
        EtcdFailure: a cluster refused or did not answer.
    """
    credentials = load_credentials(sim_state["credentials_file"])
    prefix = sim_state["mirror_prefix"].encode()
    done = {}
    for n, region in enumerate(aws.stack_regions(sim_state)):
        mode = Mode.ACTIVE if n == 0 else Mode.PASSIVE
        steps, _ = set_mode(endpoints(sim_state, region), credentials, mode, prefix, timeout,
                                   state.tls_files(sim_state))
        done[region] = "; ".join(steps)
    return done


def mirror_state(sim_state: dict, region: str, timeout: float = 1.0) -> dict:
    """One region's cluster as the mirror sees it: {"mode", "mirror_lock_holder", "position"} (None where
    etcd did not answer; position: the inbound mirror's, a source revision)."""
    client = admin_client(endpoints(sim_state, region), load_credentials(sim_state["credentials_file"]),
                                 timeout, state.tls_files(sim_state))
    try:
        mode, _ = read_mode(client)
        found = client.get(position_key(sim_state["mirror_prefix"].encode()))
        return {"mode": mode.value, "mirror_lock_holder": locks.holder(client, MIRROR_LOCK_KEY),
                "position": int(found[0]) if found else None}
    except EtcdFailure:
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
                      credentials=load_credentials(sim_state["credentials_file"])[user],
                      tls=state.tls_files(sim_state))
