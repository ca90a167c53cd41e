"""etcd's maintenance calls: defragment a member, read and disarm alarms, a member's key-value hash.

Source: etcd's ``api/etcdserverpb/rpc.proto`` (Maintenance service) and its peer handler
(``/members/hashkv``). I/O only; what to call when is :mod:`appliance.rules.defragmentation`,
:mod:`appliance.rules.alarms` and :mod:`appliance.rules.corruption`.
"""

from __future__ import annotations

import json

import requests

from appliance.adapters.etcd import answers
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.maintenance import Alarm, KvHash
from appliance.model.tls import TlsFiles

HASHKV_PATH = "/members/hashkv"  # etcd's peer handler for the leader's corruption check; the gateway has no HashKV
MAX_ANSWER = 64 * 1024  # bytes: a HashKV answer is a few hundred


def defragment(client: EtcdClient, endpoint: str) -> None:
    """Defragment the member at ``endpoint`` (its client URL). It blocks that member's reads and writes until
    done; ``client``'s timeout must cover it (seconds, about a second per 100 MB here).

    Raises:
        EtcdUnavailable: no answer in time (the defragmentation may still complete). EtcdError.
    """
    client.call("/v3/maintenance/defragment", {}, [endpoint])


def alarms(client: EtcdClient) -> tuple[Alarm, ...]:
    """The cluster's raised alarms (any member answers for all).

    Raises:
        EtcdUnavailable, EtcdError.
    """
    return client.call("/v3/maintenance/alarm", {"action": "GET"}, parse=answers.alarms)


def disarm(client: EtcdClient, alarm: Alarm) -> None:
    """Deactivate ``alarm`` (etcd's ``alarm disarm`` for one member and kind).

    Raises:
        EtcdUnavailable, EtcdError.
    """
    client.call("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": str(alarm.member_id),
                                          "alarm": alarm.kind.value})


def hash_kv(session: requests.Session, peer_url: str, member_id: int, revision: int, timeout: float,
            tls: TlsFiles | None = None) -> KvHash:
    """HashKV of the member at ``peer_url`` up to ``revision``, asked on its peer port as etcd's own leader asks
    (the JSON gateway maps HashKV and Hash to one path and answers Hash). ``tls``: the peer certificates.

    Raises:
        EtcdError: etcd refused (e.g. "mvcc: required revision has been compacted").
        EtcdUnavailable: no answer within ``timeout`` seconds, or not etcd's.
    """
    url = peer_url.rstrip("/") + HASHKV_PATH
    options = tls.requests_options() if tls is not None else {}
    try:
        with session.get(url, data=json.dumps({"revision": revision}), timeout=timeout, stream=True,
                         **options) as response:
            body = response.raw.read(MAX_ANSWER + 1, decode_content=True)
    except requests.RequestException as exc:
        raise EtcdUnavailable(f"{peer_url}: {type(exc).__name__}") from None
    if len(body) > MAX_ANSWER:
        raise answers.not_etcd(peer_url, HASHKV_PATH, f"an answer over {MAX_ANSWER} bytes")
    if response.status_code != 200:
        raise EtcdError(body.decode("utf-8", "replace").strip()[:200] or f"HTTP {response.status_code}", None,
                        peer_url)
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        raise answers.not_etcd(peer_url, HASHKV_PATH, "not JSON") from None
    if not isinstance(answer, dict):
        raise answers.not_etcd(peer_url, HASHKV_PATH, "not a JSON object")
    return answers.checked(peer_url, HASHKV_PATH, answers.kv_hash(member_id, revision), answer)
