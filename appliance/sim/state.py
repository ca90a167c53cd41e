"""The simulator's state file (``<state-dir>/sim.json``), shared by its commands and its supervisor."""

from __future__ import annotations

import json
import os
import time

from appliance.model.tls import TlsFiles, scheme

STATE_FILE = "sim.json"


def path(state_dir: str) -> str:
    return os.path.join(state_dir, STATE_FILE)


def load(state_dir: str) -> dict | None:
    """The state written by the running supervisor, or None if there is none."""
    try:
        with open(path(state_dir)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def save(state_dir: str, state: dict) -> None:
    """Write atomically, so readers never see half a file."""
    tmp = path(state_dir) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path(state_dir))


def instance_dir(state_dir: str, instance_id: str) -> str:
    return os.path.join(state_dir, "instances", instance_id)


def lifecycle_file(state_dir: str, instance_id: str) -> str:
    return os.path.join(instance_dir(state_dir, instance_id), "target-lifecycle-state")


CREDENTIALS_FILE = "credentials.json"


def credentials_file(state_dir: str) -> str:
    """The etcd users' passwords of a mirrored simulator (see ``cluster-mode``), mode 0600."""
    return os.path.join(state_dir, CREDENTIALS_FILE)


LAUNCH_FILE = "launch.json"


def load_launch(state_dir: str) -> dict:
    """What new instances are launched with (the simulator's launch template): {"etcd_binary": path}."""
    try:
        with open(os.path.join(state_dir, LAUNCH_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def save_launch(state_dir: str, launch: dict) -> None:
    """Replace the launch settings atomically; instances already running keep theirs."""
    tmp = os.path.join(state_dir, LAUNCH_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(launch, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(state_dir, LAUNCH_FILE))


def append_record(path: str, record: dict) -> None:
    """Append ``record`` to the JSON-lines file ``path`` (one object a line; the simulator's records of
    signals and finished lifecycle actions)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_records(path: str) -> list[dict]:
    """Every object of the JSON-lines file ``path``, oldest first; [] while it does not exist."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


REQUEST_FILE = "request.json"


def submit_request(state_dir: str, kind: str, **args) -> str:
    """Ask the running supervisor to change the stacks; returns the request's id, under which the
    supervisor records "ok" or "error: …" in the state's "requests"."""
    request_id = f"{kind}-{time.time_ns()}"
    tmp = os.path.join(state_dir, REQUEST_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"id": request_id, "kind": kind, **args}, f)
    os.replace(tmp, os.path.join(state_dir, REQUEST_FILE))
    return request_id


def load_request(state_dir: str) -> dict | None:
    """The last request submitted, or None."""
    try:
        with open(os.path.join(state_dir, REQUEST_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


TLS_DIR = "tls"


def tls_files(sim_state: dict) -> TlsFiles | None:
    """The operator's CA and client certificate of a simulator started with ``--tls``, None without TLS."""
    files = sim_state.get("tls")
    return TlsFiles(files["ca_file"], files["cert_file"], files["key_file"]) if files else None


def client_url(sim_state: dict, address: str, port: int = 2379) -> str:
    """An instance's client URL: ``https://`` in a simulator started with ``--tls``."""
    return f"{scheme(tls_files(sim_state))}://{address}:{port}"
