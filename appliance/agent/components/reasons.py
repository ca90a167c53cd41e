"""A reason logged once: a concern that decides every cycle says why in one line, and only when it changed."""

from __future__ import annotations

import logging


class ReasonLog:
    """Logs a concern's reason when it differs from the last one said.

    Args:
        logger: where the lines go (at INFO). prefix: put before each reason (e.g. "records"), "" for none.
    """

    def __init__(self, logger: logging.Logger, prefix: str = ""):
        self.logger = logger
        self.prefix = prefix
        self.last = ""

    def say(self, reason: str, loud: bool = True) -> bool:
        """Remember ``reason``; log it if it differs from the last one and ``loud``. True if it changed."""
        changed = reason != self.last
        if changed and loud:
            self.logger.info("%s%s", f"{self.prefix}: " if self.prefix else "", reason)
        self.last = reason
        return changed

    def clear(self) -> None:
        """Forget the last reason: the next one is logged whatever it is."""
        self.last = ""
