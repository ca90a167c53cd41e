"""One-line log records on stderr, as text or as JSON (``LOG_FORMAT``).

Whatever a record holds (a message over several lines, a traceback), it is written as one
line, so a log shipper that splits on newlines keeps each record whole.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
import time

FORMATS = ("text", "json")


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00Z INFO agent: message``, UTC, with the exception's traceback on the same line:
    line breaks become the two characters ``\\n`` (``\\r`` likewise)."""

    converter = time.gmtime

    def __init__(self):
        super().__init__("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return _one_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts`` (UTC, ISO-8601 with milliseconds, e.g. ``2024-05-01T12:00:00.123Z``),
    ``level``, ``logger``, ``message``, and ``exception`` (the traceback) and ``stack`` where the record has
    them. ``json.dumps`` escapes line breaks and other control characters (ASCII output), so any record
    is one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def formatter(fmt: str) -> logging.Formatter:
    """The formatter for ``fmt`` ("text" or "json").

    Raises:
        ValueError: any other ``fmt``.
    """
    if fmt == "text":
        return TextFormatter()
    if fmt == "json":
        return JsonFormatter()
    raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def unexpected(logger: logging.Logger, message: str, *args) -> None:
    """Log the exception being handled as one error line (``message``, then its type and text) and its
    traceback at debug level only: operators read one line a failure, and LOG_LEVEL=DEBUG shows where.
    Call it inside an ``except`` block."""
    exc = sys.exc_info()[1]
    text = " ".join(str(exc).split())
    logger.error(message + ": %s%s", *args, type(exc).__name__, f": {text[:300]}" if text else "")
    logger.debug("traceback of the failure above", exc_info=True)


def setup(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger: one line per record on stderr, as ``fmt`` ("text" or "json").

    ``level`` None: the ``LOG_LEVEL`` environment variable where it is one of :data:`LEVELS`, else INFO.

    ``fmt`` None: the ``LOG_FORMAT`` environment variable where it is "json", else text. Commands
    other than the agent (which validates ``LOG_FORMAT`` as a setting, exit 2 on a bad value) follow
    the variable without failing on it, and so does the inbound mirror the agent starts.
    """
    if fmt is None:
        fmt = "json" if os.environ.get("LOG_FORMAT", "").strip().lower() == "json" else "text"
    if level is None:
        wanted = os.environ.get("LOG_LEVEL", "").strip().upper()
        level = wanted if wanted in LEVELS else "INFO"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore logs credential look-ups and retries at INFO; keep the agent's lines readable.
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
