"""How a mirror starts from its stored position (pure): copy, resume, reload, or stop."""

from __future__ import annotations

import enum


class Start(str, enum.Enum):
    COPY = "copy"        # no position: copy the prefix at one revision, then watch
    RESUME = "resume"    # watch from position + 1
    RELOAD = "reload"    # copy again (diff-and-apply), then watch
    STOP = "stop"        # compacted past the position and no reload asked: exit 3


def start_action(position: int | None, compact_revision: int | None, reload: bool,
                 auto_reload: bool) -> tuple[Start, str]:
    """Decide how to start from the stored ``position`` and the source's compaction (None: not known
    to be compacted past the position). Returns the action and the sentence to log."""
    if position is None:
        return Start.COPY, "no stored position: copying the source prefix at one revision"
    if reload:
        return Start.RELOAD, f"--reload: copying again over position {position} (diff and apply)"
    if compact_revision is not None and compact_revision > position + 1:
        if auto_reload:
            return Start.RELOAD, (f"the source compacted to revision {compact_revision}, past the stored "
                                  f"position {position}: --auto-reload copies again (diff and apply)")
        return Start.STOP, (f"the source compacted to revision {compact_revision}, past the stored position "
                            f"{position}: changes in between are lost to the watch; run with --reload")
    return Start.RESUME, f"resuming from the stored position {position}"
