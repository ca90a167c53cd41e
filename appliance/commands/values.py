"""The grammar of every setting and flag: one parser per kind of value, shared by the agent's settings and
every command's flags.

A parser is a :class:`Value`: called with the text as given, it returns the value or raises
``ValueError`` whose message says what is allowed ("must be …", its unit and range), never Python's own
wording. :attr:`Value.allowed` is the same text, for the help and the reference's settings table.
Numbers are finite (``nan``, ``inf`` and ``1e400`` are refused: a NaN compares false with every bound,
so it would pass a range check written the other way round and switch a rule off).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import shutil
import stat
from typing import Any, Callable


class Value:
    """A parser of one kind of value: ``Value(text) -> value``; ValueError (message: :attr:`allowed`).

    ``bounds``: the (lowest, highest) number accepted, for numbers; None otherwise.
    """

    def __init__(self, allowed: str, parse: Callable[[str], Any], bounds: tuple[float, float] | None = None):
        self.allowed = allowed
        self._parse = parse
        self.bounds = bounds

    def __call__(self, text: str) -> Any:
        return self._parse(text)

    def refuses(self, text: str) -> bool:
        """True when ``text`` is outside this grammar (the call would raise ValueError)."""
        try:
            self._parse(text)
        except ValueError:
            return True
        return False

    def __repr__(self) -> str:
        return f"Value({self.allowed!r})"


def _number(text: str, kind: Callable[[str], Any]) -> Any:
    """``text`` as ``kind`` (int or float), None when it is not one, or not finite."""
    try:
        value = kind(text.strip())
    except (ValueError, TypeError, OverflowError):
        return None
    return value if kind is int or math.isfinite(value) else None


def seconds(low: float, high: float) -> Value:
    """Finite seconds from ``low`` to ``high``, as a float."""
    allowed = f"must be a number of seconds from {low:g} to {high:g}"

    def parse(text: str) -> float:
        value = _number(text, float)
        if value is None or not low <= value <= high:
            raise ValueError(allowed)
        return value
    return Value(allowed, parse, (low, high))


def whole(low: int, high: int, unit: str, allowed: str = "") -> Value:
    """A whole number of ``unit`` in [``low``, ``high``], as an int (``allowed``: another wording)."""
    allowed = allowed or f"must be a whole number of {unit} from {low} to {high}"

    def parse(text: str) -> int:
        value = _number(text, int)
        if value is None or not low <= value <= high:
            raise ValueError(allowed)
        return value
    return Value(allowed, parse, (low, high))


PORT = whole(1, 65535, "", "must be a TCP port from 1 to 65535")


def choice(*options: str, fold: bool = True) -> Value:
    """One of ``options`` (compared lower-case with ``fold``); returns the option as listed."""
    allowed = "must be " + (", ".join(options[:-1]) + " or " + options[-1] if len(options) > 1 else options[0])

    def parse(text: str) -> str:
        for option in options:
            if text.strip() == option or fold and text.strip().lower() == option.lower():
                return option
        raise ValueError(allowed)
    return Value(allowed, parse)


def _absolute(text: str) -> str:
    if not text or not os.path.isabs(text) or "\0" in text:
        raise ValueError("must be an absolute path")
    return text


ABSOLUTE_PATH = Value("must be an absolute path", _absolute)


def _regular_file(text: str) -> str:
    # Checked before anything opens it: a named pipe or a device would block the open, or never end.
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        raise ValueError("must be a readable regular file; there is none at that path") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"must be a readable regular file; it cannot be read ({getattr(exc, 'strerror', exc)})") \
            from None
    if not stat.S_ISREG(mode):
        raise ValueError("must be a readable regular file, not a directory, pipe or device")
    if not os.access(text, os.R_OK):
        raise ValueError("must be a readable regular file; permission denied")
    return text


ABSOLUTE_FILE = Value("must be the absolute path of a readable regular file",
                      lambda text: _regular_file(_absolute(text)))


def _executable(text: str) -> str:
    found = shutil.which(text) if text and "\0" not in text else None
    if found is None or not stat.S_ISREG(os.stat(found).st_mode):
        raise ValueError("must be an executable regular file (a path, or a command on PATH)")
    return found


EXECUTABLE = Value("must be an executable regular file (a path, or a command on PATH)", _executable)


def optional(value: Value, empty: str = "empty") -> Value:
    """``value``, or None for the empty text (:attr:`allowed` says so)."""
    def parse(text: str) -> Any:
        return None if text == "" else value(text)
    return Value(f"{value.allowed}, or {empty}", parse, value.bounds)


def flag(value: Value) -> Callable[[str], Any]:
    """``value`` as an argparse ``type``: its ValueError becomes argparse's error with the allowed text and the
    value given, which the parser prints as one line and exits 2 with."""
    def parse(text: str) -> Any:
        try:
            return value(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None
    parse.__name__ = value.allowed  # argparse names the type in some of its own messages
    parse.value = value  # type: ignore[attr-defined] - what tests and help read back
    return parse


REQUEST_SECONDS = seconds(0.1, 300)  # one etcd or AWS request; a command's --timeout


def _ip_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError("must be an IP address such as 127.0.0.1") from None


IP_ADDRESS = Value("must be an IP address such as 127.0.0.1", _ip_address)
