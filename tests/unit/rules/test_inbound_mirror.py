"""Whether the agent runs the inbound mirror, and from where: the table of :func:`inbound.decide`."""

import pytest

from appliance.model.modes import Mode
from appliance.rules.inbound_mirror import Act, InboundFacts, decide, source_urls

WEST = ("http://127.0.2.4:2379", "http://127.0.2.5:2379")
ONE = {"eu-west-1": WEST}


@pytest.mark.parametrize("facts,act,words", [
    pytest.param(InboundFacts(False, Mode.PASSIVE, ONE, None), Act.IDLE, "not the leader", id="follower"),
    pytest.param(InboundFacts(False, Mode.PASSIVE, ONE, WEST), Act.STOP, "not the leader",
                 id="leadership-moved-away"),
    pytest.param(InboundFacts(True, Mode.ACTIVE, ONE, None), Act.IDLE, "active", id="active"),
    pytest.param(InboundFacts(True, Mode.ACTIVE, ONE, WEST), Act.STOP, "active", id="became-active"),
    pytest.param(InboundFacts(True, None, ONE, WEST), Act.KEEP, "mode is unknown", id="mode-unknown-running"),
    pytest.param(InboundFacts(True, None, ONE, None), Act.IDLE, "mode is unknown", id="mode-unknown"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, None, WEST), Act.KEEP, "records are unknown",
                 id="route53-down-running"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, None, None), Act.IDLE, "records are unknown",
                 id="route53-down"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, {}, None), Act.IDLE, "no other region", id="no-record"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, {"eu-west-1": ()}, WEST), Act.KEEP, "no other region",
                 id="record-without-addresses-running"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, {**ONE, "eu-north-1": ("http://127.0.3.4:2379",)}, None),
                 Act.IDLE, "several regions", id="two-sources"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, ONE, None), Act.START, "mirroring from eu-west-1",
                 id="start"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, ONE, tuple(reversed(WEST))), Act.KEEP,
                 "mirroring from eu-west-1", id="same-members"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, ONE, WEST[:1]), Act.RESTART, "members changed",
                 id="members-changed"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, ONE, None, 3.0, "exited with code 3"), Act.IDLE,
                 "exited with code 3; starting it again in 3 s", id="held-off-after-exit"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, ONE, WEST, serving=False), Act.STOP,
                 "this member does not serve: stopping the mirror", id="not-serving-stops-it"),
    pytest.param(InboundFacts(True, Mode.PASSIVE, ONE, None, serving=False), Act.IDLE,
                 "this member does not serve: no mirror", id="not-serving-starts-none"),
])
def test_decide(facts, act, words):
    decision = decide(facts)
    assert decision.act is act and words in decision.reason
    if act in (Act.START, Act.RESTART):
        assert decision.source == WEST and decision.region == "eu-west-1"


def test_source_urls_from_the_read_record_and_its_targets():
    latency = {"eu-central-1": ("1 1 2379 i-a.etcd-c.zone.",),
               "eu-west-1": ("1 1 2379 i-b.etcd-w.zone.", "1 1 2379 i-c.etcd-w.zone.", "1 1 2379 i-d.etcd-w.zone.")}
    addresses = {"i-a.etcd-c.zone.": "127.0.1.4", "i-b.etcd-w.zone.": "127.0.2.4", "i-c.etcd-w.zone.": "127.0.2.5"}
    assert source_urls(latency, addresses, "eu-central-1") == {"eu-west-1": WEST}
    assert source_urls({"eu-west-1": ("garbage",)}, addresses, "eu-central-1") == {"eu-west-1": ()}
