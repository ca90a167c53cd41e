"""Run a program while the data is fresh; stop it (SIGTERM, then SIGKILL) as soon as it is not."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

from appliance.guard.freshness import FreshnessCheck
from appliance.guard.systemd import Notifier
from appliance.model.exit_codes import ExitCode

log = logging.getLogger("guard")



def stop(proc: subprocess.Popen, grace: float) -> int:
    """SIGTERM ``proc``'s process group, SIGKILL it after ``grace`` seconds; returns the exit status."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            log.warning("COMMAND did not exit within %g s of %s", wait, sig.name)
    return proc.wait()


def run_guarded(argv: list[str], check: FreshnessCheck, interval: float, grace: float,
                notifier: Notifier | None = None) -> int:
    """Check, start ``argv`` in its own process group, then check every ``interval`` seconds.

    Returns COMMAND's exit code when it ends by itself (128 + signal number when a signal
    ended it), ``ExitCode.GUARD_STALE`` if stale at the start, ``GUARD_STOPPED`` if it was
    stopped, ``GUARD_NOT_EXECUTABLE`` if it could not be executed. A SIGTERM or SIGINT to
    the guard is passed on to COMMAND, and the guard then returns COMMAND's code.
    """
    notifier = notifier or Notifier()
    verdict = check.check()
    if not verdict.fresh:
        log.error("not starting %s: %s", argv[0], verdict.reason)
        return ExitCode.GUARD_STALE
    try:
        proc = subprocess.Popen(argv, start_new_session=True)
    except OSError as exc:
        log.error("cannot run %s: %s", argv[0], exc.strerror)
        return ExitCode.GUARD_NOT_EXECUTABLE
    log.info("started %s (pid %d): %s", argv[0], proc.pid, verdict.reason)
    forwarded: list[int] = []

    def forward(signum, _frame):
        forwarded.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    notifier.send("READY=1")
    try:
        while True:
            started = time.monotonic()
            verdict = check.check()
            if proc.poll() is not None:
                break
            if forwarded:
                return _status(proc.wait())
            if not verdict.fresh:
                log.error("stopping %s (pid %d): %s", argv[0], proc.pid, verdict.reason)
                status = stop(proc, grace)
                log.info("%s stopped (exit status %s)", argv[0], _status(status))
                return ExitCode.GUARD_STOPPED
            notifier.send("WATCHDOG=1")
            try:
                proc.wait(max(0.0, interval - (time.monotonic() - started)))
                break
            except subprocess.TimeoutExpired:
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return _status(proc.wait())


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode
