"""The one helper for "log a reason when it changed" (appliance/agent/components/reasons.py)."""

from __future__ import annotations

import logging

from appliance.agent.components.reasons import ReasonLog

log = logging.getLogger("tests.reasons")


def test_a_reason_is_logged_when_it_changes(caplog):
    reasons = ReasonLog(log, "records")
    with caplog.at_level(logging.INFO, "tests.reasons"):
        changed = [reasons.say(r) for r in ("up to date", "up to date", "sent change C1", "up to date")]
    assert changed == [True, False, True, True]
    assert [r.getMessage() for r in caplog.records] == ["records: up to date", "records: sent change C1",
                                                        "records: up to date"]
    assert reasons.last == "up to date"


def test_a_quiet_reason_is_remembered_not_logged_and_clear_forgets(caplog):
    reasons = ReasonLog(log)
    with caplog.at_level(logging.INFO, "tests.reasons"):
        reasons.say("waiting 10 s", loud=False)
        reasons.say("refused")
        reasons.clear()
        reasons.say("refused")
    assert reasons.last == "refused"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, "refused")] * 2
