"""Setting a cluster's mode: the users and roles, authentication on, the permissions, then the mode record.

The order is the rule (docs/design.md, "Modes are etcd's own permissions"): permissions before
the mode record, so that every client write the cluster accepted has a lower revision than
the record, and authentication only once every user the appliance needs exists.
"""

from __future__ import annotations

from appliance.adapters.etcd.auth import admin_client, authentication_on
from appliance.adapters.etcd.client import EtcdClient
from appliance.model.keys import MODE_KEY, Credentials
from appliance.model.modes import USERS, Mode
from appliance.model.tls import TlsFiles
from appliance.rules.modes import role_permissions


def ensure_users(admin: EtcdClient, credentials: dict[str, Credentials]) -> list[str]:
    """Create the users and roles that are missing and grant the users their roles; returns what it did.

    Existing users keep their passwords (an operator may have changed them on purpose).
    """
    done = []
    for role in ("mirror", "client"):
        if admin.role_permissions(role) is None:
            admin.role_add(role)
            done.append(f"role {role} added")
    for user, role in USERS.items():
        roles = admin.user_roles(user)
        if roles is None:
            admin.user_add(user, credentials[user].password)
            done.append(f"user {user} added")
            roles = ()
        if role not in roles:
            admin.user_grant_role(user, role)
            done.append(f"user {user} granted the {role} role")
    return done


def apply_mode(admin: EtcdClient, mode: Mode, prefix: bytes) -> int:
    """Give the roles the permissions of ``mode``, then record the mode at :data:`MODE_KEY`.

    Permissions come first, so that every client write the cluster accepted has a
    revision below the mode record's: the returned revision (of that record) is the
    last one a mirror must apply before the cluster counts as passive.

    Raises:
        EtcdFailure.
    """
    for role, wanted in role_permissions(mode, prefix).items():
        current = admin.role_permissions(role) or ()
        for permission in wanted:
            if permission not in current:
                admin.role_grant(role, permission)  # replaces the permission on the same range
    return admin.put(MODE_KEY, mode.value)


def set_mode(endpoints: list[str] | tuple[str, ...], credentials: dict[str, Credentials], mode: Mode,
             prefix: bytes, timeout: float = 5.0, tls: TlsFiles | None = None) -> tuple[list[str], int]:
    """Make the cluster ``mode`` for clients of ``prefix``: users and roles first, authentication
    on, then the permissions and the mode record. Idempotent. Returns (what was done, revision).
    ``tls``: CA and client certificate for ``https`` endpoints.

    Raises:
        EtcdFailure.
    """
    admin = admin_client(endpoints, credentials, timeout, tls)
    enabled = authentication_on(admin)
    done = ensure_users(admin, credentials)
    if not enabled:
        # Before AuthEnable, so that no client loses access in between; etcd ignores permissions until then.
        for role, wanted in role_permissions(mode, prefix).items():
            for permission in wanted:
                admin.role_grant(role, permission)
        admin.auth_enable()
        done.append("authentication enabled")
        admin = admin_client(endpoints, credentials, timeout, tls)  # a fresh client authenticates now
    revision = apply_mode(admin, mode, prefix)
    done.append(f"mode {mode.value} (revision {revision})")
    return done, revision
