"""The credentials file: the etcd users' passwords, JSON ``{user: password}``, mode 0600.

Every problem with the file is its own error, so that the operator reads which one it is: missing,
not a regular file, unreadable, readable by others, not UTF-8 text, not JSON, not an object of user
name to password, or without the user asked for.
"""

from __future__ import annotations

import json
import os
import secrets
import stat

from appliance.model.errors import ConfigError
from appliance.model.keys import Credentials
from appliance.model.modes import USERS

MAX_BYTES = 64 * 1024  # a file of a few users' passwords; anything larger is not one
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class CredentialsFileError(ConfigError):
    """The credentials file cannot be used. ``problem`` says why, without the flag or path (exit code 2).

    Args:
        source: how the user named the file (``--credentials``, ``APPLIANCE_CREDENTIALS_FILE``).
    """

    def __init__(self, source: str, path: str, problem: str):
        super().__init__(f"{source} {path}: {problem}")
        self.problem = problem


def create_credentials(path: str, source: str = "--credentials") -> dict[str, Credentials]:
    """Write a new credentials file (JSON ``{user: password}``, mode 0600, never overwritten).

    Raises:
        CredentialsFileError: the file exists or cannot be written.
    """
    passwords = {user: secrets.token_urlsafe(24) for user in USERS}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CredentialsFileError(source, path, f"cannot create it ({exc.strerror})") from None
    with os.fdopen(fd, "w") as f:
        json.dump(passwords, f)
    return {user: Credentials(user, password) for user, password in passwords.items()}


def _read(path: str, source: str) -> bytes:
    try:
        # O_NONBLOCK: a named pipe in its place must not stall the program; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise CredentialsFileError(source, path, "does not exist") from None
    except OSError as exc:
        raise CredentialsFileError(source, path, f"cannot be read ({exc.strerror})") from None
    except ValueError:
        raise CredentialsFileError(source, path, "is not a path") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CredentialsFileError(source, path, "is not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsFileError(source, path, f"is readable by others (mode {stat.S_IMODE(mode):o}); "
                                                     "chmod 600 it")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CredentialsFileError(source, path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise CredentialsFileError(source, path, f"is larger than {MAX_BYTES // 1024} KiB: not a credentials file")
    return data


def load_credentials(path: str, source: str = "--credentials") -> dict[str, Credentials]:
    """Read a credentials file written by :func:`create_credentials` (or by hand, same shape).

    Args:
        source: how the user named the file, for the error.

    Raises:
        CredentialsFileError: one of the problems in this module's docstring, each with its own message.
    """
    data = _read(path, source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsFileError(source, path, "is not UTF-8 text") from None
    try:
        passwords = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the decoder goes
        reason = getattr(exc, "msg", "nested too deeply")
        raise CredentialsFileError(source, path, f"is not JSON ({reason})") from None
    if not isinstance(passwords, dict):
        kind = _JSON_KINDS.get(type(passwords), "value")
        raise CredentialsFileError(source, path, f"holds a JSON {kind}, not an object of user name to password")
    bad = sorted(str(user) for user, password in passwords.items() if not isinstance(password, str) or not password)
    if bad:
        raise CredentialsFileError(source, path, f"gives {bad[0]!r} a password that is not a non-empty string")
    return {user: Credentials(user, password) for user, password in passwords.items()}


def credentials_for(path: str, user: str, source: str = "--credentials") -> Credentials:
    """One user's credentials from the file at ``path``.

    Raises:
        CredentialsFileError: as :func:`load_credentials`, or the file has no password for ``user``.
    """
    found = load_credentials(path, source).get(user)
    if found is None:
        raise CredentialsFileError(source, path, f"has no password for the user {user!r}")
    return found
