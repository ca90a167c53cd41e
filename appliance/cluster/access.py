"""Who may do what in a cluster: etcd users and roles, and the cluster's mode (active or passive).

The mode is enforced by etcd's own authentication, not by the appliance: the
``client`` role may read and write the client prefix on the active cluster and
only read it on the passive one, so a passive cluster refuses client writes while
the mirror (user ``mirror``) keeps writing. The mode is also recorded in
:data:`MODE_KEY`, which the agent (heartbeat only on the active cluster), the
mirror (pause while its source is passive), ``status`` and ``switchover`` read.

Users (etcd requires ``root`` before it enables authentication):

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

A client with a TLS certificate authenticates as the certificate's common name
(etcd's ``--client-cert-auth``); granting it the ``client`` role is all it needs.
Source of the rules: etcd's authentication guide (docs v3.5 "Role-based access control").
"""

from __future__ import annotations

import enum
import json
import os
import secrets
import stat

from appliance.errors import ConfigError
from appliance.etcd.client import Credentials, EtcdClient, EtcdUnavailable, Permission, prefix_end
from appliance.etcd.tls import TlsFiles

MODE_KEY = "/__appliance/mode"
APPLIANCE_PREFIX = b"/__appliance/"
USERS = {"root": "root", "appliance": "root", "mirror": "mirror", "client": "client"}
ALL_KEYS = Permission("READWRITE", b"\0", b"\0")  # from the smallest key to the end of the keyspace


class Mode(str, enum.Enum):
    ACTIVE = "active"    # clients read and write the client prefix
    PASSIVE = "passive"  # clients only read it; the mirror writes it


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


# --- the credentials file -----------------------------------------------------
def create_credentials(path: str) -> dict[str, Credentials]:
    """Write a new credentials file (JSON ``{user: password}``, mode 0600, never overwritten).

    Raises:
        ConfigError: the file exists or cannot be written.
    """
    passwords = {user: secrets.token_urlsafe(24) for user in USERS}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"--credentials {path}: cannot create it ({exc.strerror})") from None
    with os.fdopen(fd, "w") as f:
        json.dump(passwords, f)
    return {user: Credentials(user, password) for user, password in passwords.items()}


def load_credentials(path: str) -> dict[str, Credentials]:
    """Read a credentials file written by :func:`create_credentials` (or by hand, same shape).

    Raises:
        ConfigError: unreadable, readable by others than its owner, or not ``{user: password}``.
    """
    try:
        mode = os.stat(path).st_mode
        with open(path) as f:
            passwords = json.load(f)
    except OSError as exc:
        raise ConfigError(f"--credentials {path}: cannot read it ({exc.strerror})") from None
    except ValueError:
        raise ConfigError(f"--credentials {path}: not JSON") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"--credentials {path}: readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    if not isinstance(passwords, dict) or not all(isinstance(v, str) and v for v in passwords.values()):
        raise ConfigError(f"--credentials {path}: expected a JSON object of user name to password")
    return {user: Credentials(user, password) for user, password in passwords.items()}


def credentials_for(path: str, user: str) -> Credentials:
    """One user's credentials from the file at ``path``. Raises ConfigError if it lacks them."""
    found = load_credentials(path).get(user)
    if found is None:
        raise ConfigError(f"--credentials {path}: no password for the user {user!r}")
    return found


# --- setting the mode ---------------------------------------------------------
def admin_client(endpoints: list[str] | tuple[str, ...], credentials: dict[str, Credentials],
                 timeout: float, tls: TlsFiles | None = None) -> EtcdClient:
    """A client as the user ``appliance`` (over TLS with ``tls``); until authentication is on, its
    requests carry no token."""
    return EtcdClient(endpoints, timeout=timeout, credentials=credentials["appliance"], tls=tls)


def authentication_on(client: EtcdClient) -> bool:
    """Whether the cluster authenticates ``client``'s user (False: authentication is off).

    Raises:
        EtcdError: e.g. the password is not the cluster's. EtcdUnavailable: no endpoint answered.
    """
    failures = []
    for endpoint in client.endpoints:
        try:
            return bool(client.auth_headers(endpoint))
        except EtcdUnavailable as exc:
            failures.append(str(exc))
    raise EtcdUnavailable("no etcd endpoint answered: " + ", ".join(failures))


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
        EtcdError, EtcdUnavailable.
    """
    for role, wanted in role_permissions(mode, prefix).items():
        current = admin.role_permissions(role) or ()
        for permission in wanted:
            if permission not in current:
                admin.role_grant(role, permission)  # replaces the permission on the same range
    return admin.put(MODE_KEY, mode.value)


def read_mode(client: EtcdClient) -> tuple[Mode, int]:
    """(mode, revision of its record) from :data:`MODE_KEY`; a cluster without a record is active (0).

    Raises:
        ConfigError: the key holds something else than active or passive. EtcdError, EtcdUnavailable.
    """
    page = client.range(MODE_KEY.encode())
    if not page.kvs:
        return Mode.ACTIVE, 0
    value = page.kvs[0].value.decode(errors="replace")
    try:
        return Mode(value), page.kvs[0].mod_revision
    except ValueError:
        raise ConfigError(f"{MODE_KEY} holds {value!r}, neither 'active' nor 'passive'") from None


def set_mode(endpoints: list[str] | tuple[str, ...], credentials: dict[str, Credentials], mode: Mode,
             prefix: bytes, timeout: float = 5.0, tls: TlsFiles | None = None) -> tuple[list[str], int]:
    """Make the cluster ``mode`` for clients of ``prefix``: users and roles first, authentication
    on, then the permissions and the mode record. Idempotent. Returns (what was done, revision).
    ``tls``: CA and client certificate for ``https`` endpoints.

    Raises:
        EtcdError, EtcdUnavailable.
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

