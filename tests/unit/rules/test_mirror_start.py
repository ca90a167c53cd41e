"""How a mirror starts from its stored position, as a table."""

import pytest

from appliance.rules.mirror_start import Start, start_action

STARTS = [
    ("first run", None, None, False, False, Start.COPY, "no stored position"),
    ("resume", 41, None, False, False, Start.RESUME, "resuming from the stored position 41"),
    ("--reload wins", 41, None, True, False, Start.RELOAD, "--reload"),
    ("compacted exactly to position + 1: still resumable", 41, 42, False, False, Start.RESUME, "resuming"),
    ("compacted past: stop", 41, 50, False, False, Start.STOP, "compacted to revision 50, past the stored position 41"),
    ("compacted past, auto-reload", 41, 50, False, True, Start.RELOAD, "--auto-reload"),
]


@pytest.mark.parametrize("name,position,compacted,reload,auto,action,words", STARTS, ids=[s[0] for s in STARTS])
def test_start_action(name, position, compacted, reload, auto, action, words):
    got, reason = start_action(position, compacted, reload, auto)
    assert got is action
    assert words in reason
