"""etcd members and the cluster as one member answered, and the local data directory's content."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlparse


@dataclasses.dataclass(frozen=True)
class Member:
    """An etcd cluster member. ``id`` is the 64-bit member id; ``name`` is "" until it has started."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    @property
    def hex_id(self) -> str:
        return format(self.id, "x")

    @property
    def peer_hosts(self) -> frozenset[str]:
        """The hosts (IP addresses or names) of the member's peer URLs."""
        return frozenset(urlparse(u).hostname or "" for u in self.peer_urls) - {""}

    @classmethod
    def from_json(cls, item: dict) -> "Member":
        """From etcd's JSON gateway (rpc.proto's Member: ``ID`` a uint64 as a decimal string, ``name``,
        ``peerURLs``, ``clientURLs``, ``isLearner``; proto3 leaves out fields with their zero value).

        Raises:
            ValueError: ``item`` has another shape (no ID, an ID that is not a uint64, a name that is not a
                string, URLs that are not lists of strings, isLearner not a boolean); the message says which.
        """
        if not isinstance(item, dict):
            raise ValueError(f"a member is {type(item).__name__}, not an object")
        member_id = item.get("ID")
        if isinstance(member_id, bool) or not (
                isinstance(member_id, int) or (isinstance(member_id, str) and member_id.isascii()
                                               and member_id.isdigit() and len(member_id) <= 20)) \
                or not 0 < int(member_id) < 2 ** 64:
            raise ValueError(f"a member's ID is {str(member_id)[:40]!r}, not a member id")
        name = item.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"member {int(member_id):x}'s name is not a string")
        urls = {key: item.get(key, []) for key in ("peerURLs", "clientURLs")}
        for key, value in urls.items():
            if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
                raise ValueError(f"member {int(member_id):x}'s {key} is not a list of URLs")
        is_learner = item.get("isLearner", False)
        if not isinstance(is_learner, bool):
            raise ValueError(f"member {int(member_id):x}'s isLearner is not a boolean")
        return cls(id=int(member_id), name=name, peer_urls=tuple(urls["peerURLs"]),
                   client_urls=tuple(urls["clientURLs"]), is_learner=is_learner)


@dataclasses.dataclass(frozen=True)
class MemberList:
    """The answer of MemberList: cluster id, which member answered, and the members."""

    cluster_id: int
    answered_by: int
    members: tuple[Member, ...]


@dataclasses.dataclass(frozen=True)
class EndpointStatus:
    """Maintenance Status of one member: ids, leader, raft progress, DB size (bytes), the revision of
    its key space as it answered (0 if not given), and the part of the DB in use (bytes)."""

    endpoint: str
    member_id: int
    leader_id: int
    version: str
    raft_index: int
    db_size: int
    is_learner: bool
    errors: tuple[str, ...]
    revision: int = 0
    db_size_in_use: int | None = None  # bytes of the file holding data (etcd 3.4+); None: not said


@dataclasses.dataclass(frozen=True)
class MemberHealth:
    """A member and whether its ``/health`` answered healthy this cycle."""

    member: Member
    healthy: bool


@dataclasses.dataclass(frozen=True)
class ClusterView:
    """The etcd cluster as one member saw it. ``leader_id`` is None when it knows no leader;
    ``version`` is the cluster version (``GET /version``), None when not asked or not decided."""

    cluster_id: int
    members: tuple[Member, ...]
    leader_id: int | None
    version: tuple[int, int, int] | None = None

    def by_id(self, member_id: int | None) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def by_name_or_peer(self, name: str, peer_url: str) -> Member | None:
        return next((m for m in self.members if m.name == name or peer_url in m.peer_urls), None)


@dataclasses.dataclass(frozen=True)
class LocalData:
    """What the data directory holds: whether etcd has a WAL there, and the recorded member id
    (None: not recorded, or no data)."""

    has_data: bool
    member_id: int | None
