"""Keeping a Route53 zone's record sets equal to the wanted ones, with as few Route53 calls as possible.

It reads the zone only when the wanted records changed (or every ``refresh_interval`` seconds, to
repair a hand edit), sends one ChangeResourceRecordSets batch for the difference, and sends nothing
while an earlier change is still PENDING or when nothing differs. Waiting for INSYNC spans agent
cycles (GetChange once a cycle) so that the agent loop never blocks on DNS propagation.
"""

from __future__ import annotations

import logging
import time
from typing import Mapping

from appliance.adapters.aws.route53 import HostedZone
from appliance.model.records import RecordSet
from appliance.rules import records

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 300.0   # seconds between reads of an unchanged zone (repairs hand edits)
PENDING_TIMEOUT = 600.0    # seconds after which a change still PENDING is given up and the zone re-read
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0  # seconds between attempts after Route53 failed, doubling


class RecordPublisher:
    """Keeps the zone's record sets equal to the wanted ones, with as few Route53 calls as possible.

    Args:
        zone: the hosted zone. refresh_interval: seconds between reads when nothing changed.
    """

    def __init__(self, zone: HostedZone, refresh_interval: float = REFRESH_INTERVAL):
        self.zone = zone
        self.refresh_interval = refresh_interval
        self.synced: Mapping | None = None   # what the zone was last seen (or made) to hold
        self.synced_at = -float("inf")
        self.pending: tuple[str, Mapping, float] | None = None  # (change id, wanted, sent at)
        self.failures = 0
        self.retry_at = -float("inf")

    def sync(self, domain_name: str, wanted: Mapping[tuple[str, ...], RecordSet],
             now: float | None = None, read_name: str = "", region: str = "", write_name: str = "") -> str:
        """One step towards ``wanted`` (the record sets owned under ``domain_name``, with
        ``read_name`` the read record of ``region``, with ``write_name`` the write record);
        returns what it did, as one line to log.

        Raises:
            AwsPermissionError: a Route53 call is not allowed.
            botocore.exceptions.BotoCoreError, ClientError: Route53 failed; the zone is
                read again on the next call.
        """
        now = time.monotonic() if now is None else now
        if now < self.retry_at:
            return f"Route53 failed {self.failures} times in a row: next attempt in {self.retry_at - now:.0f} s"
        try:
            outcome = self._sync(domain_name, dict(wanted), now, read_name, region, write_name)
        except Exception:
            # Trust nothing cached, and back off: a batch Route53 refuses every time (a record
            # someone else made at one of our names) must not cost two calls every cycle.
            self.synced = None
            self.failures += 1
            self.retry_at = now + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
            raise
        self.failures = 0
        return outcome

    def _sync(self, domain_name: str, wanted: dict, now: float, read_name: str, region: str,
              write_name: str) -> str:
        if self.pending is not None:
            change_id, pending_wanted, sent_at = self.pending
            status = self.zone.change_status(change_id)
            if status != "INSYNC":
                if now - sent_at < PENDING_TIMEOUT:
                    return f"change {change_id} is {status}: waiting for INSYNC"
                log.warning("Route53 change %s still %s after %.0f s: reading the zone again",
                            change_id, status, now - sent_at)
                self.pending, self.synced = None, None
            else:
                self.pending = None
                self.synced, self.synced_at = pending_wanted, now
        if wanted == self.synced and now - self.synced_at < self.refresh_interval:
            return "records up to date"
        current = self.zone.read(domain_name, lambda rs: records.owned(rs, domain_name, read_name, region, write_name),
                                 srv_names=[name for name in (read_name, write_name) if name])
        changes = records.diff(current, wanted)
        if not changes:
            self.synced, self.synced_at = wanted, now
            return "records up to date (zone read)"
        summary = ", ".join(f"{c.action} {c.record.type} {c.record.name}" for c in changes)
        change_id = self.zone.change(changes, "etcd appliance: " + summary)
        self.pending = (change_id, wanted, now)
        return f"sent change {change_id}: {summary}"
