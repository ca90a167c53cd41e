"""S3 listings and the marker of unexpected shapes, as boto3 would return their dicts: an object that is not
fully understood as this cluster's snapshot is left out with a warning (so retention never deletes it and a
restore never picks it), a page that does not make a whole listing is a StoreError (unknown), and a marker
that is not the JSON expected still says that the cluster existed."""

from __future__ import annotations

import datetime

import pytest

from appliance.adapters.aws.s3 import SnapshotStore, StoreError, marker_content, parse_listing_page
from appliance.model.snapshots import StoredSnapshot, parse_snapshot_name, snapshot_name

UTC = datetime.timezone.utc
TAKEN = datetime.datetime(2026, 11, 22, 10, 30, 0, tzinfo=UTC)
FOLDER = "backups/etcd/snapshots/"
KEY = FOLDER + "etcd-20261122T103000Z-r42.db"


class PagedStore(SnapshotStore):
    """A SnapshotStore whose ListObjectsV2 answers are the given pages, in turn (nothing of boto3 is called)."""

    def __init__(self, *pages):
        super().__init__("bucket", "backups/", "etcd", region="eu-central-1")
        self.pages, self.asked = list(pages), []

    def _call(self, operation: str, **kwargs):
        assert operation == "list_objects_v2"
        self.asked.append(kwargs.get("ContinuationToken"))
        return self.pages.pop(0)


STORE = PagedStore()  # for the items one by one: a boto3 client costs a tenth of a second to build

NAMES = [
    ("a snapshot's name", "etcd-20261122T103000Z-r42.db", (TAKEN, 42)),
    ("revision 0", "etcd-20261122T103000Z-r0.db", (TAKEN, 0)),
    ("a cluster name with dashes", "etcd-20261122T103000Z-r1.db", (TAKEN, 1)),
    ("the largest revision", f"etcd-20261122T103000Z-r{2 ** 63 - 1}.db", (TAKEN, 2 ** 63 - 1)),
    ("another cluster's", "etcd2-20261122T103000Z-r42.db", None),
    ("a cluster whose name ends like ours", "xetcd-20261122T103000Z-r42.db", None),
    ("a revision of 2**63", f"etcd-20261122T103000Z-r{2 ** 63}.db", None),
    ("a revision with a leading zero", "etcd-20261122T103000Z-r042.db", None),
    ("a negative revision", "etcd-20261122T103000Z-r-1.db", None),
    ("month 13", "etcd-20261322T103000Z-r42.db", None),
    ("hour 25", "etcd-20261122T253000Z-r42.db", None),
    ("another extension", "etcd-20261122T103000Z-r42.db.part", None),
    ("a folder inside", "etcd-20261122T103000Z-r42.db/x", None),
    ("nothing", "", None),
]


@pytest.mark.parametrize("name, expected", [c[1:] for c in NAMES], ids=[c[0] for c in NAMES])
def test_a_snapshot_name_is_understood_whole_or_not_at_all(name, expected):
    assert parse_snapshot_name(name, "etcd") == expected
    if expected is not None:
        assert snapshot_name("etcd", *expected) == name


def test_a_cluster_name_with_dashes():
    assert parse_snapshot_name("my-etcd-20261122T103000Z-r7.db", "my-etcd") == (TAKEN, 7)
    assert parse_snapshot_name("my-etcd-20261122T103000Z-r7.db", "my") is None


LISTED = [
    ("a snapshot", {"Key": KEY, "Size": 1024, "ETag": '"x"'}, StoredSnapshot("bucket", KEY, TAKEN, 42, 1024)),
    ("an empty one", {"Key": KEY, "Size": 0}, StoredSnapshot("bucket", KEY, TAKEN, 42, 0)),
]


@pytest.mark.parametrize("item, expected", [c[1:] for c in LISTED], ids=[c[0] for c in LISTED])
def test_a_listed_snapshot(item, expected):
    assert STORE.parse_listed(item) == expected


NOT_SNAPSHOTS = [
    ("another cluster's key", {"Key": FOLDER + "other-20261122T103000Z-r42.db", "Size": 1}, "not named as"),
    ("a key in a sub-folder", {"Key": FOLDER + "old/etcd-20261122T103000Z-r42.db", "Size": 1}, "not named as"),
    ("a key of another prefix", {"Key": "etcd/snapshots/etcd-20261122T103000Z-r42.db", "Size": 1}, "not named as"),
    ("a key that is no date", {"Key": FOLDER + "etcd-20269999T103000Z-r42.db", "Size": 1}, "not named as"),
    ("a text file", {"Key": FOLDER + "README.txt", "Size": 1}, "not named as"),
    ("a negative size", {"Key": KEY, "Size": -1}, "size -1"),
    ("a size in a string", {"Key": KEY, "Size": "1024"}, "size '1024'"),
    ("a size true", {"Key": KEY, "Size": True}, "size True"),
    ("no size", {"Key": KEY}, "size None"),
    ("a float size", {"Key": KEY, "Size": 1.5}, "size 1.5"),
    ("no key", {"Size": 1}, "without a key"),
    ("a key that is a number", {"Key": 7, "Size": 1}, "without a key"),
    ("not a dict", "etcd-20261122T103000Z-r42.db", "without a key"),
]


@pytest.mark.parametrize("item, words", [c[1:] for c in NOT_SNAPSHOTS], ids=[c[0] for c in NOT_SNAPSHOTS])
def test_an_object_that_is_not_a_snapshot_is_refused_in_one_line(item, words):
    with pytest.raises(ValueError) as caught:
        STORE.parse_listed(item)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_listing_leaves_strangers_out_and_warns_once_per_key(caplog):
    page = {"Contents": [{"Key": KEY, "Size": 1}, {"Key": FOLDER + "README.txt", "Size": 1},
                         {"Key": FOLDER + "etcd-20261122T113000Z-r50.db", "Size": -5}], "IsTruncated": False}
    store = PagedStore(page, page)
    assert [s.key for s in store.list()] == [KEY]
    assert [s.key for s in store.list()] == [KEY]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2 and "README.txt" in warned[0] and "size -5" in warned[1]


def test_the_listing_follows_the_pages():
    second = FOLDER + "etcd-20261122T113000Z-r50.db"
    store = PagedStore({"Contents": [{"Key": KEY, "Size": 1}], "IsTruncated": True, "NextContinuationToken": "t"},
                       {"Contents": [{"Key": second, "Size": 1}], "IsTruncated": False})
    assert [s.key for s in store.list()] == [second, KEY] and store.asked == [None, "t"]


BAD_PAGES = [
    ("not a dict", ["x"], "without a list of Contents"),
    ("Contents a dict", {"Contents": {"Key": KEY}}, "without a list of Contents"),
    ("IsTruncated a string", {"Contents": [], "IsTruncated": "true"}, "IsTruncated 'true'"),
    ("truncated without a token", {"Contents": [], "IsTruncated": True}, "without a continuation token"),
    ("truncated with an empty token", {"Contents": [], "IsTruncated": True, "NextContinuationToken": ""},
     "without a continuation token"),
]


@pytest.mark.parametrize("page, words", [c[1:] for c in BAD_PAGES], ids=[c[0] for c in BAD_PAGES])
def test_a_page_that_does_not_make_a_whole_listing_is_unknown(page, words):
    with pytest.raises(StoreError) as caught:
        parse_listing_page(page)
    assert words in str(caught.value)
    with pytest.raises(StoreError):
        PagedStore({"Contents": [{"Key": KEY, "Size": 1}], "IsTruncated": True, "NextContinuationToken": "t"},
                   page).list()


def test_an_empty_prefix_is_an_empty_listing():
    assert parse_listing_page({"KeyCount": 0, "IsTruncated": False}) == ([], None)


MARKERS = [
    ("the marker written", b'{"cluster": "etcd", "cluster_id": "c1"}', {"cluster": "etcd", "cluster_id": "c1"}),
    ("not JSON", b"<Error>hello</Error>", {"unreadable": "<Error>hello</Error>"}),
    ("a JSON list", b"[1]", {"unreadable": "[1]"}),
    ("a JSON string", b'"etcd"', {"unreadable": '"etcd"'}),
    ("JSON null", b"null", {"unreadable": "null"}),
    ("empty", b"", {"unreadable": ""}),
    ("not UTF-8", b"\xff\xfe", {"unreadable": "\ufffd\ufffd"}),
    ("too large", b'{"x": "' + b"a" * 70000 + b'"}', {"unreadable": '{"x": "' + "a" * 193}),
]


@pytest.mark.parametrize("body, expected", [c[1:] for c in MARKERS], ids=[c[0] for c in MARKERS])
def test_a_marker_is_a_dict_and_present_whatever_it_holds(body, expected):
    assert marker_content(body) == expected
