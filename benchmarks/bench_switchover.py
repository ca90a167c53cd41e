"""How long clients cannot write during a switchover with a caught-up mirror (target: at most 5 s).

Two real etcd servers on claimed loopback addresses, authentication on (cluster-mode), a
mirror process each way, and ``etcd.py switchover`` back and forth; prints each run's
refused-write time as the command reports it, and the median.

Usage: python benchmarks/bench_switchover.py [RUNS]   (default 6 switchovers)
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from appliance.sim.standalone import StandalonePair  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETCD_PY = os.path.join(ROOT, "etcd.py")
PREFIX = "/app/"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, ETCD_PY, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pair = StandalonePair(os.path.join(tmp, "etcd"), extra=["--experimental-watch-progress-notify-interval=1s"])
        mirrors = []
        try:
            credentials = os.path.join(tmp, "credentials.json")
            a, b = pair.source.url, pair.dest.url
            for url, mode in ((a, "active"), (b, "passive")):
                done = cli("cluster-mode", "--endpoints", url, "--credentials", credentials, "--prefix", PREFIX, mode)
                assert done.returncode == 0, done.stdout + done.stderr
            for source, dest in ((a, b), (b, a)):
                mirrors.append(subprocess.Popen(
                    [sys.executable, ETCD_PY, "mirror", "--source", source, "--source-prefix", PREFIX, "--dest", dest,
                     "--dest-prefix", PREFIX, "--credentials", credentials], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True))
            time.sleep(3)  # the first copy
            figures = []
            old, new = a, b
            for n in range(runs):
                done = cli("switchover", "--from", old, "--to", new, "--prefix", PREFIX, "--credentials", credentials)
                assert done.returncode == 0, done.stdout + done.stderr
                refused = float(re.search(r"could not write for ([\d.]+) s", done.stdout).group(1))
                figures.append(refused)
                print(f"switchover {n + 1}: writes refused for {refused:.2f} s", flush=True)
                old, new = new, old
                time.sleep(2)  # let the reverse mirror settle, as between real switchovers
            print(f"writes refused during a switchover: median {statistics.median(figures):.2f} s, "
                  f"max {max(figures):.2f} s over {runs} runs (target <= 5 s)")
        finally:
            for proc in mirrors:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            pair.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
