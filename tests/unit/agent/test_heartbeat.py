"""The leader's heartbeat (appliance/agent/components/heartbeat.py) on a fake etcd: written only while this
member leads, in one transaction that holds off on a passive cluster, a failing stretch logged once."""

from __future__ import annotations

import base64
import logging
import time

from appliance.adapters.etcd.client import compare_value
from appliance.adapters.etcd.errors import EtcdUnavailable
from appliance.agent.components.heartbeat import Heartbeat
from appliance.model.keys import HEARTBEAT_KEY, MODE_KEY


class Etcd:
    """Answers each transaction as a passive (succeeded) or active cluster, or fails while ``down``."""

    def __init__(self):
        self.txns: list[tuple] = []
        self.passive = False
        self.down = False

    def txn(self, compare, success, failure=None):
        if self.down:
            raise EtcdUnavailable("no etcd endpoint answered")
        self.txns.append((compare, success, failure))
        return {"succeeded": self.passive}


def test_only_the_leader_writes_and_only_where_the_cluster_is_not_passive():
    etcd, leading = Etcd(), [False]
    heart = Heartbeat(etcd, lambda: leading[0])
    heart.beat()
    assert etcd.txns == []
    leading[0] = True
    heart.beat()
    (compare, success, failure), = etcd.txns
    assert compare == [compare_value(MODE_KEY, "passive")] and success == []  # passive: nothing written
    put = failure[0]["request_put"]
    assert base64.b64decode(put["key"]).decode() == HEARTBEAT_KEY
    assert abs(float(base64.b64decode(put["value"])) - time.time()) < 60  # Unix seconds, as text


def test_passive_and_failing_stretches_are_logged_once(caplog):
    etcd = Etcd()
    heart = Heartbeat(etcd, lambda: True)
    with caplog.at_level(logging.INFO, "appliance.agent.components.heartbeat"):
        etcd.passive = True
        heart.beat()
        heart.beat()
        etcd.down = True
        heart.beat()
        heart.beat()
        etcd.down, etcd.passive = False, False
        heart.beat()
    said = [r.getMessage() for r in caplog.records]
    assert said == ["heartbeat paused: this cluster is passive (the mirror brings the active one's)",
                    "heartbeat not written: no etcd endpoint answered",
                    "heartbeat resumed: this cluster is active", "heartbeat written again"]


def test_the_thread_beats_until_stopped():
    etcd = Etcd()
    heart = Heartbeat(etcd, lambda: True, interval=0.01).start()
    deadline = time.monotonic() + 5.0
    while len(etcd.txns) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    heart.stop()
    heart._thread.join(timeout=5.0)
    assert len(etcd.txns) >= 3 and not heart._thread.is_alive()
