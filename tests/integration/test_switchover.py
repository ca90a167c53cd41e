"""Active/passive clusters with etcd's own authentication, two mirror processes and ``etcd.py switchover``.

Real etcd servers (one per cluster, on claimed loopback addresses), real mirror processes
in both directions (each copies only while its source is active), a client writing
throughout that goes to whichever cluster accepts its writes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance.adapters.credentials import credentials_for
from appliance.adapters.etcd.auth import read_mode
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.keys import Credentials, prefix_end
from appliance.sim.standalone import StandalonePair
from tests.integration.conftest import REPO, run_cli, wait_until

pytestmark = pytest.mark.timeout(300)

PROGRESS = ["--experimental-watch-progress-notify-interval=1s"]
PREFIX = "/app/"


class Regions:
    """Cluster A (active at first) and B (passive), credentials, and a mirror process each way."""

    def __init__(self, tmp: Path):
        self.pair = StandalonePair(str(tmp / "etcd"), extra=PROGRESS)
        self.a, self.b = self.pair.source.url, self.pair.dest.url
        self.credentials = str(tmp / "credentials.json")
        self.tmp = tmp
        self.mirrors: dict[str, subprocess.Popen] = {}
        try:
            for url, mode in ((self.a, "active"), (self.b, "passive")):
                done = run_cli("cluster-mode", "--endpoints", url, "--credentials", self.credentials,
                               "--prefix", PREFIX, mode, timeout=60)
                assert done.returncode == 0, done.stdout + done.stderr
            self.start_mirror("a-to-b", self.a, self.b)
            self.start_mirror("b-to-a", self.b, self.a)
            # Switchover refuses to run before the mirror OLD→NEW has stored a position.
            wait_until(lambda: caught_up(self, self.a, self.b), 30, "the first copy A→B")
        except BaseException:
            self.stop()
            raise

    def user(self, name: str) -> Credentials:
        return credentials_for(self.credentials, name)

    def client(self, url: str, user: str = "appliance") -> EtcdClient:
        return EtcdClient([url], timeout=3, credentials=self.user(user))

    def start_mirror(self, name: str, source: str, dest: str) -> None:
        with open(self.tmp / f"mirror-{name}.log", "ab") as out:
            self.mirrors[name] = subprocess.Popen(
                [sys.executable, str(REPO / "etcd.py"), "mirror", "--source", source, "--source-prefix", PREFIX,
                 "--dest", dest, "--dest-prefix", PREFIX, "--credentials", self.credentials, "--timeout", "3"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)

    def kill_mirror(self, name: str) -> None:
        proc = self.mirrors.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def mirror_log(self, name: str) -> str:
        return (self.tmp / f"mirror-{name}.log").read_text(errors="replace")

    def switchover_args(self, old: str, new: str, *extra: str) -> list[str]:
        return ["switchover", "--from", old, "--to", new, "--prefix", PREFIX, "--credentials", self.credentials,
                "--catch-up-timeout", "10", "--reverse-timeout", "10", *extra]

    def switchover(self, old: str, new: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return run_cli(*self.switchover_args(old, new, *extra), timeout=120, env=env)

    def mode(self, url: str) -> str:
        return read_mode(self.client(url))[0].value

    def keys(self, url: str) -> dict[bytes, bytes]:
        page = self.client(url).range(PREFIX.encode(), prefix_end(PREFIX.encode()))
        return {kv.key: kv.value for kv in page.kvs}

    def stop(self) -> None:
        for name in list(self.mirrors):
            self.kill_mirror(name)
        self.pair.stop()


@pytest.fixture
def regions(tmp_path):
    made = Regions(tmp_path)
    yield made
    made.stop()


class Writer(threading.Thread):
    """Writes /app/w<n> as the user client to whichever cluster accepts it, one write at a time.

    A write refused by one cluster (permission denied: it is passive) is tried on the other;
    ``refused`` counts those refusals, ``acknowledged`` maps key -> the cluster that accepted it,
    ``unexpected`` holds any other refusal (the test asserts there is none).
    """

    def __init__(self, regions: Regions):
        super().__init__(daemon=True)
        self.clients = [regions.client(regions.a, "client"), regions.client(regions.b, "client")]
        self.urls = [regions.a, regions.b]
        self.acknowledged: dict[str, str] = {}
        self.refused = 0
        self.unexpected: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        n, turn = 0, 0
        while not self._stop_event.is_set():
            key = f"{PREFIX}w{n:06d}"
            try:
                self.clients[turn].put(key, str(n))
            except EtcdError as exc:
                if "permission denied" not in exc.message:
                    self.unexpected.append(exc.message)
                    self._stop_event.wait(0.1)
                    continue
                self.refused += 1
                turn = 1 - turn
                self._stop_event.wait(0.01)
                continue
            except EtcdUnavailable:
                continue
            self.acknowledged[key] = self.urls[turn]
            n += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def mirrored_now(regions: Regions, source: str, dest: str) -> int:
    """Wait until the mirror into ``dest`` has applied ``source``'s revision as of now; returns it."""
    revision = regions.client(source).range(b"/", limit=1).revision

    def reached():
        found = regions.client(dest).get(f"/__replication/{PREFIX}")
        return found is not None and int(found[0]) >= revision or None

    wait_until(reached, 30, f"the mirror into {dest} to apply revision {revision}")
    return revision


def caught_up(regions: Regions, source: str, dest: str) -> bool | None:
    """The mirror into ``dest`` has passed ``source``'s current revision and the prefixes are equal."""
    revision = regions.client(source).range(b"/", limit=1).revision
    found = regions.client(dest).get(f"/__replication/{PREFIX}")
    if not found or int(found[0]) < revision:
        return None
    return regions.keys(source) == regions.keys(dest) or None


def test_switchover_and_back_under_a_writer_loses_no_acknowledged_write(regions):
    writer = Writer(regions)
    writer.start()
    try:
        wait_until(lambda: len(writer.acknowledged) > 200 or None, 30, "writes to A")
        mirrored_now(regions, regions.a, regions.b)
        done = regions.switchover(regions.a, regions.b)
        assert done.returncode == 0, done.stdout + done.stderr
        refused = float(re.search(r"could not write for ([\d.]+) s", done.stdout).group(1))
        assert refused < 10, done.stdout
        assert (regions.mode(regions.a), regions.mode(regions.b)) == ("passive", "active")
        wait_until(lambda: sum(1 for u in writer.acknowledged.values() if u == regions.b) > 100 or None, 30,
                   "writes to B")
        # A refuses the client now, and the reverse mirror carries B's writes to A.
        with pytest.raises(EtcdError, match="permission denied"):
            regions.client(regions.a, "client").put(f"{PREFIX}late", "x")
        mirrored_now(regions, regions.b, regions.a)
        again = regions.switchover(regions.a, regions.b)
        assert again.returncode == 0 and "already switched over" in again.stdout, again.stdout + again.stderr
        back = regions.switchover(regions.b, regions.a)
        assert back.returncode == 0, back.stdout + back.stderr
        assert (regions.mode(regions.a), regions.mode(regions.b)) == ("active", "passive")
        wait_until(lambda: sum(1 for u in writer.acknowledged.values() if u == regions.a) > 300 or None, 30,
                   "writes to A again")
    finally:
        writer.stop()
    assert writer.unexpected == [], f"writes refused for another reason than the mode: {writer.unexpected[:3]}"
    assert writer.refused > 0, "no write was ever refused: the clusters were never read-only"
    wait_until(lambda: caught_up(regions, regions.a, regions.b), 30, "the mirror A→B after the return")
    final = regions.keys(regions.a)
    missing = [k for k in writer.acknowledged if k.encode() not in final]
    assert missing == [], f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    assert final == regions.keys(regions.b)
    assert "paused: the source is passive" in regions.mirror_log("b-to-a")


def test_dry_run_changes_nothing_and_refusals_exit_2(regions):
    done = regions.switchover(regions.a, regions.b, "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dry run" in done.stdout and "make OLD read-only" in done.stdout
    assert (regions.mode(regions.a), regions.mode(regions.b)) == ("active", "passive")
    same = regions.switchover(regions.a, regions.a)
    assert same.returncode == 2 and "same cluster" in same.stderr, same.stdout + same.stderr
    regions.pair.dest.stop()  # B unreachable before anything changed
    gone = regions.switchover(regions.a, regions.b)
    assert gone.returncode == 2 and "NEW does not answer" in gone.stderr, gone.stdout + gone.stderr
    assert regions.mode(regions.a) == "active"


def test_a_dead_mirror_makes_the_switchover_undo_itself(regions):
    regions.client(regions.a, "client").put(f"{PREFIX}k", "1")
    wait_until(lambda: caught_up(regions, regions.a, regions.b), 30, "the mirror A→B")
    regions.kill_mirror("a-to-b")
    regions.client(regions.a, "client").put(f"{PREFIX}k", "2")  # never reaches B
    done = regions.switchover(regions.a, regions.b)
    assert done.returncode == 6, done.stdout + done.stderr
    assert "stayed at revision" in done.stderr and "every step was undone" in done.stderr
    assert (regions.mode(regions.a), regions.mode(regions.b)) == ("active", "passive")
    regions.client(regions.a, "client").put(f"{PREFIX}k", "3")  # A takes writes again


@pytest.mark.extended  # make test: a failure after each step, undone (exit 6)
def test_an_undo_that_cannot_reach_old_exits_8_and_states_the_modes(regions):
    """OLD stops answering once it is read-only and the catch-up then times out (its mirror is dead):
    the undo cannot make OLD active again, and the command says so, with both modes as they are."""
    regions.kill_mirror("a-to-b")
    regions.client(regions.a, "client").put(f"{PREFIX}k", "never mirrored")
    proc = subprocess.Popen([sys.executable, str(REPO / "etcd.py"), *regions.switchover_args(regions.a, regions.b)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)
    old_etcd = regions.pair.source.proc.pid
    try:
        lines = []
        for _ in range(20):
            lines.append(proc.stdout.readline())
            if lines[-1].startswith("done: old-read-only") or not lines[-1]:
                break
        assert lines[-1].startswith("done: old-read-only"), lines
        os.killpg(old_etcd, signal.SIGSTOP)
        assert proc.wait(60) == 8, proc.stdout.read() + proc.stderr.read()
        error = proc.stderr.read()
    finally:
        os.killpg(old_etcd, signal.SIGCONT)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert "undoing failed for old-read-only" in error and "OLD unknown" in error and "NEW passive" in error, error
    assert (regions.mode(regions.a), regions.mode(regions.b)) == ("passive", "passive")
    # The remedy the message names: make OLD active again.
    done = run_cli("cluster-mode", "--endpoints", regions.a, "--credentials", regions.credentials,
                   "--prefix", PREFIX, "active", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    regions.client(regions.a, "client").put(f"{PREFIX}k", "writable again")


@pytest.mark.parametrize("step", ["old-read-only", "catch-up", "reverse-position", "new-writable"])
def test_a_failure_before_new_is_writable_undoes_every_step(regions, step):
    reverse_before = regions.client(regions.a).get(f"/__replication/{PREFIX}")
    done = regions.switchover(regions.a, regions.b, env={**os.environ, "APPLIANCE_FAILPOINT": f"switchover:{step}"})
    assert done.returncode == 6, done.stdout + done.stderr
    assert "every step was undone: OLD active, NEW passive" in done.stderr, done.stderr
    assert (regions.mode(regions.a), regions.mode(regions.b)) == ("active", "passive")
    assert regions.client(regions.a).get(f"/__replication/{PREFIX}") == reverse_before
    regions.client(regions.a, "client").put(f"{PREFIX}after", "1")
    with pytest.raises(EtcdError, match="permission denied"):
        regions.client(regions.b, "client").put(f"{PREFIX}after", "1")
    # The mirror A→B resumed after the undo: the write arrives.
    wait_until(lambda: caught_up(regions, regions.a, regions.b), 30, "the mirror A→B after the undo")


def test_a_missing_reverse_mirror_leaves_new_active_and_names_the_remaining_step(regions):
    regions.kill_mirror("b-to-a")
    done = regions.switchover(regions.a, regions.b)
    assert done.returncode == 7, done.stdout + done.stderr
    assert "NEW is active. Remaining: reverse-mirror: start the mirror NEW→OLD" in done.stderr, done.stderr
    assert (regions.mode(regions.a), regions.mode(regions.b)) == ("passive", "active")
    regions.client(regions.b, "client").put(f"{PREFIX}new", "1")
    regions.start_mirror("b-to-a", regions.b, regions.a)
    again = regions.switchover(regions.a, regions.b)
    assert again.returncode == 0, again.stdout + again.stderr
    wait_until(lambda: caught_up(regions, regions.b, regions.a), 30, "the restarted mirror B→A")


def test_credentials_stay_out_of_logs_and_output(regions):
    regions.client(regions.a, "client").put(f"{PREFIX}k", "1")
    wait_until(lambda: caught_up(regions, regions.a, regions.b), 30, "the mirror A→B")
    done = regions.switchover(regions.a, regions.b)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(regions.credentials) as f:
        secrets = json.load(f).values()
    assert oct(os.stat(regions.credentials).st_mode & 0o777) == "0o600"
    texts = [done.stdout, done.stderr, regions.mirror_log("a-to-b"), regions.mirror_log("b-to-a")]
    assert not [s for s in secrets for t in texts if s in t]
