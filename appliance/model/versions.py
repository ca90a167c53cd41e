"""etcd versions as (major, minor, patch) tuples."""

from __future__ import annotations

import re

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse(text: str) -> tuple[int, int, int] | None:
    """``"3.5.1"`` -> (3, 5, 1); ``"3.5"`` -> (3, 5, 0); None if ``text`` holds no version."""
    found = _VERSION.search(text or "")
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def minor(version: tuple[int, int, int]) -> str:
    """(3, 5, 1) -> ``"3.5"``."""
    return f"{version[0]}.{version[1]}"
