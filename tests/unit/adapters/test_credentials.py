"""The credentials file: private, never overwritten, and each problem said."""

import json
import os

import pytest

from appliance.adapters.credentials import create_credentials, credentials_for, load_credentials
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
    with pytest.raises(ConfigError, match="cannot read it"):
        load_credentials(str(tmp_path / "missing.json"))
    with open(path, "w") as f:
        json.dump({"client": "x"}, f)
    with pytest.raises(ConfigError, match="no password for the user 'mirror'"):
        credentials_for(path, "mirror")
    assert credentials_for(path, "client") == Credentials("client", "x")
