"""What ``etcd.py mirror`` is given, and how it stops when it cannot go on safely."""

from __future__ import annotations

import dataclasses

from appliance.model.errors import ApplianceError
from appliance.model.keys import HEARTBEAT_KEY, MODE_KEY, Credentials
from appliance.model.tls import TlsFiles
from appliance.replication.keyspace import PAGE_SIZE


class MirrorStopped(ApplianceError):
    """The mirror cannot go on safely; ``exit_code`` (:class:`ExitCode`) says why."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True)
class MirrorSettings:
    """What ``etcd.py mirror`` was given. Prefixes and keys are bytes; times in seconds."""

    source: tuple[str, ...]
    source_prefix: bytes
    dest: tuple[str, ...]
    dest_prefix: bytes
    position_key: bytes
    max_txn_ops: int = 128
    strict: bool = False
    leases: bool = True
    mode_key: bytes = MODE_KEY.encode()
    reload: bool = False
    auto_reload: bool = False
    heartbeat_key: bytes = HEARTBEAT_KEY.encode()
    copy_heartbeat: bool = True
    credentials: Credentials | None = None
    tls: TlsFiles | None = None
    page_size: int = PAGE_SIZE
    timeout: float = 5.0
    idle_timeout: float = 60.0
