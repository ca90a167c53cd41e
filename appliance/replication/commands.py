"""``etcd.py mirror``, ``verify``, ``cluster-mode`` and ``switchover``: flags, validation, exit codes."""

from __future__ import annotations

import argparse
import logging
import signal

from appliance import logs
from appliance.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from appliance.etcd import tls
from appliance.etcd.client import EtcdClient, EtcdError, EtcdUnavailable

log = logging.getLogger("mirror")


class _Interrupted(BaseException):
    """SIGTERM or SIGINT: not an Exception, so that no retry loop swallows it."""


def _urls(text: str, flag: str) -> tuple[str, ...]:
    urls = tuple(u.strip().rstrip("/") for u in text.split(",") if u.strip())
    if not urls or not all(u.startswith(("http://", "https://")) for u in urls):
        raise ConfigError(f"{flag}: expected comma-separated client URLs such as http://10.0.1.4:2379 (got {text!r})")
    return urls


def _prefix(text: str, flag: str) -> bytes:
    if not text:
        raise ConfigError(f"{flag}: must not be empty (use / for every key)")
    return text.encode()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="source (active) cluster's client URLs, comma-separated")
    p.add_argument("--source-prefix", required=True, help="the prefix to mirror, e.g. /config/")
    p.add_argument("--dest", required=True, help="destination (passive) cluster's client URLs")
    p.add_argument("--dest-prefix", required=True, help="where the source prefix lands, e.g. /config/")
    p.add_argument("--position-key", help="where the position is stored in the destination "
                   "(default /__replication/<dest-prefix>)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per etcd request (default 5)")
    p.add_argument("--credentials", help="credentials file (see cluster-mode): authenticate as the user mirror")
    tls.add_flags(p)


def add_parsers(sub) -> None:
    """Add ``mirror`` and ``verify`` to the top-level subparsers."""
    mirror = sub.add_parser("mirror", help="copy every change under a source prefix to a destination prefix")
    _common(mirror)
    mirror.add_argument("--max-txn-ops", type=int, default=128,
                        help="operations per destination transaction; etcd's --max-txn-ops (default 128)")
    mirror.add_argument("--strict", action="store_true",
                        help="check that the destination held what the source held before each change; exit 4 if not")
    mirror.add_argument("--no-leases", action="store_true", help="write keys without leases")
    mirror.add_argument("--mode-key", default="/__appliance/mode",
                        help="source key holding its mode; mirroring pauses, once caught up, while it says "
                             "passive (empty: always mirror)")
    mirror.add_argument("--heartbeat-key", default="/__appliance/heartbeat",
                        help="source key holding the time (Unix seconds) the source side writes every second")
    mirror.add_argument("--reload", action="store_true", help="copy again (diff and apply) before following changes")
    mirror.add_argument("--auto-reload", action="store_true",
                        help="copy again by itself when the source compacted past the position (else exit 3)")
    mirror.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    mirror.add_argument("--metrics-address", default="127.0.0.1", help="address for --metrics-port")
    mirror.add_argument("--lock-holder", help="take the mirror lock in the destination under this name (e.g. the "
                        "instance id) and write only while holding it; a second mirror waits (see --lock-ttl)")
    mirror.add_argument("--lock-ttl", type=int, default=5,
                        help="seconds the mirror lock outlives a holder that stopped renewing it (default 5)")
    mirror.add_argument("--idle-timeout", type=float, default=60.0,
                        help="seconds without any watch message before reconnecting (default 60)")
    mirror.set_defaults(handler=cmd_mirror)
    verify = sub.add_parser("verify", help="compare a source prefix with its mirror; exit 1 on any difference")
    _common(verify)
    verify.set_defaults(handler=cmd_verify)
    mode = sub.add_parser("cluster-mode", help="show or set a cluster's mode: active (clients read and write the "
                          "prefix) or passive (clients only read it)")
    mode.add_argument("--endpoints", required=True, help="the cluster's client URLs, comma-separated")
    mode.add_argument("--credentials", required=True,
                      help="credentials file (JSON user -> password, mode 0600); created if missing")
    mode.add_argument("--prefix", required=True, help="the clients' prefix, e.g. /config/")
    mode.add_argument("--timeout", type=float, default=5.0, help="seconds per etcd request (default 5)")
    tls.add_flags(mode)
    mode.add_argument("mode", nargs="?", choices=("active", "passive"), help="the mode to set (none: show it)")
    mode.set_defaults(handler=cmd_cluster_mode)
    from appliance.replication import switchover_command
    switchover_command.add_parser(sub)


def _position_key(args) -> bytes:
    return (args.position_key or f"/__replication/{args.dest_prefix}").encode()


def settings_from(args):
    """Validated :class:`MirrorSettings` from parsed flags. Raises ConfigError naming the flag."""
    from appliance.replication.mirror import MirrorSettings

    if not 2 <= args.max_txn_ops <= 100000:
        raise ConfigError(f"--max-txn-ops: must be between 2 and 100000 (got {args.max_txn_ops})")
    if args.timeout <= 0 or args.idle_timeout <= 0:
        raise ConfigError("--timeout and --idle-timeout must be positive seconds")
    source, dest = _urls(args.source, "--source"), _urls(args.dest, "--dest")
    source_prefix, dest_prefix = _prefix(args.source_prefix, "--source-prefix"), _prefix(args.dest_prefix,
                                                                                         "--dest-prefix")
    if set(source) & set(dest) and (source_prefix.startswith(dest_prefix) or dest_prefix.startswith(source_prefix)):
        raise ConfigError("--source-prefix and --dest-prefix overlap on the same cluster: the mirror would copy "
                          "its own writes")
    return MirrorSettings(source=source, source_prefix=source_prefix, dest=dest, dest_prefix=dest_prefix,
                          position_key=_position_key(args), max_txn_ops=args.max_txn_ops, strict=args.strict,
                          leases=not args.no_leases, mode_key=args.mode_key.encode(), reload=args.reload,
                          auto_reload=args.auto_reload, heartbeat_key=args.heartbeat_key.encode(),
                          copy_heartbeat=not set(source) & set(dest), credentials=mirror_credentials(args),
                          tls=tls.from_flags(args), timeout=args.timeout, idle_timeout=args.idle_timeout)


def mirror_credentials(args):
    """The user ``mirror``'s credentials from ``--credentials``, None without it. Raises ConfigError."""
    from appliance.cluster.access import credentials_for

    return credentials_for(args.credentials, "mirror") if args.credentials else None


def cmd_mirror(args) -> int:
    """``etcd.py mirror``: runs until SIGTERM (exit 0); 3 compacted, 4 strict, 5 another mirror,
    9 the mirror lock lost."""
    from appliance.replication.metrics import MirrorMetrics
    from appliance.replication.mirror import EXIT_LOCK_LOST, Mirror, MirrorStopped
    from appliance.replication.mirror_lock import MirrorLock

    settings = settings_from(args)
    if not 2 <= args.lock_ttl <= 60:
        raise ConfigError(f"--lock-ttl: must be whole seconds between 2 and 60 (got {args.lock_ttl})")
    logs.setup()
    try:
        metrics = MirrorMetrics(args.metrics_port, args.metrics_address) if args.metrics_port else None
    except OSError as exc:
        raise ConfigError(f"--metrics-port: cannot serve on {args.metrics_address}:{args.metrics_port}: {exc}") \
            from None
    mirror = Mirror(settings, metrics)

    def interrupt(*_):
        # Raising here ends a blocking watch read at once; the destination holds the truth
        # (position and writes commit together), so stopping at any point loses nothing.
        mirror.stop()
        raise _Interrupted()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupt)
    lock = None
    if args.lock_holder:
        lock = MirrorLock(EtcdClient(settings.dest, timeout=settings.timeout, credentials=settings.credentials,
                                     tls=settings.tls),
                          args.lock_holder, args.lock_ttl, on_lost=lambda _: mirror.stop())
    try:
        if lock is not None:
            if not lock.acquire(mirror.stop_requested):
                return EXIT_OK
            mirror.fences, mirror.fences_hold = [lock.fence()], lock.still_ours
        log.info("mirroring %s %r -> %s %r (position %s)", ",".join(settings.source),
                 settings.source_prefix.decode(), ",".join(settings.dest), settings.dest_prefix.decode(),
                 settings.position_key.decode())
        mirror.run()
        if lock is not None and lock.lost:
            raise MirrorStopped(f"stopped: {lock.lost}", EXIT_LOCK_LOST)
        return EXIT_OK
    except _Interrupted:
        log.info("stopped by signal at position %s", mirror.position)
        return EXIT_OK
    except MirrorStopped as exc:
        log.error("%s", exc)
        raise
    finally:
        if lock is not None:
            lock.release()


def cmd_verify(args) -> int:
    """``etcd.py verify``: prints the comparison; exit 0 if equal, 1 if not (or a side did not answer)."""
    from appliance.replication.verify import verify

    source, dest = _urls(args.source, "--source"), _urls(args.dest, "--dest")
    try:
        credentials, files = mirror_credentials(args), tls.from_flags(args)
        report = verify(EtcdClient(source, timeout=args.timeout, credentials=credentials, tls=files),
                        EtcdClient(dest, timeout=args.timeout, credentials=credentials, tls=files),
                        _prefix(args.source_prefix, "--source-prefix"), _prefix(args.dest_prefix, "--dest-prefix"),
                        _position_key(args))
    except (EtcdError, EtcdUnavailable) as exc:
        print(f"etcd.py: error: cannot compare: {exc}")
        return EXIT_FAILURE
    print("\n".join(report.lines()))
    return EXIT_OK if report.equal else EXIT_FAILURE


def cmd_cluster_mode(args) -> int:
    """``etcd.py cluster-mode``: prints the mode (and what was changed); 0, 1 (etcd failed), 2 (bad input)."""
    import os

    from appliance.cluster import access

    endpoints = _urls(args.endpoints, "--endpoints")
    prefix = _prefix(args.prefix, "--prefix")
    files = tls.from_flags(args)
    if args.mode and not os.path.exists(args.credentials):
        credentials = access.create_credentials(args.credentials)
        print(f"created the credentials file {args.credentials} (mode 0600): keep it secret, give it to both regions")
    else:
        credentials = access.load_credentials(args.credentials)
    missing = sorted(set(access.USERS) - set(credentials))
    if missing:
        raise ConfigError(f"--credentials {args.credentials}: no password for {', '.join(missing)}")
    try:
        if args.mode:
            done, _ = access.set_mode(endpoints, credentials, access.Mode(args.mode), prefix, args.timeout, files)
            print("; ".join(done))
        client = access.admin_client(endpoints, credentials, args.timeout, files)
        mode, revision = access.read_mode(client)
        enforced = access.mode_of(client.role_permissions("client"), prefix) if access.authentication_on(client) \
            else None
    except (EtcdError, EtcdUnavailable) as exc:
        print(f"etcd.py: error: {exc}")
        return EXIT_FAILURE
    may = "read and write" if mode is access.Mode.ACTIVE else "read, not write,"
    print(f"{mode.value} since revision {revision}: clients {may} {prefix.decode()}"
          + ("" if enforced is mode else f" (but the client role says {enforced.value if enforced else 'nothing'} "
                                         "there: run cluster-mode again)"))
    return EXIT_OK
