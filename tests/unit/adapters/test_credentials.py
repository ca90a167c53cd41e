"""The credentials file: private, never overwritten, and each problem said."""

import json
import os

import pytest

from appliance.adapters.credentials import CredentialsFileError, create_credentials, credentials_for, load_credentials
from appliance.model.errors import ConfigError
from appliance.model.keys import Credentials
from appliance.model.modes import USERS


def test_credentials_file_is_private_never_overwritten_and_validated(tmp_path):
    path = str(tmp_path / "c.json")
    made = create_credentials(path)
    assert set(made) == set(USERS) and oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert load_credentials(path) == made
    assert "password" not in repr(made["client"]) and made["client"].password not in repr(made["client"])
    with pytest.raises(ConfigError, match="cannot create it"):
        create_credentials(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_credentials(path)
    os.chmod(path, 0o600)
    with open(path, "w") as f:
        json.dump(["not", "a", "map"], f)
    with pytest.raises(ConfigError, match="user name to password"):
        load_credentials(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_credentials(str(tmp_path / "missing.json"))
    with open(path, "w") as f:
        json.dump({"client": "x"}, f)
    with pytest.raises(ConfigError, match="no password for the user 'mirror'"):
        credentials_for(path, "mirror")
    assert credentials_for(path, "client") == Credentials("client", "x")


def _private(path, data: bytes) -> str:
    path.write_bytes(data)
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize("make,problem", [
    pytest.param(lambda p: str(p / "missing.json"), "does not exist", id="missing"),
    pytest.param(lambda p: str(p), "is not a regular file", id="directory"),
    pytest.param(lambda p: (os.mkfifo(p / "fifo", 0o600), str(p / "fifo"))[1], "is not a regular file", id="fifo"),
    pytest.param(lambda p: (_private(p / "c", b'{"appliance": "x"}'), os.chmod(p / "c", 0o640), str(p / "c"))[2],
                 "is readable by others (mode 640); chmod 600 it", id="group-readable"),
    pytest.param(lambda p: _private(p / "c", b"\xff\xfe\x00binary"), "is not UTF-8 text", id="binary"),
    pytest.param(lambda p: _private(p / "c", b"user=password"), "is not JSON (Expecting value)", id="not-json"),
    pytest.param(lambda p: _private(p / "c", b'["appliance"]'), "holds a JSON array, not an object", id="array"),
    pytest.param(lambda p: _private(p / "c", b'"appliance"'), "holds a JSON string, not an object", id="string"),
    pytest.param(lambda p: _private(p / "c", b'{"appliance": 7}'), "a password that is not a non-empty",
                 id="number-password"),
    pytest.param(lambda p: _private(p / "c", b'{"appliance": ""}'), "a password that is not a non-empty",
                 id="empty-password"),
    pytest.param(lambda p: _private(p / "c", b'{"client": "x"}'), "has no password for the user 'appliance'",
                 id="lacks-the-user"),
    pytest.param(lambda p: _private(p / "c", b" " * (70 * 1024)), "is larger than 64 KiB", id="huge"),
])
def test_each_problem_of_the_file_is_its_own_error(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(CredentialsFileError) as caught:
        credentials_for(path, "appliance", "APPLIANCE_CREDENTIALS_FILE")
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"APPLIANCE_CREDENTIALS_FILE {path}: ") and "\n" not in str(caught.value)
    assert caught.value.exit_code == 2
