"""Snapshot files of the etcd keyspace: taken from a member, checked, and restored into a data directory.

A snapshot is the member's whole backend (bbolt) file followed by etcd's integrity hash: the
SHA-256 of everything before it (32 bytes). ``etcdutl snapshot restore`` refuses a file whose
hash does not match (etcd's "snapshot missing hash but --skip-hash-check=false"), and so does
:func:`check` here, before anything is uploaded or restored. Source: etcd's
``server/etcdserver/api/v3rpc/maintenance.go`` (Snapshot appends the sha256) and
``etcdutl/snapshot/v3_snapshot.go`` (restore verifies it).

The restore tool is ``etcdutl`` beside the etcd binary (etcd 3.5), else ``etcdctl`` (etcd 3.4,
whose ``etcdctl snapshot restore`` does the same).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import time

from appliance.etcd.client import EtcdClient
from appliance.etcd.process import child_environment

HASH_SIZE = 32  # bytes of etcd's SHA-256 trailer
PART_SIZE = 16 * 1024 * 1024  # bytes per part of a multipart upload (and of its composite checksum)
TOOL_TIMEOUT = 120.0  # seconds for etcdutl status or restore of a snapshot


class SnapshotError(Exception):
    """A snapshot could not be taken, read or restored (the message says which step and why)."""


class SnapshotCorrupt(SnapshotError):
    """A snapshot file's content does not match its hash (etcd's trailer, or the SHA-256 stored beside it)."""


@dataclasses.dataclass(frozen=True)
class SnapshotFile:
    """A checked snapshot on local disk.

    Attributes:
        path: the file. size: bytes. sha256: hex SHA-256 of the whole file.
        part_sha256: hex SHA-256 of each :data:`PART_SIZE` part (what S3's composite checksum of
            a multipart upload is made of). revision: the store revision the snapshot holds.
    """

    path: str
    size: int
    sha256: str
    part_sha256: tuple[str, ...]
    revision: int


def tool_for(etcd_binary: str) -> str:
    """The snapshot tool beside ``etcd_binary``: etcdutl (3.5+), else etcdctl (3.4).

    Raises:
        SnapshotError: neither is there.
    """
    directory = os.path.dirname(os.path.realpath(etcd_binary))
    for name in ("etcdutl", "etcdctl"):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise SnapshotError(f"neither etcdutl nor etcdctl beside {etcd_binary}: cannot read or restore snapshots")


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


def check(path: str, tool: str, expected_sha256: str | None = None) -> SnapshotFile:
    """Check a snapshot file: etcd's trailer, ``expected_sha256`` if given, and that the tool reads it.

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
    return SnapshotFile(path, size, sha256, parts, status(tool, path)["revision"])


def status(tool: str, path: str) -> dict:
    """``<tool> snapshot status -w json``: {"hash", "revision", "totalKey", "totalSize"}.

    Raises:
        SnapshotCorrupt: the tool cannot read the file. SnapshotError: the tool did not run.
    """
    output = _run([tool, "snapshot", "status", path, "-w", "json"], f"{os.path.basename(tool)} snapshot status")
    try:
        return json.loads(output)
    except ValueError:
        raise SnapshotCorrupt(f"{path}: unreadable snapshot status {output[:80]!r}") from None


def save(client: EtcdClient, endpoint: str, path: str, tool: str, timeout: float) -> SnapshotFile:
    """Stream a snapshot from the member at ``endpoint`` into ``path`` and check it.

    Written to ``path + ".part"`` first, so ``path`` only ever holds a complete snapshot;
    ``timeout`` (seconds) bounds the whole stream.

    Raises:
        EtcdUnavailable, EtcdError: the member did not give the snapshot.
        SnapshotCorrupt: what arrived does not check. SnapshotError: the tool did not run.
        OSError: the file cannot be written.
    """
    partial = path + ".part"
    try:
        with open(partial, "wb") as out:
            client.snapshot(endpoint, out, time.monotonic() + timeout)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return check(path, tool)


def restore(tool: str, snapshot_path: str, data_dir: str, name: str, peer_url: str, token: str) -> None:
    """Restore a checked snapshot into ``data_dir`` (which must not exist) as a one-member cluster.

    The member is ``name`` at ``peer_url``; ``token`` makes the new cluster's id unique. The
    keyspace, leases, users and roles come from the snapshot; the membership does not.

    Raises:
        SnapshotError: the tool refused or did not run (nothing is left at ``data_dir`` then).
    """
    try:
        _run([tool, "snapshot", "restore", snapshot_path, "--data-dir", data_dir, "--name", name,
              "--initial-cluster", f"{name}={peer_url}", "--initial-advertise-peer-urls", peer_url,
              "--initial-cluster-token", token], f"{os.path.basename(tool)} snapshot restore")
    except SnapshotError:
        subprocess.run(["rm", "-rf", data_dir], check=False, timeout=60)
        raise


def _run(command: list[str], what: str) -> str:
    env = child_environment(os.environ)
    env["ETCDCTL_API"] = "3"  # etcdctl 3.4 defaults to it too; stated for the older builds
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TOOL_TIMEOUT, env=env,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SnapshotError(f"{what} did not run: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        cls = SnapshotCorrupt if "status" in what else SnapshotError
        raise cls(f"{what} failed: {last}")
    return done.stdout
