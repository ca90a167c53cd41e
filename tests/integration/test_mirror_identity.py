"""The mirror knows its clusters by id, not by URL: one cluster behind two URLs, a destination replaced by
another cluster, reserved destination prefixes, a garbage position and garbage flags, against real etcd."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import time

import pytest

from appliance.adapters.etcd.client import EtcdClient
from appliance.model.exit_codes import ExitCode
from appliance.model.keys import position_key, prefix_end
from appliance.sim.aws import claim_subnet
from appliance.sim.standalone import StandaloneEtcd
from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import run_cli, wait_until
from tests.integration.test_mirror import PROGRESS, mirrors, pair  # noqa: F401 - fixtures

UNREACHABLE = ["--source", "http://127.0.0.1:1", "--dest", "http://127.0.0.2:1"]
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR) \S+: ")


@dataclasses.dataclass(frozen=True)
class Url:
    url: str


@dataclasses.dataclass(frozen=True)
class OneCluster:
    """One etcd answering at two client URLs, shaped like a StandalonePair for MirrorProcess."""

    source: Url
    dest: Url

    def revision(self) -> int:
        return EtcdClient([self.source.url], timeout=5).range(b"/", limit=1).revision


@pytest.fixture
def one_cluster(tmp_path):
    """One real single-member etcd listening on two loopback addresses of a claimed subnet."""
    subnet, claim = claim_subnet()
    first, second = f"http://127.0.{subnet}.1:2379", f"http://127.0.{subnet}.3:2379"
    peer = f"http://127.0.{subnet}.1:2380"
    proc = None
    try:
        with open(tmp_path / "one-cluster.log", "wb") as out:
            proc = subprocess.Popen([etcd_binary(), "--name", "one", "--data-dir", str(tmp_path / "one-cluster"),
                                     "--listen-client-urls", f"{first},{second}", "--advertise-client-urls", first,
                                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                     "--initial-cluster", f"one={peer}", *PROGRESS],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)

        def serving(url: str) -> bool:
            assert proc.poll() is None, f"etcd exited with {proc.returncode}; see {tmp_path / 'one-cluster.log'}"
            return EtcdClient([url], timeout=1).healthy(url)

        wait_until(lambda: serving(first) and serving(second), 30, "etcd to serve at both URLs", 0.1)
        yield OneCluster(Url(first), Url(second))
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
        claim.close()


def mirror_cli(source: str, dest: str, source_prefix: str, dest_prefix: str, *extra: str,
               timeout: float = 60) -> subprocess.CompletedProcess:
    return run_cli("mirror", "--source", source, "--source-prefix", source_prefix, "--dest", dest,
                   "--dest-prefix", dest_prefix, "--timeout", "3", *extra, timeout=timeout)


def the_error(output: str) -> str:
    """The one ``etcd.py: error:`` line of ``output``; every other line must be a log record, none a traceback."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("etcd.py: error:")]
    assert len(errors) == 1, output
    others = [line for line in output.splitlines() if line and line not in errors and not LOG_RECORD.match(line)]
    assert not others, output
    return errors[0]


def keys_under(url: str, prefix: str) -> list[bytes]:
    page = EtcdClient([url], timeout=5).range(prefix.encode(), prefix_end(prefix.encode()), keys_only=True)
    return [kv.key for kv in page.kvs]


# --- one cluster behind two URLs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source_prefix, dest_prefix", [("/a/", "/a/"), ("/a/", "/a/b/"), ("/a/b/", "/a/")])
def test_two_urls_of_one_cluster_with_overlapping_prefixes_exit_2_writing_nothing(one_cluster, source_prefix,
                                                                                   dest_prefix):
    client = EtcdClient([one_cluster.source.url])
    for key in ("/a/x", "/a/b/k", "/a/b/c/k"):
        client.put(key, "v")
    before = one_cluster.revision()
    done = mirror_cli(one_cluster.source.url, one_cluster.dest.url, source_prefix, dest_prefix, timeout=30)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    error = the_error(done.stdout + done.stderr)
    assert "are one cluster" in error and "overlap" in error
    assert repr(source_prefix) in error and repr(dest_prefix) in error
    assert one_cluster.revision() == before
    assert keys_under(one_cluster.source.url, "/a/b/b/") == []
    assert keys_under(one_cluster.source.url, "/__replication/") == []


def test_two_urls_of_one_cluster_with_disjoint_prefixes_copy(one_cluster, mirrors):  # noqa: F811
    client = EtcdClient([one_cluster.source.url])
    client.put("/a/before", "1")
    m = mirrors(one_cluster, source_prefix="/a/", dest_prefix="/b/").start()
    wait_until(lambda: client.get("/b/before"), 30, "the first copy")
    client.put("/a/live", "2")
    wait_until(lambda: client.get("/b/live"), 30, "a live change")
    assert client.get("/b/live")[0] == b"2"
    assert m.proc.poll() is None, m.text()
    assert "the source and the destination are one cluster" in m.text()
    assert keys_under(one_cluster.source.url, "/b/") == [b"/b/before", b"/b/live"]


# --- reserved destination prefixes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dest_prefix", ["/__appliance/", "/__replication/x/"])
def test_a_reserved_dest_prefix_exits_2_before_connecting(dest_prefix):
    started = time.monotonic()
    done = run_cli("mirror", *UNREACHABLE, "--source-prefix", "/a/", "--dest-prefix", dest_prefix, timeout=10)
    assert time.monotonic() - started < 5
    assert done.returncode == ExitCode.CONFIG
    assert done.stdout == ""
    assert done.stderr.strip() == the_error(done.stderr)
    assert the_error(done.stderr).startswith("etcd.py: error: --dest-prefix: must not be inside")


def test_a_reserved_dest_prefix_leaves_a_real_destination_untouched(pair):  # noqa: F811
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    src.put("/a/mode", "active")
    src.put("/a/x", "1")
    dst.put("/__appliance/mode", "passive")
    before = dst.range(b"/", limit=1).revision
    for dest_prefix in ("/__appliance/", "/__replication/x/"):
        done = mirror_cli(pair.source.url, pair.dest.url, "/a/", dest_prefix, timeout=10)
        assert done.returncode == ExitCode.CONFIG and "--dest-prefix" in the_error(done.stderr)
    assert dst.get("/__appliance/mode")[0] == b"passive"
    assert dst.range(b"/", limit=1).revision == before


def test_dest_prefix_root_never_writes_the_destinations_own_keys(pair, mirrors):  # noqa: F811
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    src.put("/a/__appliance/mode", "active")
    src.put("/a/__replication/x", "1")
    src.put("/a/x", "1")
    dst.put("/__appliance/mode", "passive")
    mode_revision = dst.range(b"/__appliance/mode").kvs[0].mod_revision
    m = mirrors(pair, source_prefix="/a/", dest_prefix="/").start()
    wait_until(lambda: dst.get("/x"), 30, "the first copy")
    src.put("/a/__appliance/mode", "active again")  # a live change, through the watch
    last = src.put("/a/y", "2")
    wait_until(lambda: (int((dst.get(position_key(b"/").decode()) or [b"0"])[0])) >= last, 30, "the live changes")
    assert dst.get("/y")[0] == b"2"
    mode = dst.range(b"/__appliance/mode").kvs[0]
    assert (mode.value, mode.mod_revision) == (b"passive", mode_revision)
    assert dst.get("/__replication/x") is None
    assert m.proc.poll() is None, m.text()


# --- a destination replaced by another cluster ------------------------------------------------------------------------

# "once-replaced": the write reaches the new cluster through a quiet reconnect, fails its position comparison, and
# the mirror checks the ids before it blames another mirror.
@pytest.mark.parametrize("written", ["while-it-is-down", "once-replaced"])
def test_a_destination_replaced_by_another_cluster_stops_the_mirror_with_exit_16(
        pair, mirrors, tmp_path, request, written):  # noqa: F811
    src = EtcdClient([pair.source.url])
    src.put("/src/k", "1")
    m = mirrors(pair).start()
    wait_until(lambda: EtcdClient([pair.dest.url]).get("/dst/k"), 30, "the first copy")
    replaced = EtcdClient([pair.dest.url]).member_list().cluster_id
    pair.dest.stop()
    if written == "while-it-is-down":
        src.put("/src/k", "2")  # the mirror's write fails: it reconnects, and checks both sides again
    # A fresh cluster at the same URL. etcd derives member and cluster ids from the name, the peer URLs and
    # the cluster token, not from the data directory: only another token makes it another cluster.
    other = StandaloneEtcd(str(tmp_path / "other"), pair.dest.address,
                           extra=PROGRESS + ["--initial-cluster-token", "another-cluster"])
    request.addfinalizer(other.stop)
    c = EtcdClient([other.url])
    assert c.member_list().cluster_id != replaced
    fresh = c.range(b"/", limit=1).revision
    if written == "once-replaced":
        src.put("/src/k", "2")  # the mirror's next write goes to the other cluster
    assert m.wait(30) == ExitCode.MIRROR_CLUSTER_CHANGED, m.text()
    error = the_error(m.text())
    assert "the destination is now cluster" in error
    assert c.range(b"/", limit=1).revision == fresh
    assert keys_under(other.url, "/dst/") == [] and keys_under(other.url, "/__replication/") == []


# --- a garbage position ---------------------------------------------------------------------------------------------

def test_a_position_that_is_not_a_revision_exits_2_naming_the_key(pair):  # noqa: F811
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    src.put("/src/k", "1")
    key = position_key(b"/dst/").decode()
    dst.put(key, "not-a-number")
    before = dst.range(key.encode()).kvs[0]
    done = mirror_cli(pair.source.url, pair.dest.url, "/src/", "/dst/", timeout=30)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    error = the_error(done.stdout + done.stderr)
    assert key in error and "not a revision" in error
    after = dst.range(key.encode()).kvs[0]
    assert (after.value, after.mod_revision) == (b"not-a-number", before.mod_revision)
    assert keys_under(pair.dest.url, "/dst/") == []


# --- garbage flags ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "-1"), ("--idle-timeout", "1e400"),
    ("--metrics-port", "70000"), ("--metrics-port", "0"), ("--max-txn-ops", "1"), ("--lock-ttl", "nan"),
    ("--source", "http://127.0.0.1:99999"), ("--source", "ftp://x"), ("--position-key", "/elsewhere"),
    ("--metrics-address", "not-an-ip"),
])
def test_garbage_flags_exit_2_in_one_line_naming_the_flag(flag, value):
    given = {"--source": "http://127.0.0.1:1", "--dest": "http://127.0.0.2:1", "--source-prefix": "/a/",
             "--dest-prefix": "/b/", flag: value}
    done = run_cli("mirror", *[a for item in given.items() for a in item], timeout=10)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert "Traceback" not in done.stdout + done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.match(r"^etcd\.py( mirror)?: error: ", lines[0]) and flag in lines[0], lines[0]
    assert repr(value) in lines[0], lines[0]


def test_a_lease_pairing_that_is_not_a_lease_id_is_replaced_not_a_crash(pair, mirrors):  # noqa: F811
    # The pairings live in the destination beside the position; one of another form (a hand edit, another
    # program) must neither stop the mirror nor be trusted as a lease.
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    lease = src.lease_grant(30)
    src.put("/src/ephemeral", "x", lease=lease)
    pairings = position_key(b"/dst/").decode() + "/leases/"
    dst.put(pairings + format(lease, "x"), "not-a-lease")
    dst.put(pairings + "not-hex", "12")
    m = mirrors(pair).start()
    wait_until(lambda: dst.get("/dst/ephemeral"), 30, "the leased key to cross")
    dest_lease = dst.get("/dst/ephemeral")[1]
    assert dest_lease and 0 < dst.lease_time_to_live(dest_lease) <= 30
    assert dst.get(pairings + format(lease, "x"))[0] == str(dest_lease).encode()
    assert dst.get(pairings + "not-hex")[0] == b"12"  # left alone
    assert m.proc.poll() is None and "Traceback" not in m.text()
