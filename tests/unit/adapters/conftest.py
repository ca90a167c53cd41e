"""Helpers for adapters' tests that talk to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


def serve(request, server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    """Serve ``server`` in a daemon thread until the test ends (a finalizer shuts it down and closes it)."""
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop():
        server.shutdown()
        server.server_close()

    request.addfinalizer(stop)
    return server
