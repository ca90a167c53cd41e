"""Snapshots in S3, and the cluster's durable marker beside them.

Layout under ``s3://<bucket>/<prefix><cluster>/``:

- ``snapshots/<cluster>-<YYYYmmddTHHMMSSZ>-r<revision>.db``: one snapshot each, the key naming the
  cluster, the time it was taken (UTC) and the store revision it holds; its SHA-256 is stored
  in the object's metadata (``sha256``), and S3 checks it on the way in (``ChecksumAlgorithm``).
- ``cluster.json``: the marker, written when the cluster is first created. A seeder that finds
  it restores the newest snapshot instead of starting an empty cluster (docs/design.md, "Never an
  empty cluster where one existed").

Every call has the client's timeout; S3 errors surface as :class:`StoreError`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
from typing import Iterable

import boto3
import boto3.s3.transfer
import botocore.exceptions

from appliance.adapters.aws.common import client_config, is_denied
from appliance.model.snapshots import PART_SIZE, SnapshotFile, StoredSnapshot, parse_snapshot_name, snapshot_name

log = logging.getLogger(__name__)

MAX_MARKER_BYTES = 64 * 1024  # the marker is a few hundred bytes; more is not read


class StoreError(Exception):
    """S3 refused or did not answer (the message names the operation and the reason)."""


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key). Raises ValueError for anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/"):
        raise ValueError(f"not an S3 object URI such as s3://bucket/key: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def composite_checksum(part_sha256: Iterable[str]) -> str:
    """S3's checksum of a multipart upload: base64 SHA-256 of the parts' digests, then "-<parts>"
    (AWS S3 user guide, "Checking object integrity", checksums of multipart uploads)."""
    parts = [bytes.fromhex(p) for p in part_sha256]
    return base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode() + f"-{len(parts)}"


class SnapshotStore:
    """One cluster's snapshots and marker in S3.

    Args:
        bucket: the bucket (it must exist; the appliance never creates or deletes buckets).
        prefix: key prefix, "" or ending with "/". cluster: the cluster's name (CLUSTER_NAME).
        region: the S3 client's region. timeout: seconds to connect and per read.
    """

    def __init__(self, bucket: str, prefix: str, cluster: str, region: str | None = None, timeout: float = 10.0,
                 session: boto3.session.Session | None = None):
        session = session or boto3.session.Session()
        self.bucket = bucket
        self.base = f"{prefix}{cluster}/"
        self.cluster = cluster
        self.s3 = session.client("s3", region_name=region, config=client_config(timeout))
        self.transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=PART_SIZE,
                                                         multipart_chunksize=PART_SIZE)
        self.skipped: set[str] = set()  # keys already warned of as not snapshots of this cluster

    @property
    def marker_key(self) -> str:
        return self.base + "cluster.json"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.base}"

    def key_for(self, taken_at: datetime.datetime, revision: int) -> str:
        return f"{self.base}snapshots/{snapshot_name(self.cluster, taken_at, revision)}"

    def _call(self, operation: str, **kwargs):
        try:
            return getattr(self.s3, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            what = "AccessDenied: the role may not" if is_denied(exc) else "failed:"
            raise StoreError(f"S3 {operation} {what} {exc}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(f"S3 {operation} unreachable: {exc}") from None

    # --- snapshots --------------------------------------------------------------
    def upload(self, snapshot: SnapshotFile, taken_at: datetime.datetime, cluster_id: int) -> StoredSnapshot:
        """Upload a checked snapshot and verify what S3 stored (size and SHA-256).

        S3 checks the parts' SHA-256 on arrival (``ChecksumAlgorithm``); afterwards the
        object's size and S3's own checksum (whole, or composite for a multipart upload) must
        equal the local file's, else the object is deleted.

        Raises:
            StoreError: the upload failed or did not verify (nothing is left under the key then).
        """
        key = self.key_for(taken_at, snapshot.revision)
        metadata = {"sha256": snapshot.sha256, "revision": str(snapshot.revision),
                    "cluster-id": format(cluster_id, "x")}
        try:
            self.s3.upload_file(snapshot.path, self.bucket, key, Config=self.transfer,
                                ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": metadata})
        except (boto3.exceptions.S3UploadFailedError, botocore.exceptions.BotoCoreError,
                botocore.exceptions.ClientError) as exc:
            raise StoreError(f"S3 upload of {key} failed: {exc}") from None
        head = self._call("head_object", Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        problem = _verify(head, snapshot)
        if problem:
            self._call("delete_object", Bucket=self.bucket, Key=key)
            raise StoreError(f"S3 upload of {key} did not verify ({problem}); the object was deleted")
        return StoredSnapshot(self.bucket, key, taken_at, snapshot.revision, snapshot.size)

    def list(self) -> list[StoredSnapshot]:
        """The cluster's snapshots, newest first (by time taken, then revision).

        Only objects whose whole key this store would have written (:meth:`key_for`) and whose size is a
        byte count are listed; any other object under ``snapshots/`` is left out, with a warning once per key,
        so that nothing acts on it (retention never deletes it, a restore never picks it).

        Raises:
            StoreError: S3 refused or did not answer, or answered pages that do not make a whole listing.
        """
        found, strangers = [], set()
        token = None
        for _ in range(1000):  # 1000 pages of 1000 keys: far beyond any retention
            kwargs = {"Bucket": self.bucket, "Prefix": self.base + "snapshots/"}
            if token:
                kwargs["ContinuationToken"] = token
            items, token = parse_listing_page(self._call("list_objects_v2", **kwargs))
            for item in items:
                try:
                    found.append(self.parse_listed(item))
                except ValueError as exc:
                    key = str(item.get("Key") if isinstance(item, dict) else None)
                    strangers.add(key)
                    if key not in self.skipped:
                        log.warning("S3: %s: left alone (not listed, never deleted)", exc)
            if token is None:
                break
        else:
            raise StoreError(f"S3 ListObjectsV2 of {self.location}snapshots/ did not end within 1000 pages")
        self.skipped = strangers  # only what is still there: the memory never outgrows one listing
        return sorted(found, key=lambda s: (s.taken_at, s.revision), reverse=True)

    def parse_listed(self, item: object) -> StoredSnapshot:
        """One ListObjectsV2 ``Contents`` item as this cluster's snapshot (pure).

        Raises:
            ValueError: the item has no string Key, its key is not one :meth:`key_for` writes (another
                cluster's, another folder's, a time or revision that does not parse), or its Size is not a
                non-negative integer; the message names the key, in one line.
        """
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise ValueError(f"an object without a key in {self.location}snapshots/: {str(item)[:80]}")
        key, folder = item["Key"], self.base + "snapshots/"
        parsed = parse_snapshot_name(key[len(folder):], self.cluster) if key.startswith(folder) else None
        if parsed is None:
            raise ValueError(f"s3://{self.bucket}/{key[:200]} is not named as a snapshot of cluster {self.cluster}")
        size = item.get("Size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"s3://{self.bucket}/{key} has the size {repr(size)[:40]}, not a byte count")
        return StoredSnapshot(self.bucket, key, parsed[0], parsed[1], size)

    def download(self, bucket: str, key: str, path: str) -> str:
        """Download ``s3://bucket/key`` to ``path``; returns the SHA-256 (hex) stored with it, "" if none.

        Raises:
            StoreError.
        """
        head = self._call("head_object", Bucket=bucket, Key=key)
        try:
            self.s3.download_file(bucket, key, path, Config=self.transfer)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise StoreError(f"S3 download of s3://{bucket}/{key} failed: {exc}") from None
        return head.get("Metadata", {}).get("sha256", "")

    def delete(self, snapshots: Iterable[StoredSnapshot]) -> None:
        """Delete snapshot objects (up to 1000 per call). Raises StoreError."""
        keys = [s.key for s in snapshots]
        for start in range(0, len(keys), 1000):
            answer = self._call("delete_objects", Bucket=self.bucket,
                                Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StoreError(f"S3 DeleteObjects refused {len(answer['Errors'])} keys, e.g. {first.get('Key')}: "
                                 f"{first.get('Message')}")

    # --- the marker ---------------------------------------------------------------
    def read_marker(self) -> dict | None:
        """The marker's content, None if there is none.

        Raises:
            StoreError: S3 did not say whether it exists (never taken for "absent").
        """
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.marker_key)["Body"].read(MAX_MARKER_BYTES + 1)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StoreError(f"S3 GetObject of the marker failed: {exc}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(f"S3 GetObject of the marker unreachable: {exc}") from None
        return marker_content(body)

    def write_marker(self, content: dict) -> None:
        """Write the marker (JSON). Raises StoreError."""
        self._call("put_object", Bucket=self.bucket, Key=self.marker_key, Body=json.dumps(content).encode(),
                   ContentType="application/json")


def parse_listing_page(page: object) -> tuple[list, str | None]:
    """One ListObjectsV2 answer: its ``Contents`` items (not checked one by one: see
    :meth:`SnapshotStore.parse_listed`) and the token of the next page, None on the last.

    Raises:
        StoreError: ``Contents`` is not a list, ``IsTruncated`` not a boolean, or a truncated page has no
            continuation token: the listing is unknown (a part taken for the whole could make retention
            count the wrong snapshots as the newest).
    """
    if not isinstance(page, dict) or not isinstance(page.get("Contents", []), list):
        raise StoreError("S3 ListObjectsV2 answered a page without a list of Contents")
    truncated = page.get("IsTruncated", False)
    if not isinstance(truncated, bool):
        raise StoreError(f"S3 ListObjectsV2 answered IsTruncated {str(truncated)[:40]!r}")
    token = page.get("NextContinuationToken")
    if truncated and not (isinstance(token, str) and token):
        raise StoreError("S3 ListObjectsV2 answered a truncated page without a continuation token")
    return page.get("Contents", []), token if truncated else None


def marker_content(body: bytes) -> dict:
    """The marker's content as a dict. Whatever the object holds, it says that the cluster existed: a body
    that is not a JSON object (or over :data:`MAX_MARKER_BYTES`) is ``{"unreadable": <its start>}``, never
    taken for no marker (docs/design.md, "Never an empty cluster where one existed")."""
    try:
        content = json.loads(body) if len(body) <= MAX_MARKER_BYTES else None
    except (ValueError, RecursionError):
        content = None
    if isinstance(content, dict):
        return content
    log.warning("S3: the cluster's marker is not the JSON object expected; it still says the cluster existed")
    return {"unreadable": body[:200].decode(errors="replace")}


def _verify(head: dict, snapshot: SnapshotFile) -> str:
    """Why the stored object differs from the local snapshot, "" when it matches."""
    length = head.get("ContentLength")
    if isinstance(length, bool) or length != snapshot.size:
        return f"size {head.get('ContentLength')} instead of {snapshot.size} bytes"
    if head.get("Metadata", {}).get("sha256") != snapshot.sha256:
        return "the stored SHA-256 is not this snapshot's"
    stored = head.get("ChecksumSHA256")
    if stored is None:
        return "S3 reports no SHA-256 checksum"
    whole = base64.b64encode(bytes.fromhex(snapshot.sha256)).decode()
    composite = composite_checksum(snapshot.part_sha256)
    # S3 gives a multipart upload's checksum as "<checksum of the parts' checksums>-<parts>"; moto omits the suffix.
    if stored not in (whole, composite, composite.rsplit("-", 1)[0]):
        return f"S3's SHA-256 {stored} differs from the file's {whole}"
    return ""
