"""The etcd data directory: whether it holds a member's data, which member's, and setting it aside.

The marker file (``appliance-member.json`` in the data directory) records which
member id the data belongs to, so that the agent can tell "my data, restart with
it" from "data of a member the cluster has since removed".
"""

from __future__ import annotations

import json
import os
import shutil

from appliance.model.members import LocalData

MARKER = "appliance-member.json"


def read_local_data(data_dir: str) -> LocalData:
    """Inspect ``data_dir``: a WAL under ``member/wal`` means etcd has data there."""
    wal = os.path.join(data_dir, "member", "wal")
    has_data = os.path.isdir(wal) and any(name.endswith(".wal") for name in os.listdir(wal))
    member_id = None
    try:
        with open(os.path.join(data_dir, MARKER)) as f:
            member_id = int(json.load(f)["member_id"], 16)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return LocalData(has_data=has_data, member_id=member_id if has_data else None)


def write_json(path: str, content: dict) -> None:
    """Write ``content`` as JSON to ``path`` atomically and durably (a sibling file, fsync, rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(content, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_marker(data_dir: str, member_id: int, cluster_id: int | None = None) -> None:
    """Record (atomically) that ``data_dir`` belongs to ``member_id``."""
    os.makedirs(data_dir, exist_ok=True)
    write_json(os.path.join(data_dir, MARKER), {"member_id": format(member_id, "x"),
                                                "cluster_id": format(cluster_id, "x") if cluster_id else None})


def set_aside(data_dir: str) -> str | None:
    """Move an unusable data directory to ``<data_dir>.previous`` (replacing an older one).

    One copy is kept for forensics rather than deleted outright; disk use stays bounded.
    Returns the new path, or None if there was nothing to move.
    """
    if not os.path.exists(data_dir):
        return None
    previous = data_dir.rstrip("/") + ".previous"
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(data_dir, previous)
    return previous
