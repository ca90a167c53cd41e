"""The security group rules of a cluster across regions, as tables: no AWS."""

import pytest

from appliance.model.instances import Instance, Listing
from appliance.model.security_groups import GroupRules, RuleChange
from appliance.rules.peer_access import missing_for, plan

EU, WEST, US = "eu-central-1", "eu-west-1", "us-east-1"
A = Instance("i-a", "127.0.1.4", "InService", region=EU)
B = Instance("i-b", "127.0.2.4", "InService", region=WEST)
C = Instance("i-c", "127.0.3.4", "InService", region=US)
B_GOING = Instance("i-b", "127.0.2.4", "Terminating", region=WEST)
# ADVERTISE_ADDRESS=public: the members are reached at (and send from) their public addresses.
PA = Instance("i-a", "127.0.1.4", "InService", region=EU, public_ip="127.200.1.4", advertises_public=True)
PB = Instance("i-b", "127.0.2.4", "InService", region=WEST, public_ip="127.200.2.4", advertises_public=True)


def group(region, *cidrs, egress=None):
    return GroupRules(region, f"sg-{region}", frozenset(cidrs), frozenset(cidrs if egress is None else egress))


def both(region, cidr, add):
    return [RuleChange(region, f"sg-{region}", d, cidr, add) for d in ("ingress", "egress")]


OPEN = {EU: group(EU, "127.0.2.4/32", "127.0.3.4/32"), WEST: group(WEST, "127.0.1.4/32", "127.0.3.4/32"),
        US: group(US, "127.0.1.4/32", "127.0.2.4/32")}
FULL = Listing(True, (A, B, C))

PLANS = [
    # (name, groups, listing, member hosts, expected changes, words of the reason)
    ("every rule in place: nothing", OPEN, FULL, ["127.0.1.4", "127.0.2.4", "127.0.3.4"], [], "exactly"),
    ("new groups: every other region's instance, both ways, additions only",
     {EU: group(EU), WEST: group(WEST)}, Listing(True, (A, B)), ["127.0.1.4"],
     both(EU, "127.0.2.4/32", True) + both(WEST, "127.0.1.4/32", True), "open eu-central-1 ingress from 127.0.2.4/32"),
    ("an instance replaced in one region: open the new one first, close the old one after",
     OPEN, Listing(True, (A, Instance("i-b2", "127.0.2.5", "InService", region=WEST), C)),
     ["127.0.1.4", "127.0.3.4"],
     both(EU, "127.0.2.5/32", True) + both(US, "127.0.2.5/32", True)
     + both(EU, "127.0.2.4/32", False) + both(US, "127.0.2.4/32", False), "close us-east-1 egress to 127.0.2.4/32"),
    ("gone from the listing but still a member: its rules stay until it is removed",
     OPEN, Listing(True, (A, C)), ["127.0.1.4", "127.0.2.4", "127.0.3.4"], [], "exactly"),
    ("terminating: still listed, rules stay", OPEN, Listing(True, (A, B_GOING, C)), ["127.0.1.4"], [], "exactly"),
    ("incomplete listing: nothing changes, even for an address no one knows",
     {EU: group(EU, "10.9.9.9/32")}, Listing(False, (A,), problem="eu-west-1 failed"), [], [],
     "incomplete: eu-west-1 failed"),
    ("no listing yet: nothing", OPEN, None, [], [], "not taken yet"),
    ("a region without the stack has no group: only the others change",
     {EU: group(EU)}, Listing(True, (A, B)), [], both(EU, "127.0.2.4/32", True), "open"),
    ("public addresses: every member's in every group, its own region's too (a group-to-group rule matches "
     "private addresses only)",
     {EU: group(EU), WEST: group(WEST)}, Listing(True, (PA, PB)), [],
     [RuleChange(r, f"sg-{r}", d, c, True) for r in (EU, WEST) for d in ("ingress", "egress")
      for c in ("127.200.1.4/32", "127.200.2.4/32")], "open"),
    ("public addresses: rules of the private ones (before a switch to public) go once nobody uses them",
     {EU: group(EU, "127.0.2.4/32", "127.200.1.4/32", "127.200.2.4/32"),
      WEST: group(WEST, "127.200.1.4/32", "127.200.2.4/32")}, Listing(True, (PA, PB)),
     ["127.200.1.4", "127.200.2.4"], both(EU, "127.0.2.4/32", False), "close eu-central-1"),
    ("only one direction missing: only that one is added",
     {EU: group(EU, "127.0.2.4/32", egress=())}, Listing(True, (A, B)), [],
     [RuleChange(EU, "sg-eu-central-1", "egress", "127.0.2.4/32", True)], "egress to 127.0.2.4/32"),
]


@pytest.mark.parametrize("name,groups,listing,hosts,changes,words", PLANS, ids=[p[0] for p in PLANS])
def test_plan(name, groups, listing, hosts, changes, words):
    access = plan(groups, listing, hosts)
    assert list(access.changes) == changes
    assert words in access.reason


def test_an_instance_opens_itself_only_in_the_other_regions():
    groups = {EU: group(EU), WEST: group(WEST, "127.0.1.4/32", egress=()), US: group(US, "127.0.1.4/32")}
    assert list(missing_for(groups, EU, "127.0.1.4")) == [
        RuleChange(WEST, "sg-eu-west-1", "egress", "127.0.1.4/32", True)]
    assert missing_for(OPEN, EU, "127.0.1.4") == ()
    assert missing_for({EU: group(EU)}, EU, "127.0.1.4") == ()


def test_with_public_addresses_an_instance_opens_itself_in_its_own_region_too():
    assert list(missing_for({EU: group(EU), WEST: group(WEST)}, EU, "127.200.1.4", public=True)) == \
        both(EU, "127.200.1.4/32", True) + both(WEST, "127.200.1.4/32", True)


def test_an_instance_is_reached_at_the_address_its_cluster_advertises():
    assert (PA.address, A.address) == ("127.200.1.4", "127.0.1.4")
    no_public_yet = Instance("i-a", "127.0.1.4", "InService", region=EU, advertises_public=True)
    assert no_public_yet.address is None
