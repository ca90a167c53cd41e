"""``etcd.py switchover``: flags, the Route53 write record (see :mod:`appliance.replication.switchover`).

Exit codes: 0 done (or already done); 2 a precondition does not hold (nothing changed); 6 a step
failed and every step was undone; 7 NEW is active, steps remain; 8 undoing failed.
"""

from __future__ import annotations

import argparse
import logging
import time

from appliance.adapters import credentials as credentials_file
from appliance.commands import flags, values
from appliance.commands.names import DNS_NAME, HOSTED_ZONE
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.model.records import Change

log = logging.getLogger("switchover")

INSYNC_TIMEOUT = 120.0  # seconds to wait for Route53 to report the write record INSYNC


def add_parser(sub) -> None:
    """Add ``switchover`` to the top-level subparsers."""
    p = sub.add_parser("switchover", help="make the passive cluster the active one, step by verified step")
    p.add_argument("--from", dest="old", required=True, help="the active cluster's client URLs, comma-separated")
    p.add_argument("--to", dest="new", required=True, help="the passive cluster's client URLs")
    p.add_argument("--prefix", required=True, help="the clients' prefix in the active cluster, e.g. /config/")
    p.add_argument("--to-prefix", help="the same prefix in the passive cluster (default: --prefix)")
    p.add_argument("--credentials", required=True, help="the credentials file both clusters use (see cluster-mode)")
    p.add_argument("--catch-up-timeout", type=values.flag(values.seconds(0.1, 3600)), default=30.0,
                   help="seconds to wait for the mirror to apply the last write before undoing (default 30)")
    p.add_argument("--reverse-timeout", type=values.flag(values.seconds(0.1, 3600)), default=30.0,
                   help="seconds to wait for the reverse mirror to follow (default 30)")
    p.add_argument("--timeout", type=values.flag(values.REQUEST_SECONDS), default=5.0,
                   help="seconds per etcd request (default 5)")
    p.add_argument("--hosted-zone", type=values.flag(HOSTED_ZONE),
                   help="Route53 zone of the write record (none: leave DNS alone)")
    p.add_argument("--write-name", type=values.flag(DNS_NAME),
                   help="the write record's domain: _etcd-client-rw._tcp.<write-name> (with --hosted-zone)")
    p.add_argument("--to-domain", type=values.flag(DNS_NAME),
                   help="NEW's discovery domain, whose _etcd-client SRV the write record copies (with --hosted-zone)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and check the preconditions only")
    flags.add_tls_flags(p)
    p.set_defaults(handler=cmd_switchover)


def write_record_repointer(zone_name: str, write_name: str, new_domain: str, timeout: float, session=None,
                           tls: bool = False):
    """Check that the zone and NEW's SRV record exist (ConfigError naming the flag if not), and return a function
    that points ``_etcd-client-rw._tcp.<write_name>`` at the SRV targets of
    ``_etcd-client._tcp.<new_domain>`` (UPSERT, then GetChange until INSYNC) and says what it did.
    With ``tls`` the names are ``_etcd-client-ssl-rw`` and ``_etcd-client-ssl``.
    ``session``: a boto3 session (default: a new one). Calls ListHostedZonesByName,
    ListResourceRecordSets, ChangeResourceRecordSets and GetChange."""
    from appliance.adapters.aws.route53 import HostedZone
    from appliance.rules import records

    zone = HostedZone(zone_name, timeout=timeout, session=session)
    name = records.client_srv_name(new_domain, tls)

    def source_record():
        found = next((rs for rs in zone.sets_named(name, "SRV") if not rs.region), None)
        if found is None:
            raise ConfigError(f"--to-domain: {name} has no SRV record to copy")
        return found

    source_record()  # the zone and the record exist: checked before any step, in a dry run too

    def repoint() -> str:
        source = source_record()
        wanted = records.write_record(write_name, source, tls)
        change_id = zone.change([Change("UPSERT", wanted)], f"switchover to {new_domain}")
        deadline = time.monotonic() + INSYNC_TIMEOUT
        while zone.change_status(change_id) != "INSYNC":
            if time.monotonic() > deadline:
                raise TimeoutError(f"Route53 change {change_id} not INSYNC after {INSYNC_TIMEOUT:g} s")
            time.sleep(2)
        return f"{wanted.name} -> {', '.join(wanted.values)}"

    return repoint


def cmd_switchover(args: argparse.Namespace) -> int:
    """Run the switchover; see the module's exit codes."""
    from appliance.replication.switchover import Switchover, SwitchoverSettings

    old, new = flags.urls(args.old, "--from"), flags.urls(args.new, "--to")
    old_prefix = flags.client_prefix(args.prefix, "--prefix")
    new_prefix = flags.client_prefix(args.to_prefix, "--to-prefix") if args.to_prefix else old_prefix
    credentials = credentials_file.load_credentials(args.credentials)
    if "appliance" not in credentials:
        raise ConfigError(f"--credentials {args.credentials}: no password for the user appliance")
    dns_flags = (args.hosted_zone, args.write_name, args.to_domain)
    if any(dns_flags) and not all(dns_flags):
        raise ConfigError("--hosted-zone, --write-name and --to-domain go together")
    if not min(args.catch_up_timeout, args.reverse_timeout, args.timeout) > 0:
        raise ConfigError("--catch-up-timeout, --reverse-timeout and --timeout must be positive seconds")
    files = flags.tls_from(args)
    repoint = write_record_repointer(args.hosted_zone, args.write_name, args.to_domain, args.timeout,
                                     tls=files is not None) if args.hosted_zone else None
    settings = SwitchoverSettings(old=old, new=new, old_prefix=old_prefix, new_prefix=new_prefix,
                                  credentials=credentials, tls=files, catch_up_timeout=args.catch_up_timeout,
                                  reverse_timeout=args.reverse_timeout, timeout=args.timeout, write_record=repoint)
    Switchover(settings, say=lambda line: print(line, flush=True)).run(dry_run=args.dry_run)
    return ExitCode.OK
