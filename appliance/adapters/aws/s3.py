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
import re
from typing import Iterable

import boto3
import boto3.s3.transfer
import botocore.exceptions

from appliance.adapters.aws.common import client_config, is_denied
from appliance.model.snapshots import PART_SIZE, SnapshotFile, StoredSnapshot

_TIME = "%Y%m%dT%H%M%SZ"
_KEY = re.compile(r"-(\d{8}T\d{6}Z)-r(\d+)\.db$")


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

    @property
    def marker_key(self) -> str:
        return self.base + "cluster.json"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.base}"

    def key_for(self, taken_at: datetime.datetime, revision: int) -> str:
        return f"{self.base}snapshots/{self.cluster}-{taken_at.strftime(_TIME)}-r{revision}.db"

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

        Raises:
            StoreError.
        """
        found = []
        token = None
        for _ in range(1000):  # 1000 pages of 1000 keys: far beyond any retention
            kwargs = {"Bucket": self.bucket, "Prefix": self.base + "snapshots/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                match = _KEY.search(item["Key"])
                if match:
                    taken = datetime.datetime.strptime(match.group(1), _TIME).replace(tzinfo=datetime.timezone.utc)
                    found.append(StoredSnapshot(self.bucket, item["Key"], taken, int(match.group(2)),
                                                int(item.get("Size", 0))))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return sorted(found, key=lambda s: (s.taken_at, s.revision), reverse=True)

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
            body = self.s3.get_object(Bucket=self.bucket, Key=self.marker_key)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StoreError(f"S3 GetObject of the marker failed: {exc}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(f"S3 GetObject of the marker unreachable: {exc}") from None
        try:
            return json.loads(body)
        except ValueError:
            return {"unreadable": body[:200].decode(errors="replace")}  # present, whatever it says

    def write_marker(self, content: dict) -> None:
        """Write the marker (JSON). Raises StoreError."""
        self._call("put_object", Bucket=self.bucket, Key=self.marker_key, Body=json.dumps(content).encode(),
                   ContentType="application/json")


def _verify(head: dict, snapshot: SnapshotFile) -> str:
    """Why the stored object differs from the local snapshot, "" when it matches."""
    if int(head.get("ContentLength", -1)) != snapshot.size:
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
