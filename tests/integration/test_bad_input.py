"""Bad input: exit code 2 and a one-line message naming the cause, before anything starts."""

import os
import socket

from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import run_cli


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"DATA_DIR": str(tmp_path / "data"), "ETCD_BINARY": etcd_binary(),
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    env.update(extra)
    return env


def test_malformed_setting_names_the_variable(tmp_path):
    done = run_cli("run", env=agent_env(tmp_path, GRACE_PERIOD="five minutes"), timeout=60)
    assert done.returncode == 2
    assert "GRACE_PERIOD: is malformed (got 'five minutes')" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_malformed_flag_names_the_flag(tmp_path):
    done = run_cli("run", "--status-port", "99999", env=agent_env(tmp_path), timeout=60)
    assert done.returncode == 2
    assert "--status-port: must be a TCP port between 1 and 65535 (got '99999')" in done.stderr


def test_missing_etcd_binary(tmp_path):
    done = run_cli("run", env=agent_env(tmp_path, ETCD_BINARY="/opt/nowhere/etcd"), timeout=60)
    assert done.returncode == 2
    assert "ETCD_BINARY: is not an executable file" in done.stderr


def test_unreachable_metadata_service_says_so_after_retries(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}/"
    done = run_cli("run", env=agent_env(tmp_path, AWS_EC2_METADATA_SERVICE_ENDPOINT=endpoint), timeout=120)
    assert done.returncode == 2
    assert f"instance metadata service at {endpoint} unreachable after 5 attempts" in done.stderr
    assert not (tmp_path / "data").exists()


def test_sim_commands_without_a_simulator(tmp_path):
    done = run_cli("sim", "status", "--state-dir", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert f"no simulator runs in {tmp_path}" in done.stderr
    done = run_cli("sim", "up", "--instances", "4", "--state-dir", str(tmp_path), timeout=60)
    assert done.returncode == 2 and "--instances: must be 1, 3, 5 or 7" in done.stderr


def test_an_etcd_binary_without_a_version_exits_2(tmp_path):
    done = run_cli("run", env=agent_env(tmp_path, ETCD_BINARY="/bin/true"), timeout=60)
    assert done.returncode == 2
    assert "ETCD_BINARY: /bin/true --version printed no etcd version" in done.stderr
    assert not os.path.exists(tmp_path / "data")


def mirror(*args: str):
    return run_cli("mirror", *args, timeout=60)


def test_mirror_bad_input_exits_2_naming_the_flag():
    base = ["--source-prefix", "/a/", "--dest-prefix", "/b/"]
    done = mirror("--source", "127.0.0.1:2379", "--dest", "http://127.0.0.2:2379", *base)
    assert done.returncode == 2 and "--source: must be comma-separated client URLs" in done.stderr
    done = mirror("--source", "http://127.0.0.1:2379", "--dest", "http://127.0.0.1:2379",
                  "--source-prefix", "/a/", "--dest-prefix", "/a/b/")
    assert done.returncode == 2 and "overlap on the same cluster" in done.stderr
    done = mirror("--source", "http://127.0.0.1:2379", "--dest", "http://127.0.0.2:2379", "--max-txn-ops", "1",
                  *base)
    assert done.returncode == 2 and "--max-txn-ops: must be a whole number of operations from 2 to 100000" in done.stderr


def test_mirror_metrics_port_taken_exits_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = mirror("--source", "http://127.0.0.1:1", "--dest", "http://127.0.0.2:1", "--source-prefix", "/a/",
                      "--dest-prefix", "/b/", "--metrics-port", str(port))
    assert done.returncode == 2 and "--metrics-port: cannot serve on" in done.stderr
