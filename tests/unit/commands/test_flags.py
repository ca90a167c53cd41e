"""The shared flag helpers: client URLs, key prefixes and the clients' prefix, each refusal one line naming its flag."""

import pytest

from appliance.commands import flags
from appliance.model.errors import ConfigError


@pytest.mark.parametrize("text,found", [
    ("http://10.0.1.4:2379", ("http://10.0.1.4:2379",)),
    ("https://etcd.example.org:2379/, http://127.0.0.2:2379", ("https://etcd.example.org:2379",
                                                                "http://127.0.0.2:2379")),
    ("http://[::1]:2379", ("http://[::1]:2379",)),
])
def test_good_urls(text, found):
    assert flags.urls(text, "--endpoints") == found


@pytest.mark.parametrize("text", ["10.0.1.4:2379", "ftp://x", "http://", "http://h:99999", "http://h:0",
                                  "http://h:2379/v3", "http://h:2379?x=1", "http://user:pw@h:2379", "", ",",
                                  "http://h:port", "http://h\n:2379"])
def test_bad_urls_name_the_flag(text):
    with pytest.raises(ConfigError) as caught:
        flags.urls(text, "--endpoints")
    assert str(caught.value).startswith("--endpoints: must be comma-separated client URLs")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["/config/", "/a", "config/"])
def test_client_prefixes(text):
    assert flags.client_prefix(text, "--prefix") == text.encode()


@pytest.mark.parametrize("text", ["/", "/_", "/__app", "/__appliance/", "/__appliance/mode", "/__replication/x/"])
def test_a_client_prefix_never_covers_the_appliance_s_own_keys(text):
    # The mode's roles grant the client role this prefix: over /__appliance/ it could set the mode itself.
    with pytest.raises(ConfigError, match="--prefix: must not be / nor overlap /__replication/ or /__appliance/"):
        flags.client_prefix(text, "--prefix")


@pytest.mark.parametrize("text", ["", "a\tb", "x" * 1025])
def test_bad_prefixes(text):
    with pytest.raises(ConfigError, match="--source-prefix: must be a key prefix of 1 to 1024 printable"):
        flags.prefix(text, "--source-prefix")
