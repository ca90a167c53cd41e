"""What an etcd call may fail with: one base class, so that callers catch one name."""

from __future__ import annotations


class EtcdFailure(Exception):
    """An etcd call failed: etcd refused it (:class:`EtcdError`) or nobody answered (:class:`EtcdUnavailable`)."""


class EtcdError(EtcdFailure):
    """etcd answered with an error (e.g. ``etcdserver: unhealthy cluster``).

    Attributes:
        message: etcd's message. code: the gRPC code where etcd gave one. endpoint: who answered.
    """

    def __init__(self, message: str, code: int | None = None, endpoint: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.endpoint = endpoint


class EtcdUnavailable(EtcdFailure):
    """No endpoint answered within the timeout (or TLS refused the connection)."""
