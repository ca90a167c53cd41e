"""A watch over etcd's JSON gateway (``POST /v3/watch``): a stream of watch responses, one JSON object a line.

Field names follow ``rpc.proto`` (WatchCreateRequest, WatchResponse, mvccpb.Event).
What a mirror needs and ``etcd3gw`` drops: ``compact_revision`` (the start
revision was compacted: the watch is cancelled), progress notifications (a
response with no events whose ``header.revision`` promises that every later
event has a higher revision; etcd docs, api_reference_v3, ResponseHeader) and
``prev_kv``. A PUT event carries no ``type`` field (the enum's zero value).
"""

from __future__ import annotations

import base64
import json
from typing import Iterator

import requests

from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.tls import TlsFiles
from appliance.model.watch import WatchResponse


class WatchStream:
    """Watch ``[key, range_end)`` from ``start_revision`` on one endpoint; iterate for responses.

    Args:
        endpoint: a client URL. key, range_end: bytes (see :func:`appliance.model.keys.prefix_end`).
        start_revision: first revision to deliver (0: from now).
        prev_kv: ask for each event's previous key-value.
        progress_notify: ask for periodic progress notifications (etcd's interval:
            ``--experimental-watch-progress-notify-interval``, 10 minutes by default).
        connect_timeout: seconds to connect. idle_timeout: seconds without any message
            after which iteration raises :class:`EtcdUnavailable` (reconnect then).
        tls: CA and client certificate for an ``https`` endpoint (see :class:`EtcdClient`).

    Raises (while iterating):
        EtcdUnavailable: the connection failed or stayed silent for ``idle_timeout``.
        EtcdError: etcd refused the watch.
    """

    def __init__(self, endpoint: str, key: bytes, range_end: bytes, start_revision: int = 0, prev_kv: bool = False,
                 progress_notify: bool = True, connect_timeout: float = 3.0, idle_timeout: float = 60.0,
                 headers: dict[str, str] | None = None, tls: TlsFiles | None = None):
        request = {"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(range_end).decode(),
                   "prev_kv": prev_kv, "progress_notify": progress_notify}
        if start_revision:
            request["start_revision"] = str(start_revision)
        self.endpoint = endpoint.rstrip("/")
        try:
            self._response = requests.post(self.endpoint + "/v3/watch", data=json.dumps({"create_request": request}),
                                           headers=headers or {}, stream=True,
                                           timeout=(connect_timeout, idle_timeout),
                                           **(tls.requests_options() if tls is not None else {}))
        except requests.RequestException as exc:
            raise EtcdUnavailable(f"{endpoint}: watch: {type(exc).__name__}") from None
        if self._response.status_code != 200:
            text = self._response.text[:200]
            self._response.close()
            raise EtcdError(f"watch refused (HTTP {self._response.status_code}): {text}", endpoint=endpoint)

    def __iter__(self) -> Iterator[WatchResponse]:
        try:
            # chunk_size None: hand over each HTTP chunk as it arrives (a size would wait to fill it).
            for line in self._response.iter_lines(chunk_size=None):
                if not line:
                    continue
                payload = json.loads(line)
                if not isinstance(payload, dict):
                    raise ValueError("not a JSON object")
                if "error" in payload:
                    error = payload["error"]
                    raise EtcdError(error.get("message", str(error)) if isinstance(error, dict) else str(error),
                                    endpoint=self.endpoint)
                yield WatchResponse.from_json(payload.get("result", payload))
        except requests.RequestException as exc:
            raise EtcdUnavailable(f"{self.endpoint}: watch stream ended: {type(exc).__name__}") from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # Something that is not etcd's watch answer (a proxy's page, another service): unknown, reconnect.
            raise EtcdUnavailable(f"{self.endpoint}: the watch answered something that is not etcd's "
                                  f"({type(exc).__name__})") from None
        raise EtcdUnavailable(f"{self.endpoint}: watch stream closed by the server")

    def close(self) -> None:
        self._response.close()
