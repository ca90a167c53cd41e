"""Every exit code of every ``etcd.py`` command, one meaning each: the one table.

docs/reference.md, "Exit codes", holds the same table (a test compares them).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes; :data:`MEANINGS` says what each means."""

    OK = 0
    FAILURE = 1
    CONFIG = 2
    MIRROR_COMPACTED = 3
    MIRROR_STRICT = 4
    MIRROR_POSITION_TAKEN = 5
    SWITCHOVER_ROLLED_BACK = 6
    SWITCHOVER_INCOMPLETE = 7
    SWITCHOVER_UNDO_FAILED = 8
    STATUS_DEGRADED = 9
    GUARD_STALE = 10
    GUARD_STOPPED = 11
    BACKUP_FAILED = 12
    SNAPSHOT_CORRUPT = 13
    RESTORE_REFUSED = 14
    MIRROR_LOCK_LOST = 15
    MIRROR_CLUSTER_CHANGED = 16
    GUARD_NOT_EXECUTABLE = 127


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILURE: "a runtime failure after start-up, logged with its reason",
    ExitCode.CONFIG: "bad input (a setting, a flag, AWS access, the metadata service, a precondition), "
                     "detected before anything is started or changed",
    ExitCode.MIRROR_COMPACTED: "mirror: the source compacted past the stored position (run it with --reload)",
    ExitCode.MIRROR_STRICT: "mirror --strict: a destination key differed from the source's before a change",
    ExitCode.MIRROR_POSITION_TAKEN: "mirror: another mirror writes the same position",
    ExitCode.SWITCHOVER_ROLLED_BACK: "switchover: a step failed; every step taken was undone",
    ExitCode.SWITCHOVER_INCOMPLETE: "switchover: NEW is active, steps remain (printed with their remedies)",
    ExitCode.SWITCHOVER_UNDO_FAILED: "switchover: a step failed and so did undoing it (the modes are printed)",
    ExitCode.STATUS_DEGRADED: "status: the cluster is degraded (a member unhealthy or silent, or no leader)",
    ExitCode.GUARD_STALE: "guard: the data was stale at the start; COMMAND was not started",
    ExitCode.GUARD_STOPPED: "guard: the data went stale while COMMAND ran; COMMAND was stopped",
    ExitCode.BACKUP_FAILED: "backup: no snapshot was taken or uploaded",
    ExitCode.SNAPSHOT_CORRUPT: "restore: the snapshot asked for does not check (corrupt)",
    ExitCode.RESTORE_REFUSED: "restore: the agent refused the request (e.g. a member sees a leader)",
    ExitCode.MIRROR_LOCK_LOST: "mirror --lock-holder: the mirror lock is no longer this mirror's",
    ExitCode.MIRROR_CLUSTER_CHANGED: "mirror: the source or the destination is no longer the cluster it "
                                     "checked at the start (another cluster answers at its URLs)",
    ExitCode.GUARD_NOT_EXECUTABLE: "guard: COMMAND cannot be executed",
}
"""One line per code, as the reference docs and the commands' help say it."""
