"""``etcd.py mirror``: copy every change under a source prefix to a destination prefix, until stopped.

Exit codes: 0 stopped by a signal (or before it took the lock); 1 a runtime failure; 2 bad
flags; 3 the source compacted past the position; 4 ``--strict`` found a difference; 5 another
mirror writes the position; 15 the mirror lock was lost (see :mod:`appliance.model.exit_codes`).
"""

from __future__ import annotations

import argparse
import logging
import signal

from appliance.adapters import logs
from appliance.adapters.etcd.client import EtcdClient
from appliance.commands import flags, values
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.model.keys import BOOKKEEPING, HEARTBEAT_KEY, MODE_KEY, REPLICATION_PREFIX, prefixes_overlap

log = logging.getLogger("mirror")


class _Interrupted(BaseException):
    """SIGTERM or SIGINT: not an Exception, so that no retry loop swallows it."""


def add_parser(sub) -> None:
    """Add ``mirror`` to the top-level subparsers."""
    mirror = sub.add_parser("mirror", help="copy every change under a source prefix to a destination prefix")
    flags.add_pair_flags(mirror)
    mirror.add_argument("--max-txn-ops", type=values.flag(values.whole(2, 100000, "operations")), default=128,
                        help="operations per destination transaction; etcd's --max-txn-ops (default 128)")
    mirror.add_argument("--strict", action="store_true",
                        help="check that the destination held what the source held before each change; exit 4 if not")
    mirror.add_argument("--no-leases", action="store_true", help="write keys without leases")
    mirror.add_argument("--mode-key", default=MODE_KEY,
                        help="source key holding its mode; mirroring pauses, once caught up, while it says "
                             "passive (empty: always mirror)")
    mirror.add_argument("--heartbeat-key", default=HEARTBEAT_KEY,
                        help="source key holding the time (Unix seconds) the source side writes every second")
    mirror.add_argument("--reload", action="store_true", help="copy again (diff and apply) before following changes")
    mirror.add_argument("--auto-reload", action="store_true",
                        help="copy again by itself when the source compacted past the position (else exit 3)")
    mirror.add_argument("--metrics-port", type=values.flag(values.PORT), help="serve Prometheus metrics on this port")
    mirror.add_argument("--metrics-address", default="127.0.0.1", type=values.flag(values.IP_ADDRESS),
                        help="address for --metrics-port")
    mirror.add_argument("--lock-holder", help="take the mirror lock in the destination under this name (e.g. the "
                        "instance id) and write only while holding it; a second mirror waits (see --lock-ttl)")
    mirror.add_argument("--lock-ttl", type=values.flag(values.whole(2, 60, "seconds")), default=5,
                        help="seconds the mirror lock outlives a holder that stopped renewing it (default 5)")
    mirror.add_argument("--idle-timeout", type=values.flag(values.seconds(1, 3600)), default=60.0,
                        help="seconds without any watch message before reconnecting (default 60)")
    mirror.set_defaults(handler=cmd_mirror)


def settings_from(args: argparse.Namespace):
    """Validated :class:`~appliance.replication.mirror_settings.MirrorSettings` from parsed flags.

    Raises:
        ConfigError: naming the flag.
    """
    from appliance.replication.mirror_settings import MirrorSettings

    if not 2 <= args.max_txn_ops <= 100000:
        raise ConfigError(f"--max-txn-ops: must be between 2 and 100000 (got {args.max_txn_ops})")
    if args.timeout <= 0 or args.idle_timeout <= 0:
        raise ConfigError("--timeout and --idle-timeout must be positive seconds")
    source, dest = flags.urls(args.source, "--source"), flags.urls(args.dest, "--dest")
    source_prefix = flags.prefix(args.source_prefix, "--source-prefix")
    dest_prefix = flags.prefix(args.dest_prefix, "--dest-prefix")
    if dest_prefix.startswith(BOOKKEEPING):
        raise ConfigError(f"--dest-prefix: must not be inside {' or '.join(p.decode() for p in BOOKKEEPING)} (the "
                          f"destination's own mode, locks and positions) (got {args.dest_prefix!r})")
    if set(source) & set(dest) and prefixes_overlap(source_prefix, dest_prefix):
        # The same check runs on the clusters' ids once connected: two URLs can reach one cluster.
        raise ConfigError("--source-prefix and --dest-prefix overlap on the same cluster: the mirror would copy "
                          "its own writes")
    position = flags.position_key_of(args)
    if not position.startswith(REPLICATION_PREFIX) or position == REPLICATION_PREFIX:
        # Only there is it safe from the copy, which deletes destination keys the source lacks.
        raise ConfigError(f"--position-key: must be a key under {REPLICATION_PREFIX.decode()} "
                          f"(got {position.decode()!r})")
    if args.lock_holder is not None and not (0 < len(args.lock_holder) <= 128 and args.lock_holder.isprintable()):
        raise ConfigError(f"--lock-holder: must be 1 to 128 printable characters (got {args.lock_holder[:80]!r})")
    return MirrorSettings(source=source, source_prefix=source_prefix, dest=dest, dest_prefix=dest_prefix,
                          position_key=position, max_txn_ops=args.max_txn_ops, strict=args.strict,
                          leases=not args.no_leases, mode_key=args.mode_key.encode(), reload=args.reload,
                          auto_reload=args.auto_reload, heartbeat_key=args.heartbeat_key.encode(),
                          copy_heartbeat=not set(source) & set(dest),
                          credentials=flags.user_credentials(args.credentials, "mirror"),
                          tls=flags.tls_from(args), timeout=args.timeout, idle_timeout=args.idle_timeout)


def cmd_mirror(args: argparse.Namespace) -> int:
    """``etcd.py mirror``: runs until SIGTERM (exit 0); see the module's exit codes."""
    from appliance.replication.metrics import MirrorMetrics
    from appliance.replication.mirror import Mirror
    from appliance.replication.mirror_lock import MirrorLock
    from appliance.replication.mirror_settings import MirrorStopped

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
                return ExitCode.OK
            mirror.fences, mirror.fences_hold = [lock.fence()], lock.still_ours
        log.info("mirroring %s %r -> %s %r (position %s)", ",".join(settings.source),
                 settings.source_prefix.decode(), ",".join(settings.dest), settings.dest_prefix.decode(),
                 settings.position_key.decode())
        mirror.run()
        if lock is not None and lock.lost:
            raise MirrorStopped(f"stopped: {lock.lost}", ExitCode.MIRROR_LOCK_LOST)
        return ExitCode.OK
    except _Interrupted:
        log.info("stopped by signal at position %s", mirror.position)
        return ExitCode.OK
    except MirrorStopped as exc:
        log.error("%s", exc)
        raise
    finally:
        if lock is not None:
            lock.release()
