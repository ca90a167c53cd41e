"""Flag helpers the commands share: client URLs, key prefixes, TLS files, credentials.

Each raises :class:`~appliance.model.errors.ConfigError` naming the flag, so that a bad value is
one line and exit 2 before anything is asked or changed.
"""

from __future__ import annotations

import argparse
import urllib.parse

from appliance.adapters.credentials import credentials_for
from appliance.adapters.etcd.tls import files_from
from appliance.commands import values
from appliance.model.errors import ConfigError
from appliance.model.keys import BOOKKEEPING, Credentials, position_key, reserved_overlap
from appliance.model.tls import FLAG_NAMES, TlsFiles


def _client_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError when it is not a number from 0 to 65535
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0 and parts.path == ""
            and not parts.query and not parts.fragment and not parts.username and url.isprintable())


def urls(text: str, flag: str) -> tuple[str, ...]:
    """Comma-separated client URLs (``http://`` or ``https://``, a host, an optional port, no path), without
    trailing slashes. Raises ConfigError naming ``flag``."""
    found = tuple(u.strip().rstrip("/") for u in text.split(",") if u.strip())
    if not found or not all(_client_url(u) for u in found):
        raise ConfigError(f"{flag}: must be comma-separated client URLs such as http://10.0.1.4:2379 "
                          f"(got {text[:200]!r})")
    return found


def prefix(text: str, flag: str) -> bytes:
    """A key prefix as bytes; "/" for every key. Raises ConfigError naming ``flag``."""
    if not text or len(text) > 1024 or not text.isprintable():
        raise ConfigError(f"{flag}: must be a key prefix of 1 to 1024 printable characters, / for every key "
                          f"(got {text[:80]!r})")
    return text.encode()


def client_prefix(text: str, flag: str) -> bytes:
    """The clients' key prefix of ``cluster-mode`` and ``switchover``: as :func:`prefix`, but never ``/`` nor
    one that overlaps the appliance's own keys. Raises ConfigError naming ``flag``."""
    found = prefix(text, flag)
    if reserved_overlap(found):
        # The mode's roles grant the client role this prefix: over /__appliance/ or /__replication/ a client
        # could set the mode, write the heartbeat the guard trusts, or move a mirror's position.
        raise ConfigError(f"{flag}: must not be / nor overlap {' or '.join(p.decode() for p in BOOKKEEPING)} "
                          f"(the clients would be granted the appliance's own keys) (got {text[:80]!r})")
    return found


def add_tls_flags(parser: argparse.ArgumentParser) -> None:
    """Add etcdctl's TLS flags (``--cacert``, ``--cert``, ``--key``) to ``parser``."""
    parser.add_argument("--cacert", help="CA bundle (PEM) that verifies the members' certificates (with --cert, "
                        "--key: speak HTTPS to the members)")
    parser.add_argument("--cert", help="client certificate (PEM) presented to the members")
    parser.add_argument("--key", help="the client certificate's private key (PEM)")


def tls_from(args: argparse.Namespace) -> TlsFiles | None:
    """:class:`TlsFiles` from the flags of :func:`add_tls_flags`, None if none is given; checked.

    Raises:
        ConfigError: only some are given, or a file is unreadable or wrong.
    """
    return files_from(args.cacert, args.cert, args.key, FLAG_NAMES)


def user_credentials(path: str | None, user: str) -> Credentials | None:
    """``user``'s credentials from the ``--credentials`` file at ``path``, None without it.

    Raises:
        ConfigError: the file is unreadable or lacks the user.
    """
    return credentials_for(path, user) if path else None


def positive(value: float, flag: str) -> float:
    """``value`` if it is a positive number of seconds. Raises ConfigError naming ``flag``."""
    if not value > 0:
        raise ConfigError(f"{flag} must be a positive number of seconds (got {value!r})")
    return value


def add_pair_flags(p: argparse.ArgumentParser) -> None:
    """The flags ``mirror`` and ``verify`` share: both clusters, both prefixes, the position key."""
    p.add_argument("--source", required=True, help="source (active) cluster's client URLs, comma-separated")
    p.add_argument("--source-prefix", required=True, help="the prefix to mirror, e.g. /config/")
    p.add_argument("--dest", required=True, help="destination (passive) cluster's client URLs")
    p.add_argument("--dest-prefix", required=True, help="where the source prefix lands, e.g. /config/")
    p.add_argument("--position-key", help="where the position is stored in the destination "
                   "(default /__replication/<dest-prefix>)")
    p.add_argument("--timeout", type=values.flag(values.REQUEST_SECONDS), default=5.0,
                   help="seconds per etcd request (default 5)")
    p.add_argument("--credentials", help="credentials file (see cluster-mode): authenticate as the user mirror")
    add_tls_flags(p)


def position_key_of(args: argparse.Namespace) -> bytes:
    """``--position-key``, or the default for ``--dest-prefix``."""
    return args.position_key.encode() if args.position_key else position_key(args.dest_prefix.encode())
