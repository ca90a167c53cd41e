"""Another agent's status document as it enters: a table of shapes, each understood whole or not at all."""

import pytest

from appliance.model.observation import MalformedStatus, PeerStatus, peer_status

REGION, OTHER = "eu-central-1", "eu-west-1"
GOOD = {"running": True, "has_data": True, "seeding": False, "quorum": False, "revision": 42, "region": REGION,
        "active_regions": [REGION, OTHER], "state": "serve", "instance_id": "i-2"}

UNDERSTOOD = [
    ("a serving agent's document", GOOD, PeerStatus("i-2", True, True, False, False, 42, (REGION, OTHER))),
    ("a fresh agent: no quorum, no revision yet", {"running": False, "has_data": False, "region": REGION},
     PeerStatus("i-2", False, False, regions=(REGION,))),
    ("revision null", {**GOOD, "revision": None},
     PeerStatus("i-2", True, True, revision=None, regions=(REGION, OTHER))),
    ("revision 0", {**GOOD, "revision": 0}, PeerStatus("i-2", True, True, revision=0, regions=(REGION, OTHER))),
    ("revision just below 2**63", {**GOOD, "revision": 2 ** 63 - 1},
     PeerStatus("i-2", True, True, revision=2 ** 63 - 1, regions=(REGION, OTHER))),
    ("no active_regions: its own region", {**GOOD, "active_regions": []},
     PeerStatus("i-2", True, True, revision=42, regions=(REGION,))),
    ("seeding and quorum true", {**GOOD, "seeding": True, "quorum": True},
     PeerStatus("i-2", True, True, True, True, 42, (REGION, OTHER))),
]


@pytest.mark.parametrize("body, expected", [c[1:] for c in UNDERSTOOD], ids=[c[0] for c in UNDERSTOOD])
def test_a_well_formed_document_is_understood(body, expected):
    assert peer_status("i-2", body) == expected


NOT_UNDERSTOOD = [
    ("a list", [GOOD], "JSON list"),
    ("a string", "running", "JSON str"),
    ("running the string false", {**GOOD, "running": "false"}, "running is 'false'"),
    ("running 0", {**GOOD, "running": 0}, "running is 0"),
    ("running missing", {k: v for k, v in GOOD.items() if k != "running"}, "running is missing"),
    ("has_data null", {**GOOD, "has_data": None}, "has_data is missing or null"),
    ("seeding 1", {**GOOD, "seeding": 1}, "seeding is 1"),
    ("quorum null", {**GOOD, "quorum": None}, "quorum is missing or null"),
    ("quorum the string true", {**GOOD, "quorum": "true"}, "quorum is 'true'"),
    ("revision true", {**GOOD, "revision": True}, "revision is True"),
    ("revision negative", {**GOOD, "revision": -1}, "revision is -1"),
    ("revision 2**63", {**GOOD, "revision": 2 ** 63}, "not an integer in [0, 2**63)"),
    ("revision a string", {**GOOD, "revision": "99"}, "revision is '99'"),
    ("revision a float", {**GOOD, "revision": 42.0}, "revision is 42.0"),
    ("region missing", {k: v for k, v in GOOD.items() if k != "region"}, "region is missing"),
    ("region not a region", {**GOOD, "region": "Frankfurt"}, "region is 'Frankfurt'"),
    ("region a list", {**GOOD, "region": [REGION]}, "not a region name"),
    ("active_regions a string", {**GOOD, "active_regions": REGION}, "active_regions is 'eu-central-1'"),
    ("active_regions with a number", {**GOOD, "active_regions": [REGION, 1]}, "not a list of region names"),
    ("active_regions null", {**GOOD, "active_regions": None}, "active_regions is missing or null"),
    ("a long value is cut short", {**GOOD, "running": "x" * 500}, "..."),
]


@pytest.mark.parametrize("body, words", [c[1:] for c in NOT_UNDERSTOOD], ids=[c[0] for c in NOT_UNDERSTOOD])
def test_a_malformed_document_is_refused_in_one_line(body, words):
    with pytest.raises(MalformedStatus) as caught:
        peer_status("i-2", body)
    assert words in str(caught.value) and "\n" not in str(caught.value) and len(str(caught.value)) < 120
