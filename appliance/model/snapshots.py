"""etcd snapshots: a checked file on local disk, one stored in S3, and the tools that handle them."""

from __future__ import annotations

import dataclasses
import datetime

PART_SIZE = 16 * 1024 * 1024  # bytes per part of a multipart upload (and of its composite checksum)


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


@dataclasses.dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot object: ``key`` in ``bucket``; ``taken_at`` UTC; ``revision``; ``size`` in bytes."""

    bucket: str
    key: str
    taken_at: datetime.datetime
    revision: int
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclasses.dataclass(frozen=True)
class Tools:
    """The snapshot tools beside an etcd binary: ``etcdctl`` takes snapshots from a member; ``offline``
    (etcdutl, else etcdctl for 3.4) reads and restores snapshot files."""

    etcdctl: str
    offline: str
