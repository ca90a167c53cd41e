"""Watch responses as etcd's JSON gateway streams them: progress, creation, compaction, events."""

from appliance.model.watch import WatchResponse


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
