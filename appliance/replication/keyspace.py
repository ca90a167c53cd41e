"""Walking a prefix page by page, and pairing a source prefix with a destination prefix key by key.

Memory stays bounded by one page per side whatever the prefix's size: pages are
read with ``limit`` and the next page starts just after the last key seen.
"""

from __future__ import annotations

from typing import Iterator

from appliance.adapters.etcd.client import EtcdClient
from appliance.model.keys import KeyValue, prefix_end

PAGE_SIZE = 1000  # keys per Range


def iter_prefix(client: EtcdClient, prefix: bytes, revision: int = 0, page_size: int = PAGE_SIZE,
                exclude: bytes | tuple[bytes, ...] | None = None) -> Iterator[KeyValue]:
    """Every key under ``prefix`` at ``revision`` (0: each page at its own "now"), in key order.

    ``exclude``: key prefixes to leave out (bookkeeping keys that may lie under a prefix such as ``/``).

    Raises:
        EtcdError: e.g. the revision was compacted. EtcdUnavailable.
    """
    end = prefix_end(prefix)
    start = prefix
    while True:
        page = client.range(start, end, revision=revision, limit=page_size)
        for kv in page.kvs:
            if exclude is None or not kv.key.startswith(exclude):
                yield kv
        if not page.more or not page.kvs:
            return
        start = page.kvs[-1].key + b"\0"


def merge(source: Iterator[KeyValue], dest: Iterator[KeyValue], source_prefix: bytes,
          dest_prefix: bytes) -> Iterator[tuple[bytes, KeyValue | None, KeyValue | None]]:
    """Pair two key-ordered streams by the part of the key after their prefix.

    Yields (suffix, source key-value or None, destination key-value or None) in suffix order.
    """
    s, d = next(source, None), next(dest, None)
    while s is not None or d is not None:
        s_suffix = s.key[len(source_prefix):] if s is not None else None
        d_suffix = d.key[len(dest_prefix):] if d is not None else None
        if d_suffix is None or (s_suffix is not None and s_suffix < d_suffix):
            yield s_suffix, s, None
            s = next(source, None)
        elif s_suffix is None or d_suffix < s_suffix:
            yield d_suffix, None, d
            d = next(dest, None)
        else:
            yield s_suffix, s, d
            s, d = next(source, None), next(dest, None)
