"""The JSON-gateway client and the lease lock against a real etcd process."""

from __future__ import annotations

import time

import pytest

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.adapters.etcd.locks import LeaseLock, holder
from appliance.sim.aws import free_port
from tests.integration.conftest import wait_until


def test_member_add_learner_promote_and_remove(etcd):
    client, url = etcd
    (solo,) = client.member_list().members
    learner, members = client.member_add([f"http://127.0.0.1:{free_port()}"], learner=True)
    assert learner.is_learner and learner.name == "" and len(members) == 2
    with pytest.raises(EtcdError, match="too many learner members"):
        client.member_add([f"http://127.0.0.1:{free_port()}"], learner=True)
    with pytest.raises(EtcdError, match="in sync with leader"):
        client.member_promote(learner.id)  # it never started, so it never catches up
    client.member_remove(learner.id)
    assert [m.id for m in client.member_list().members] == [solo.id]
    status = client.status(url)
    assert status.leader_id == solo.id == status.member_id and status.version.startswith("3.")


def test_unreachable_endpoint_is_unavailable_not_a_hang():
    client = EtcdClient([f"http://127.0.0.1:{free_port()}"], timeout=1)
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable):
        client.member_list()
    assert time.monotonic() - started < 5


def test_lease_lock_has_one_holder_and_compare_and_delete(etcd):
    client, _ = etcd
    first = LeaseLock(client, "/test/lock", "i-first", ttl=5)
    second = LeaseLock(client, "/test/lock", "i-second", ttl=5)
    assert first.acquire_or_renew() == "i-first"
    assert second.acquire_or_renew() == "i-first"
    assert first.acquire_or_renew() == "i-first"  # renewal keeps it
    assert not client.delete_if_value("/test/lock", "i-second")  # not the owner: nothing deleted
    assert holder(client, "/test/lock") == "i-first"
    first.release()
    assert holder(client, "/test/lock") is None
    assert second.acquire_or_renew() == "i-second"
    second.release()


def test_lock_of_a_dead_holder_expires_with_its_lease(etcd):
    client, _ = etcd
    dead = LeaseLock(client, "/test/expiring", "i-dead", ttl=5)
    assert dead.acquire_or_renew() == "i-dead"  # …and never renews again
    taker = LeaseLock(client, "/test/expiring", "i-taker", ttl=5)
    assert wait_until(lambda: taker.acquire_or_renew() == "i-taker", 15, "the lease to expire")
    taker.release()
