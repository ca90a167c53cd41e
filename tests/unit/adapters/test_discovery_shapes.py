"""Discovery given answers of unexpected shapes (a proxy's, an emulator's): the listing is unknown or incomplete,
never a crash, so no instance counts as gone and nothing is seeded on it. Only the answers are replaced here; the
listing logic is the real one (``tests/integration/test_discovery_regions.py`` runs it against moto)."""

import boto3
import pytest

from appliance.adapters.aws.discovery import Discovery

ME = "i-0123456789abcdef0"
OTHER = "i-0fedcba9876543210"


class Answering(Discovery):
    """Discovery whose group and EC2 answers are given (no call leaves the process)."""

    def __init__(self, members, ec2):
        session = boto3.session.Session(region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
        super().__init__(ME, "eu-central-1", session=session)
        self.members, self.ec2_answer = members, ec2

    def _own_members(self):
        return self.members

    def _describe_instances(self, region, instance_ids):
        return [{"Reservations": [{"Instances": self.ec2_answer}]}]


GOOD = {"InstanceId": OTHER, "LifecycleState": "InService", "AvailabilityZone": "eu-central-1a"}
RUNNING = {"InstanceId": OTHER, "State": {"Name": "running"}, "PrivateIpAddress": "10.0.1.5"}


def test_a_good_answer_is_a_complete_listing():
    listing = Answering([GOOD], [RUNNING]).list()
    assert listing.complete and [i.address for i in listing.instances] == ["10.0.1.5"]


@pytest.mark.parametrize("members,ec2,words", [
    pytest.param([{"InstanceId": OTHER}], [RUNNING], "KeyError", id="no lifecycle state"),
    pytest.param([{**GOOD, "InstanceId": "garbage"}], [RUNNING], "is not an instance id", id="a garbage id"),
    pytest.param([GOOD], [{"InstanceId": OTHER, "State": "running"}], "TypeError", id="a state of another shape"),
    pytest.param(["i-0fedcba9876543210"], [RUNNING], "TypeError", id="a group member that is a string"),
])
def test_an_answer_of_another_shape_is_an_unknown_listing(members, ec2, words):
    listing = Answering(members, ec2).list()
    assert not listing.complete and words in listing.problem and "unexpected shape" in listing.problem
    assert not listing.gone


@pytest.mark.parametrize("address", ["999.1.1.1", "0.0.0.0", "<html>", "10.0.1"])
def test_an_address_of_another_form_is_no_address_and_the_listing_is_incomplete(address):
    listing = Answering([GOOD], [{**RUNNING, "PrivateIpAddress": address}]).list()
    assert not listing.complete and f"EC2 does not describe {OTHER}" in listing.problem
