"""Reading a cluster's authentication state and mode through etcd (no policy: see
:mod:`appliance.replication.modes` for setting them)."""

from __future__ import annotations

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdUnavailable
from appliance.model.errors import ConfigError
from appliance.model.keys import MODE_KEY, Credentials
from appliance.model.modes import Mode
from appliance.model.tls import TlsFiles


def admin_client(endpoints: list[str] | tuple[str, ...], credentials: dict[str, Credentials],
                 timeout: float, tls: TlsFiles | None = None) -> EtcdClient:
    """A client as the user ``appliance`` (over TLS with ``tls``); until authentication is on, its
    requests carry no token."""
    return EtcdClient(endpoints, timeout=timeout, credentials=credentials["appliance"], tls=tls)


def authentication_on(client: EtcdClient) -> bool:
    """Whether the cluster authenticates ``client``'s user (False: authentication is off).

    Raises:
        EtcdError: e.g. the password is not the cluster's. EtcdUnavailable: no endpoint answered.
    """
    failures = []
    for endpoint in client.endpoints:
        try:
            return bool(client.auth_headers(endpoint))
        except EtcdUnavailable as exc:
            failures.append(str(exc))
    raise EtcdUnavailable("no etcd endpoint answered: " + ", ".join(failures))


def read_mode(client: EtcdClient) -> tuple[Mode, int]:
    """(mode, revision of its record) from :data:`MODE_KEY`; a cluster without a record is active (0).

    Raises:
        ConfigError: the key holds something else than active or passive. EtcdFailure.
    """
    page = client.range(MODE_KEY.encode())
    if not page.kvs:
        return Mode.ACTIVE, 0
    value = page.kvs[0].value.decode(errors="replace")
    try:
        return Mode(value), page.kvs[0].mod_revision
    except ValueError:
        raise ConfigError(f"{MODE_KEY} holds {value!r}, neither 'active' nor 'passive'") from None
