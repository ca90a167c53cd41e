"""``etcd.py verify``: compare a source prefix with its mirror at one source revision.

The destination is read at one revision D (every page at D), together with the
mirror's position at D; the source is then read at that position. Both sides are
thus compared at the same point of the source's history, even while a mirror
runs. Without a position (nothing mirrored yet) the source is read now.
"""

from __future__ import annotations

import dataclasses

from appliance.adapters.etcd.client import EtcdClient
from appliance.model.errors import ConfigError
from appliance.model.keys import BOOKKEEPING, prefix_end
from appliance.replication.keyspace import PAGE_SIZE, iter_prefix, merge
from appliance.replication.position import parse_revision

EXAMPLES = 10  # differences printed per kind


@dataclasses.dataclass
class VerifyReport:
    """Counts of keys missing from the destination, extra in it, and differing; a few of each by name."""

    source_revision: int
    dest_revision: int
    position: int | None
    compared: int = 0
    missing: list[bytes] = dataclasses.field(default_factory=list)
    extra: list[bytes] = dataclasses.field(default_factory=list)
    differing: list[bytes] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {"missing": 0, "extra": 0, "differing": 0})

    @property
    def equal(self) -> bool:
        return not any(self.counts.values())

    def note(self, kind: str, suffix: bytes) -> None:
        self.counts[kind] += 1
        examples = getattr(self, kind)
        if len(examples) < EXAMPLES:
            examples.append(suffix)

    def lines(self) -> list[str]:
        at = (f"source revision {self.source_revision} (the mirror's position)" if self.position is not None
              else f"source revision {self.source_revision} (no mirror position)")
        head = [f"compared {self.compared} keys at {at} with the destination at revision {self.dest_revision}"]
        for kind in ("missing", "extra", "differing"):
            if self.counts[kind]:
                names = ", ".join(repr(k.decode(errors="replace")) for k in getattr(self, kind))
                head.append(f"{kind}: {self.counts[kind]} (e.g. {names})")
        head.append("equal" if self.equal else "DIFFERENT")
        return head


def verify(source: EtcdClient, dest: EtcdClient, source_prefix: bytes, dest_prefix: bytes, position_key: bytes,
           page_size: int = PAGE_SIZE) -> VerifyReport:
    """Compare both sides; see the module's docstring.

    Raises:
        EtcdError: e.g. the source compacted past the mirror's position. EtcdUnavailable.
    """
    first = dest.range(dest_prefix, prefix_end(dest_prefix), limit=1)
    dest_revision = first.revision
    found = dest.range(position_key, revision=dest_revision)
    position = parse_revision(found.kvs[0].value) if found.kvs else None
    if found.kvs and position is None:
        raise ConfigError(f"the position at {position_key.decode(errors='replace')} holds "
                          f"{found.kvs[0].value[:40]!r}, not a revision")
    source_revision = position or source.range(source_prefix, prefix_end(source_prefix), limit=1).revision
    report = VerifyReport(source_revision, dest_revision, position)
    pairs = merge(iter_prefix(source, source_prefix, source_revision, page_size, exclude=BOOKKEEPING),
                  iter_prefix(dest, dest_prefix, dest_revision, page_size, exclude=BOOKKEEPING),
                  source_prefix, dest_prefix)
    for suffix, s_kv, d_kv in pairs:
        report.compared += 1
        if d_kv is None:
            report.note("missing", suffix)
        elif s_kv is None:
            report.note("extra", suffix)
        elif s_kv.value != d_kv.value:
            report.note("differing", suffix)
    return report
