"""The etcd roles' permissions in each mode (pure).

The mode is enforced by etcd's own authentication, not by the appliance (docs/design.md,
"Modes are etcd's own permissions"): the ``client`` role may read and write the client
prefix on the active cluster and only read it on the passive one, so a passive cluster
refuses client writes while the mirror (user ``mirror``) keeps writing.

========== ========== ======================================================
user       role       may
========== ========== ======================================================
root       root       everything (etcd's own; kept for emergencies)
appliance  root       membership changes, locks, heartbeat, modes
mirror     mirror     read and write every key (it writes a prefix, its
                      position and the heartbeat, and reads the mode)
client     client     the client prefix (read-write or read), and read
                      ``/__appliance/`` (the heartbeat the guard reads)
========== ========== ======================================================

Clients authenticate with a user and password (the ``client`` user, or users of their own
granted the ``client`` role): etcd 3.5's JSON gateway refuses a client certificate with a
CommonName once authentication is on, so the appliance's certificates carry none. Source of
the rules: etcd's authentication guide (docs v3.5 "Role-based access control").
"""

from __future__ import annotations

from appliance.model.keys import APPLIANCE_PREFIX, Permission, prefix_end
from appliance.model.modes import Mode

ALL_KEYS = Permission("READWRITE", b"\0", b"\0")  # from the smallest key to the end of the keyspace


def client_permission(mode: Mode, prefix: bytes) -> Permission:
    """The ``client`` role's permission on ``prefix`` in ``mode`` (pure)."""
    return Permission("READWRITE" if mode is Mode.ACTIVE else "READ", prefix, prefix_end(prefix))


def role_permissions(mode: Mode, prefix: bytes) -> dict[str, tuple[Permission, ...]]:
    """Every role the appliance manages, with exactly the permissions it should hold (pure)."""
    return {
        "mirror": (ALL_KEYS,),
        "client": (client_permission(mode, prefix),
                   Permission("READ", APPLIANCE_PREFIX, prefix_end(APPLIANCE_PREFIX))),
    }


def mode_of(permissions: tuple[Permission, ...] | None, prefix: bytes) -> Mode | None:
    """The mode the ``client`` role's permissions express on ``prefix``, None if neither (pure)."""
    for permission in permissions or ():
        if (permission.key, permission.range_end) == (prefix, prefix_end(prefix)):
            return Mode.ACTIVE if permission.kind == "READWRITE" else Mode.PASSIVE
    return None
