"""Snapshot files and S3 objects: etcd's trailer hash, the per-part hashes, S3's composite checksum, and
s3:// URIs."""

import base64
import hashlib

import pytest

from appliance.adapters.aws.s3 import composite_checksum, parse_uri
from appliance.adapters.etcd.snapshot import HASH_SIZE, hashes
from appliance.model.snapshots import PART_SIZE


def test_hashes_check_etcd_s_trailer(tmp_path):
    body = b"bbolt pages " * 5000
    good = tmp_path / "good.db"
    good.write_bytes(body + hashlib.sha256(body).digest())
    size, sha256, parts, trailer_ok = hashes(str(good))
    assert (size, trailer_ok) == (len(body) + HASH_SIZE, True)
    assert sha256 == hashlib.sha256(good.read_bytes()).hexdigest() and len(parts) == 1
    bad = tmp_path / "bad.db"
    flipped = bytearray(good.read_bytes())
    flipped[100] ^= 1
    bad.write_bytes(bytes(flipped))
    assert hashes(str(bad))[3] is False
    short = tmp_path / "short.db"
    short.write_bytes(b"x" * 10)
    assert hashes(str(short))[3] is False


def test_hashes_across_parts(tmp_path):
    body = b"\x01" * (PART_SIZE + 1000)  # the trailer straddles nothing, the body two parts
    path = tmp_path / "two.db"
    path.write_bytes(body + hashlib.sha256(body).digest())
    size, sha256, parts, trailer_ok = hashes(str(path))
    assert trailer_ok and len(parts) == 2
    assert parts[0] == hashlib.sha256(path.read_bytes()[:PART_SIZE]).hexdigest()


def test_composite_checksum_is_s3_s_checksum_of_checksums():
    parts = [hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()]
    expected = base64.b64encode(hashlib.sha256(hashlib.sha256(b"a").digest() + hashlib.sha256(b"b").digest())
                                .digest()).decode() + "-2"
    assert composite_checksum(parts) == expected


@pytest.mark.parametrize("uri,parsed", [("s3://b/etcd/x.db", ("b", "etcd/x.db")), ("s3://b/k", ("b", "k"))])
def test_parse_uri(uri, parsed):
    assert parse_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["b/k", "s3://b", "s3://b/", "https://b/k"])
def test_parse_uri_refuses(uri):
    with pytest.raises(ValueError):
        parse_uri(uri)
