"""etcd snapshots: a checked file on local disk, one stored in S3, and the tools that handle them."""

from __future__ import annotations

import dataclasses
import datetime
import re

PART_SIZE = 16 * 1024 * 1024  # bytes per part of a multipart upload (and of its composite checksum)
TIME_FORMAT = "%Y%m%dT%H%M%SZ"  # the time a snapshot was taken, in its name (UTC)
_NAME_TAIL = re.compile(r"-(\d{8}T\d{6}Z)-r(0|[1-9]\d{0,18})\.db")
_REVISION_LIMIT = 2 ** 63  # etcd's revisions are int64


def snapshot_name(cluster: str, taken_at: datetime.datetime, revision: int) -> str:
    """A snapshot object's file name: ``<cluster>-<YYYYmmddTHHMMSSZ>-r<revision>.db`` (``taken_at`` in UTC)."""
    return f"{cluster}-{taken_at.strftime(TIME_FORMAT)}-r{revision}.db"


def parse_snapshot_name(name: str, cluster: str) -> tuple[datetime.datetime, int] | None:
    """(time taken, aware UTC; store revision) of a file name :func:`snapshot_name` made for ``cluster``;
    None for any other name (another cluster's, a time that is no date, a revision not in [0, 2**63), a
    form :func:`snapshot_name` would not write). Never raises."""
    if not isinstance(name, str) or not name.startswith(cluster + "-"):
        return None
    match = _NAME_TAIL.fullmatch(name, len(cluster))
    if match is None or int(match.group(2)) >= _REVISION_LIMIT:
        return None
    try:
        taken = datetime.datetime.strptime(match.group(1), TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    revision = int(match.group(2))
    return (taken, revision) if snapshot_name(cluster, taken, revision) == name else None


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

    @property
    def named_as_taken(self) -> bool:
        """The key's file name says this snapshot's own time and revision, as :func:`snapshot_name` writes
        them (whatever the cluster's name): the object is one the appliance named."""
        tail = f"-{self.taken_at.strftime(TIME_FORMAT)}-r{self.revision}.db"
        name = self.key.rsplit("/", 1)[-1]
        return self.taken_at.utcoffset() == datetime.timedelta(0) and name.endswith(tail) and len(name) > len(tail)


@dataclasses.dataclass(frozen=True)
class Tools:
    """The snapshot tools beside an etcd binary: ``etcdctl`` takes snapshots from a member; ``offline``
    (etcdutl, else etcdctl for 3.4) reads and restores snapshot files."""

    etcdctl: str
    offline: str
