"""Running a tool (``etcd --version``, ``etcdutl snapshot …``) with a time limit that holds for everything it started.

:func:`subprocess.run` kills only its own child when the timeout passes; a wrapper script's
children would live on. Here the tool runs in a process group of its own, and the whole group is
killed when the time is up.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Callable, Mapping, Sequence


def run_bounded(command: Sequence[str], timeout: float, env: Mapping[str, str] | None = None,
                preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` (stdin closed, output captured as text) for at most ``timeout`` seconds.

    Raises:
        subprocess.TimeoutExpired: the time passed; the tool's process group was killed (SIGKILL) and reaped.
        OSError: the command cannot be started.
    """
    proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(env) if env is not None else None, preexec_fn=preexec_fn,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise
    except BaseException:  # an interrupt must not leave the tool behind either
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        # Grandchildren may hold the pipes open until the kill lands; a bounded wait reaps the child.
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
