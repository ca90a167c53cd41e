"""Bad input: exit code 2 and a one-line message naming the cause, before anything starts."""

import os
import socket

import pytest

from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import run_cli


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETCD", "APPLIANCE_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "APPLIANCE_ETCD_BINARY": etcd_binary(),
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    env.update(extra)
    return env


def test_malformed_setting_names_the_variable(tmp_path):
    done = run_cli("run", env=agent_env(tmp_path, GRACE_PERIOD="five minutes"), timeout=60)
    assert done.returncode == 2
    assert "GRACE_PERIOD: must be a number of seconds from 0 to 86400 (got 'five minutes')" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_malformed_flag_names_the_flag(tmp_path):
    done = run_cli("run", "--status-port", "99999", env=agent_env(tmp_path), timeout=60)
    assert done.returncode == 2
    assert "--status-port: must be a TCP port from 1 to 65535 (got '99999')" in done.stderr


def _one_error_line(done, *words: str) -> None:
    """Exit 2, and stderr is exactly one line, the error, holding ``words``, with no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("etcd.py") and ": error: " in lines[0], done.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize("variable,value", [
    # Each was accepted before issue 17 and did harm: a grace period of NaN removed members at once, a NaN or
    # infinite interval spun a core for ever, a NaN or infinite timeout ended in a traceback.
    # The other settings and values are driven in-process by tests/unit/commands/test_grammar_properties.py.
    ("GRACE_PERIOD", "nan"), ("LOOP_INTERVAL", "inf"), ("REQUEST_TIMEOUT", "1e400"),
])
def test_numbers_that_are_not_finite_exit_2_in_one_line(tmp_path, variable, value):
    done = run_cli("run", env=agent_env(tmp_path, **{variable: value}), timeout=60)
    _one_error_line(done, f"{variable}: must be a number of seconds", f"(got {value!r})")
    assert not (tmp_path / "data").exists()


def test_a_named_pipe_as_a_certificate_is_refused_without_waiting(tmp_path):
    pipe = tmp_path / "ca.pem"
    os.mkfifo(pipe)  # opening it for reading would block until a writer came: for ever
    done = run_cli("run", env=agent_env(tmp_path, CLIENT_CA_FILE=str(pipe), CLIENT_CERT_FILE=str(pipe),
                                        CLIENT_KEY_FILE=str(pipe)), timeout=30)
    _one_error_line(done, "CLIENT_CA_FILE: must be a readable regular file, not a directory, pipe or device")


@pytest.mark.parametrize("content,mode,problem", [
    (b"\x00\xff\xfe binary", 0o600, "this one is not UTF-8 text"),
    (b'{"appliance": "x"}', 0o644, "this one is readable by others (mode 644); chmod 600 it"),
    (b'{"client": "x"}', 0o600, "this one has no password for the user 'appliance'"),
    (b"[1, 2]", 0o600, "this one holds a JSON array"),
])
def test_each_credentials_file_problem_is_named(tmp_path, content, mode, problem):
    path = tmp_path / "credentials.json"
    path.write_bytes(content)
    path.chmod(mode)
    done = run_cli("run", env=agent_env(tmp_path, APPLIANCE_CREDENTIALS_FILE=str(path)), timeout=60)
    _one_error_line(done, "APPLIANCE_CREDENTIALS_FILE: must be a credentials file", problem)
    assert path.read_bytes() == content and not (tmp_path / "data").exists()


@pytest.mark.parametrize("args,words", [
    (["guard", "--endpoints", "http://127.0.0.1:1", "--max-staleness", "nan", "--", "true"],
     "argument --max-staleness: must be a number of seconds"),
    (["status", "--endpoints", "http://127.0.0.1:1", "--timeout", "inf"], "argument --timeout: must be"),
    (["backup", "--endpoints", "http://127.0.0.1:1", "--timeout", "-1"], "argument --timeout: must be"),
    (["status", "--endpoints", "http://127.0.0.1:1", "--status-port", "70000"],
     "argument --status-port: must be a TCP port from 1 to 65535 (got '70000')"),
])
def test_flags_of_other_commands_exit_2_in_one_line(args, words):
    done = run_cli(*args, timeout=30)
    _one_error_line(done, words)


def test_an_etcd_flag_the_agent_sets_exits_2_in_one_line_naming_it(tmp_path):
    done = run_cli("run", env=agent_env(tmp_path, ETCD_DATA_DIR="/x"), timeout=60)
    _one_error_line(done, "ETCD_DATA_DIR is set by the agent; use DATA_DIR")
    assert "Traceback" not in done.stderr and not (tmp_path / "data").exists()


def test_missing_etcd_binary(tmp_path):
    done = run_cli("run", env=agent_env(tmp_path, APPLIANCE_ETCD_BINARY="/opt/nowhere/etcd"), timeout=60)
    assert done.returncode == 2
    assert "APPLIANCE_ETCD_BINARY: must be an executable regular file" in done.stderr


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
    done = run_cli("run", env=agent_env(tmp_path, APPLIANCE_ETCD_BINARY="/bin/true"), timeout=60)
    assert done.returncode == 2
    assert "APPLIANCE_ETCD_BINARY: /bin/true --version printed no etcd version" in done.stderr
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
    assert done.returncode == 2 and "--max-txn-ops: must be a whole number of operations from 2 to" in done.stderr


def test_mirror_metrics_port_taken_exits_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = mirror("--source", "http://127.0.0.1:1", "--dest", "http://127.0.0.2:1", "--source-prefix", "/a/",
                      "--dest-prefix", "/b/", "--metrics-port", str(port))
    assert done.returncode == 2 and "--metrics-port: cannot serve on" in done.stderr
