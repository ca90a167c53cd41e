"""An operator's restore request and the agent's answer, as files beside the data directory.

``etcd.py restore`` never touches the data directory or etcd itself: the agent supervises both.
It checks the snapshot, then leaves a request beside the data directory
(``<DATA_DIR>.restore-request.json``); the agent's next cycle decides on it
(:func:`appliance.rules.recovery.decide_request`), carries it out or refuses it, and writes
the outcome to ``<DATA_DIR>.restore-result.json``, which the command waits for.
"""

from __future__ import annotations

import json
import os

from appliance.adapters.etcd.data_dir import write_json
from appliance.model.observation import RestoreRequest


def request_path(data_dir: str) -> str:
    return data_dir.rstrip("/") + ".restore-request.json"


def result_path(data_dir: str) -> str:
    return data_dir.rstrip("/") + ".restore-result.json"


def spool_dir(data_dir: str) -> str:
    """Where snapshots are spooled (on the data directory's disk, which has room for one)."""
    return data_dir.rstrip("/") + ".snapshots"


def write_request(data_dir: str, source: str, request_id: str) -> None:
    """Leave a restore request for the agent (replacing an older result)."""
    if os.path.exists(result_path(data_dir)):
        os.unlink(result_path(data_dir))
    write_json(request_path(data_dir), {"source": source, "id": request_id})


def read_request(data_dir: str) -> RestoreRequest | None:
    """The pending request, None if there is none (or it cannot be read: it is then answered as refused)."""
    try:
        with open(request_path(data_dir)) as f:
            return RestoreRequest(str(json.load(f)["source"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return RestoreRequest("unreadable request")


def finish(data_dir: str, ok: bool, message: str) -> None:
    """Answer the pending request: the outcome for the waiting command, and the request removed."""
    try:
        with open(request_path(data_dir)) as f:
            request = json.load(f)
        request_id = str(request.get("id", "")) if isinstance(request, dict) else ""
    except (OSError, ValueError, RecursionError):
        request_id = ""
    write_json(result_path(data_dir), {"id": request_id, "ok": ok, "message": message})
    if os.path.exists(request_path(data_dir)):
        os.unlink(request_path(data_dir))


def read_result(data_dir: str, request_id: str) -> dict | None:
    """The agent's answer to request ``request_id``, None while there is none."""
    try:
        with open(result_path(data_dir)) as f:
            result = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    return result if isinstance(result, dict) and result.get("id") == request_id else None
