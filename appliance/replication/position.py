"""The mirror's position: the last source revision applied, stored as decimal text in the destination."""

from __future__ import annotations

from appliance.adapters.etcd.client import EtcdClient
from appliance.model.exit_codes import ExitCode
from appliance.replication.mirror_settings import MirrorStopped

MAX_REVISION = 2**63 - 1  # etcd's revisions are int64


def parse_revision(value: bytes) -> int | None:
    """``value`` as a revision (decimal ASCII digits, 0 to 2**63-1), None when it is anything else."""
    text = value.strip()
    if not text.isdigit() or len(text) > 19 or not text.isascii():
        return None
    revision = int(text)
    return revision if revision <= MAX_REVISION else None


def read_position(dest: EtcdClient, key: bytes) -> int | None:
    """The position stored at ``key`` in the destination, None when absent.

    Raises:
        MirrorStopped: the key holds something that is not a revision (exit code 2): the mirror cannot
            know what it applied, and overwriting the key would hide another writer's.
        EtcdFailure: the destination did not answer.
    """
    found = dest.get(key.decode())
    if not found:
        return None
    position = parse_revision(found[0])
    if position is None:
        raise MirrorStopped(f"the position at {key.decode(errors='replace')} holds {found[0][:40]!r}, not a revision: "
                            "delete that key to copy again from the start", ExitCode.CONFIG)
    return position
