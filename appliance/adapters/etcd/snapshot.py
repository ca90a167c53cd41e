"""Snapshot files of the etcd keyspace: taken from a member, checked, and restored into a data directory.

A snapshot is the member's whole backend (bbolt) file followed by etcd's integrity hash: the
SHA-256 of everything before it (32 bytes). ``etcdutl snapshot restore`` refuses a file whose
hash does not match (etcd's "snapshot missing hash but --skip-hash-check=false"), and so does
:func:`check` here, before anything is uploaded or restored. Source: etcd's
``server/etcdserver/api/v3rpc/maintenance.go`` (Snapshot appends the sha256) and
``etcdutl/snapshot/v3_snapshot.go`` (restore verifies it).

Snapshots are taken with ``etcdctl snapshot save`` (etcd's Maintenance.Snapshot over gRPC), not
through the JSON gateway the rest of the appliance speaks: the gateway sends the file as base64 in
JSON, which cost the serving member and the reader about twice the CPU and doubled the leader's
put latency in ``benchmarks/bench_snapshots.py``. The child runs at the lowest CPU priority.
Files are read and restored with ``etcdutl`` (etcd 3.5), else ``etcdctl`` (etcd 3.4, whose
``snapshot status`` and ``snapshot restore`` do the same). Both sit beside the etcd binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

from appliance.adapters.etcd.bounded import run_bounded
from appliance.adapters.etcd.process import child_environment
from appliance.model.keys import Credentials
from appliance.model.snapshots import PART_SIZE, SnapshotFile, Tools
from appliance.model.tls import TlsFiles

HASH_SIZE = 32  # bytes of etcd's SHA-256 trailer
TOOL_TIMEOUT = 120.0  # seconds for etcdutl status or restore of a snapshot


class SnapshotError(Exception):
    """A snapshot could not be taken, read or restored (the message says which step and why)."""


class SnapshotCorrupt(SnapshotError):
    """A snapshot file's content does not match its hash (etcd's trailer, or the SHA-256 stored beside it)."""


def tools_for(etcd_binary: str) -> Tools:
    """The tools beside ``etcd_binary``.

    Raises:
        SnapshotError: etcdctl is not there.
    """
    directory = os.path.dirname(os.path.realpath(etcd_binary))
    found = {name: os.path.join(directory, name) for name in ("etcdutl", "etcdctl")
             if os.access(os.path.join(directory, name), os.X_OK)}
    if "etcdctl" not in found:
        raise SnapshotError(f"no etcdctl beside {etcd_binary}: cannot take, read or restore snapshots")
    return Tools(found["etcdctl"], found.get("etcdutl", found["etcdctl"]))


def hashes(path: str) -> tuple[int, str, tuple[str, ...], bool]:
    """(size in bytes, hex SHA-256, per-part hex SHA-256s, etcd's trailer matches) of a file, in one read."""
    whole, parts, size = hashlib.sha256(), [], 0
    body = hashlib.sha256()  # of everything but the last HASH_SIZE bytes
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(PART_SIZE):
            whole.update(chunk)
            parts.append(hashlib.sha256(chunk).hexdigest())
            size += len(chunk)
            data = tail + chunk
            body.update(data[:-HASH_SIZE])
            tail = data[-HASH_SIZE:]
    return size, whole.hexdigest(), tuple(parts), size > HASH_SIZE and body.digest() == tail


def check(path: str, tools: Tools, expected_sha256: str | None = None) -> SnapshotFile:
    """Check a snapshot file: etcd's trailer, ``expected_sha256`` if given, and that etcdutl reads it.

    Raises:
        SnapshotCorrupt: a hash does not match, or the tool cannot read the file as a snapshot.
        SnapshotError: the tool did not run.
    """
    size, sha256, parts, trailer_ok = hashes(path)
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise SnapshotCorrupt(f"{path}: SHA-256 {sha256[:12]}… differs from the stored {expected_sha256[:12]}…")
    if not trailer_ok:
        raise SnapshotCorrupt(f"{path}: etcd's integrity hash at the end of the snapshot does not match "
                              f"its {size} bytes")
    return SnapshotFile(path, size, sha256, parts, status(tools, path)["revision"])


def status(tools: Tools, path: str) -> dict:
    """``etcdutl snapshot status -w json``: {"hash", "revision", "totalKey", "totalSize"}.

    Raises:
        SnapshotCorrupt: the tool cannot read the file. SnapshotError: the tool did not run.
    """
    output = _run([tools.offline, "snapshot", "status", path, "-w", "json"],
                  f"{os.path.basename(tools.offline)} snapshot status", failure=SnapshotCorrupt)
    try:
        return json.loads(output)
    except ValueError:
        raise SnapshotCorrupt(f"{path}: unreadable snapshot status {output[:80]!r}") from None


def save(endpoint: str, path: str, tools: Tools, credentials: Credentials | None, timeout: float,
         tls: TlsFiles | None = None) -> SnapshotFile:
    """Take a snapshot from the member at ``endpoint`` into ``path`` and check it.

    Written to ``path + ".part"`` first, so ``path`` only ever holds a complete snapshot;
    ``timeout`` (seconds) bounds the whole transfer. The user and password reach etcdctl in its
    environment (``ETCDCTL_USER``), never on its command line. With authentication on, the user
    needs the ``root`` role (etcd's maintenance calls are admin-only). With ``tls``, etcdctl gets the CA
    and the client certificate in its environment too (``ETCDCTL_CACERT`` and so on).

    Raises:
        SnapshotError: etcdctl failed (e.g. the member did not answer) or did not finish in time.
        SnapshotCorrupt: what arrived does not check.
    """
    partial = path + ".part"
    env = {"ETCDCTL_USER": f"{credentials.user}:{credentials.password}"} if credentials else {}
    env.update(tls.etcdctl_environment() if tls is not None else {})
    try:
        _run([tools.etcdctl, "--endpoints", endpoint, "--dial-timeout=5s", f"--command-timeout={int(timeout)}s",
              "snapshot", "save", partial], "etcdctl snapshot save", timeout + 10, env, nice=True)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return check(path, tools)


def restore(tools: Tools, snapshot_path: str, data_dir: str, name: str, peer_url: str, token: str) -> None:
    """Restore a checked snapshot into ``data_dir`` (which must not exist) as a one-member cluster.

    The member is ``name`` at ``peer_url``; ``token`` makes the new cluster's id unique. The
    keyspace, leases, users and roles come from the snapshot; the membership does not.

    Raises:
        SnapshotError: the tool refused or did not run (nothing is left at ``data_dir`` then).
    """
    try:
        _run([tools.offline, "snapshot", "restore", snapshot_path, "--data-dir", data_dir, "--name", name,
              "--initial-cluster", f"{name}={peer_url}", "--initial-advertise-peer-urls", peer_url,
              "--initial-cluster-token", token], f"{os.path.basename(tools.offline)} snapshot restore")
    except SnapshotError:
        shutil.rmtree(data_dir, ignore_errors=True)  # the tool's partial output, never data of a member
        raise


def _lowest_priority() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.nice(19)


def _run(command: list[str], what: str, timeout: float = TOOL_TIMEOUT, env: dict | None = None,
         nice: bool = False, failure: type[SnapshotError] = SnapshotError) -> str:
    full_env = {**child_environment(os.environ), "ETCDCTL_API": "3", **(env or {})}
    try:
        done = run_bounded(command, timeout, env=full_env, preexec_fn=_lowest_priority if nice else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SnapshotError(f"{what} did not run: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise failure(f"{what} failed: {last}")
    return done.stdout
