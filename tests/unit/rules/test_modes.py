"""The etcd roles' permissions in each mode, and the mode read back from them."""

import pytest

from appliance.model.keys import Permission
from appliance.model.modes import Mode
from appliance.rules.modes import mode_of, role_permissions


@pytest.mark.parametrize("mode, kind", [(Mode.ACTIVE, "READWRITE"), (Mode.PASSIVE, "READ")])
def test_the_client_role_reads_or_writes_its_prefix_and_reads_the_heartbeat(mode, kind):
    roles = role_permissions(mode, b"/app/")
    assert roles["client"] == (Permission(kind, b"/app/", b"/app0"),
                               Permission("READ", b"/__appliance/", b"/__appliance0"))
    assert roles["mirror"] == (Permission("READWRITE", b"\0", b"\0"),)
    assert mode_of(roles["client"], b"/app/") is mode


@pytest.mark.parametrize("permissions, expected", [
    (None, None),
    ((), None),
    ((Permission("READWRITE", b"/other/", b"/other0"),), None),
    ((Permission("READ", b"/app/", b"/app0"),), Mode.PASSIVE),
    ((Permission("WRITE", b"/app/", b"/app0"),), Mode.PASSIVE),  # not read-write: not what active means
])
def test_mode_of(permissions, expected):
    assert mode_of(permissions, b"/app/") is expected
