"""How watched events become destination transactions, as a table."""

import pytest

from appliance.model.keys import KeyValue
from appliance.model.watch import Event
from appliance.rules.batching import plan


def ev(revision: int, key: str, kind: str = "PUT") -> Event:
    return Event(kind, KeyValue(key.encode(), b"v", mod_revision=revision))


def shape(batches):
    """Each batch as (revisions it holds, split, complete)."""
    return [(tuple(e.revision for e in b.events), b.split, b.complete) for b in batches]


PLANS = [
    ("nothing", [], 128, []),
    ("whole revisions share a transaction", [ev(5, "a"), ev(6, "b"), ev(7, "c")], 128,
     [((5, 6, 7), False, True)]),
    ("one key twice: a new transaction", [ev(5, "a"), ev(6, "a"), ev(7, "b")], 128,
     [((5,), False, True), ((6, 7), False, True)]),
    ("a delete after a put of one key: a new transaction", [ev(5, "a"), ev(6, "a", "DELETE")], 128,
     [((5,), False, True), ((6,), False, True)]),
    ("a multi-key revision is never split when it fits",
     [ev(5, "a"), ev(6, "b"), ev(6, "c"), ev(6, "d")], 4, [((5,), False, True), ((6, 6, 6), False, True)]),
    ("the position takes one operation", [ev(5, "a"), ev(6, "b"), ev(7, "c"), ev(8, "d")], 4,
     [((5, 6, 7), False, True), ((8,), False, True)]),
    ("a revision larger than the limit is split, position with its last part",
     [ev(4, "z"), ev(5, "a"), ev(5, "b"), ev(5, "c"), ev(5, "d"), ev(6, "e")], 3,
     [((4,), False, True), ((5, 5), True, False), ((5, 5), True, True), ((6,), False, True)]),
]


@pytest.mark.parametrize("name,events,max_ops,expected", PLANS, ids=[p[0] for p in PLANS])
def test_plan(name, events, max_ops, expected):
    batches = plan(events, max_ops)
    assert shape(batches) == expected
    for batch in batches:
        keys = [e.kv.key for e in batch.events]
        assert len(keys) == len(set(keys)), "two operations on one key in one transaction"
        assert len(batch.events) + 1 <= max_ops


def test_plan_keeps_source_order():
    events = [ev(r, f"k{r % 7}") for r in range(10, 400)]
    batches = plan(events, 16)
    assert [e for b in batches for e in b.events] == events
    assert all(b.last_revision < n.first_revision for b, n in zip(batches, batches[1:], strict=False))


def test_plan_refuses_no_room():
    with pytest.raises(ValueError):
        plan([ev(1, "a")], max_ops=1)
