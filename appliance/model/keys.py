"""etcd's key-value data types, and the keys the appliance reserves for itself.

Everything under :data:`APPLIANCE_PREFIX` and :data:`REPLICATION_PREFIX` is the appliance's own
(its locks, mode, heartbeat, a mirror's position): never a client's prefix, never mirrored.
"""

from __future__ import annotations

import base64
import dataclasses

APPLIANCE_PREFIX = b"/__appliance/"
REPLICATION_PREFIX = b"/__replication/"
BOOKKEEPING = (REPLICATION_PREFIX, APPLIANCE_PREFIX)  # never mirrored, never deleted by a mirror's copy

MODE_KEY = "/__appliance/mode"
HEARTBEAT_KEY = "/__appliance/heartbeat"
HOUSEKEEPING_KEY = "/__appliance/locks/housekeeping"
UPGRADE_KEY = "/__appliance/locks/upgrade"
MIRROR_LOCK_KEY = "/__appliance/locks/mirror"
# The maintenance's records: the last compaction, and each member's last defragmentation (one key per
# member, deleted with the member).
MAINTENANCE_PREFIX = "/__appliance/maintenance/"
COMPACTION_KEY = MAINTENANCE_PREFIX + "compacted"
DEFRAG_PREFIX = MAINTENANCE_PREFIX + "defragmented/"
DEFRAG_RUNNING_KEY = MAINTENANCE_PREFIX + "defragmenting"  # the member (hex) being defragmented, bound to a lease


def position_key(dest_prefix: bytes) -> bytes:
    """Where a mirror into ``dest_prefix`` keeps its position (the mirror's default)."""
    return REPLICATION_PREFIX + dest_prefix


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that makes a range cover every key starting with ``prefix`` (etcd's rule:
    the prefix with its last byte below 0xff incremented; a NUL byte for all keys)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\0"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def prefixes_overlap(a: bytes, b: bytes) -> bool:
    """True when some key starts with both prefixes (one prefix starts with the other)."""
    return a.startswith(b) or b.startswith(a)


def reserved_overlap(prefix: bytes) -> bool:
    """True when keys under ``prefix`` may be the appliance's own (:data:`BOOKKEEPING`): ``prefix`` is inside
    one of them, or one of them is inside ``prefix`` (``/``, ``/__app``)."""
    return any(prefixes_overlap(prefix, reserved) for reserved in BOOKKEEPING)


@dataclasses.dataclass(frozen=True)
class KeyValue:
    """One key as etcd stores it; revisions are store revisions, ``lease`` 0 when none."""

    key: bytes
    value: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0

    @classmethod
    def from_json(cls, item: dict) -> "KeyValue":
        """From etcd's JSON gateway (mvccpb.KeyValue: base64 key and value, 64-bit integers as strings)."""
        return cls(base64.b64decode(item.get("key") or ""), base64.b64decode(item.get("value") or ""),
                   int(item.get("create_revision", 0)), int(item.get("mod_revision", 0)),
                   int(item.get("version", 0)), int(item.get("lease", 0)))


@dataclasses.dataclass(frozen=True)
class RangePage:
    """One Range answer: the keys (sorted by key), whether more follow, and the store revision read at."""

    kvs: tuple[KeyValue, ...]
    more: bool
    revision: int


@dataclasses.dataclass(frozen=True)
class Permission:
    """One key permission of a role: ``kind`` READ, WRITE or READWRITE on ``[key, range_end)``
    (``range_end`` empty: the single key ``key``)."""

    kind: str
    key: bytes
    range_end: bytes = b""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """An etcd user name and password (etcd's own authentication). The password never appears in repr."""

    user: str
    password: str = dataclasses.field(repr=False)
