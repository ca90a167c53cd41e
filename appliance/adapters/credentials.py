"""The credentials file: the etcd users' passwords, JSON ``{user: password}``, mode 0600."""

from __future__ import annotations

import json
import os
import secrets
import stat

from appliance.model.errors import ConfigError
from appliance.model.keys import Credentials
from appliance.model.modes import USERS


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
