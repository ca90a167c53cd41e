"""The etcd process: its command always states the quota, and a real child gets exactly the ETCD_* variables it is
handed (the agent's own ETCD_* and ETCDCTL_* never)."""

import os
import time
from unittest import mock

from appliance.adapters.etcd.process import EtcdProcess, EtcdUrls, child_environment, etcd_command


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_command_always_states_the_quota():
    urls = EtcdUrls.for_ip("10.0.1.4")
    assert _flag(etcd_command("etcd", "i-1", "/data", urls, None, "new", "t"), "--quota-backend-bytes") \
        == str(2 * 1024 ** 3)  # etcd's own default, stated
    command = etcd_command("etcd", "i-1", "/data", urls, None, "new", "t", quota_backend_bytes=8 * 1024 ** 3)
    assert _flag(command, "--quota-backend-bytes") == "8589934592"


def test_the_child_environment_drops_etcd_s_and_etcdctl_s_variables_and_adds_exactly_the_given_ones():
    environ = {"PATH": "/bin", "ETCD_DATA_DIR": "/x", "ETCDCTL_API": "2", "ETCD_BINARY": "/opt/etcd",
               "ETCD_HEARTBEAT_INTERVAL": "999"}
    assert child_environment(environ, (("ETCD_HEARTBEAT_INTERVAL", "250"), ("ETCD_ELECTION_TIMEOUT", "2500"))) == {
        "PATH": "/bin", "ETCD_HEARTBEAT_INTERVAL": "250", "ETCD_ELECTION_TIMEOUT": "2500"}
    assert child_environment(environ) == {"PATH": "/bin"}


def test_a_real_child_gets_the_etcd_environment(tmp_path):
    out = tmp_path / "seen"
    script = f'echo "$ETCD_HEARTBEAT_INTERVAL/${{ETCD_DATA_DIR:-unset}}/${{ETCDCTL_API:-unset}}" > {out}'
    etcd = EtcdProcess()
    with mock.patch.dict(os.environ, {"ETCD_DATA_DIR": "/x", "ETCDCTL_API": "2"}):
        etcd.start(["sh", "-c", script], environment=(("ETCD_HEARTBEAT_INTERVAL", "250"),))
    try:
        etcd.proc.wait(10)
    finally:
        etcd.stop(1)
    for _ in range(50):  # bounded: the shell has exited, the file is written
        if out.exists():
            break
        time.sleep(0.1)
    assert out.read_text() == "250/unset/unset\n"


def test_every_start_of_the_agent_passes_the_quota_and_the_etcd_environment():
    # The one starter the actuator and the recoveries share (appliance.agent.actuator.EtcdStarter).
    from appliance.adapters.metrics import AgentMetrics
    from appliance.agent.actuator import EtcdStarter
    from appliance.agent.status import StatusDocument
    from appliance.model.settings import AgentSettings

    class Recorder:
        def start(self, command, environment=()):
            self.command, self.environment = command, environment

    settings = AgentSettings("/data", "etcd", "etcd", 2378, 2379, 2380, 2381, 300, 5, 30, 3, 15, "INFO",
                             quota_backend_bytes=4 * 1024 ** 3, etcd_environment=(("ETCD_HEARTBEAT_INTERVAL", "250"),))
    etcd = Recorder()
    status = StatusDocument("i-1", "eu-central-1", ("eu-central-1",), False, "3.5.1", AgentMetrics())
    EtcdStarter(settings, "i-1", EtcdUrls.for_ip("10.0.1.4"), etcd, status)(None, "existing", force_new_cluster=True)
    assert _flag(etcd.command, "--quota-backend-bytes") == "4294967296" and "--force-new-cluster" in etcd.command
    assert etcd.environment == (("ETCD_HEARTBEAT_INTERVAL", "250"),)
