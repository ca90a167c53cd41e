"""The mirror's pure decisions as tables: how events become transactions, and how a run starts."""

import pytest

from appliance.etcd.client import KeyValue
from appliance.etcd.watch import Event, WatchResponse
from appliance.replication.batching import plan
from appliance.replication.mirror import Start, start_action


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


STARTS = [
    ("first run", None, None, False, False, Start.COPY, "no stored position"),
    ("resume", 41, None, False, False, Start.RESUME, "resuming from the stored position 41"),
    ("--reload wins", 41, None, True, False, Start.RELOAD, "--reload"),
    ("compacted exactly to position + 1: still resumable", 41, 42, False, False, Start.RESUME, "resuming"),
    ("compacted past: stop", 41, 50, False, False, Start.STOP, "compacted to revision 50, past the stored position 41"),
    ("compacted past, auto-reload", 41, 50, False, True, Start.RELOAD, "--auto-reload"),
]


@pytest.mark.parametrize("name,position,compacted,reload,auto,action,words", STARTS, ids=[s[0] for s in STARTS])
def test_start_action(name, position, compacted, reload, auto, action, words):
    got, reason = start_action(position, compacted, reload, auto)
    assert got is action
    assert words in reason


def test_watch_response_shapes():
    progress = WatchResponse.from_json({"header": {"revision": "90"}})
    assert progress.is_progress and progress.revision == 90
    created = WatchResponse.from_json({"header": {"revision": "9"}, "created": True})
    assert not created.is_progress
    compacted = WatchResponse.from_json({"header": {"revision": "9"}, "canceled": True, "compact_revision": "7"})
    assert compacted.compact_revision == 7 and not compacted.is_progress
    change = WatchResponse.from_json({"header": {"revision": "9"}, "events": [
        {"kv": {"key": "YQ==", "mod_revision": "8", "value": "Yg=="}},
        {"type": "DELETE", "kv": {"key": "YQ==", "mod_revision": "9"}, "prev_kv": {"key": "YQ==", "value": "Yg=="}}]})
    assert [(e.type, e.revision) for e in change.events] == [("PUT", 8), ("DELETE", 9)]
    assert change.events[1].prev_kv.value == b"b"
