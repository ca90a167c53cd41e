"""How source changes become destination transactions: pure functions, tested as tables.

Rules (the mirror issue, and etcd's limits):
* source revisions are applied in order, and one source revision is never split
  across two destination transactions unless it alone exceeds ``max_ops`` (the
  server's ``--max-txn-ops``, 128 by default), in which case the batch says so;
* several whole revisions may share one transaction, up to ``max_ops`` operations
  including the ``reserved`` ones (the position write);
* no transaction touches one key twice: etcd refuses it ("duplicate key given in
  txn request"), so a revision whose keys meet the batch's starts a new batch (within
  one source revision etcd itself never changes a key twice, for the same reason).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterable, Sequence

from appliance.model.watch import Event


@dataclasses.dataclass(frozen=True)
class Batch:
    """Events for one destination transaction, in source order.

    ``last_revision`` is the position to store with it; ``split`` marks one part of a
    revision too large for one transaction (the position is then written with its
    last part only, ``complete`` False for the others).
    """

    events: tuple[Event, ...]
    first_revision: int
    last_revision: int
    split: bool = False
    complete: bool = True


def by_revision(events: Iterable[Event]) -> list[tuple[int, list[Event]]]:
    """Group consecutive events of one revision: [(revision, events)], in the order given."""
    return [(revision, list(group)) for revision, group in itertools.groupby(events, key=lambda e: e.revision)]


def plan(events: Sequence[Event], max_ops: int = 128, reserved: int = 1) -> list[Batch]:
    """Cut ``events`` (source order) into batches of whole revisions.

    Raises:
        ValueError: ``max_ops`` leaves no room for a change after ``reserved``.
    """
    room = max_ops - reserved
    if room < 1:
        raise ValueError(f"max_ops {max_ops} leaves no room beside {reserved} reserved operations")
    batches: list[Batch] = []
    current: list[Event] = []
    keys: set[bytes] = set()

    def flush() -> None:
        if current:
            batches.append(Batch(tuple(current), current[0].revision, current[-1].revision))
            current.clear()
            keys.clear()

    for revision, group in by_revision(events):
        group_keys = {e.kv.key for e in group}
        if len(group) > room:
            flush()
            parts = [group[i:i + room] for i in range(0, len(group), room)]
            for n, part in enumerate(parts):
                batches.append(Batch(tuple(part), revision, revision, split=True, complete=n == len(parts) - 1))
            continue
        if len(current) + len(group) > room or keys & group_keys:
            flush()
        current.extend(group)
        keys.update(group_keys)
    flush()
    return batches
