"""The formats of values from AWS, as tables: each predicate accepts what AWS hands out and nothing else."""

import pytest

from appliance.model.formats import (
    TARGET_LIFECYCLE_STATES,
    is_availability_zone,
    is_imds_token,
    is_instance_id,
    is_instance_ipv4,
    is_region,
    is_target_lifecycle_state,
)


@pytest.mark.parametrize("text, valid", [
    ("i-0123456789abcdef0", True),  # 17 hex digits, the current form
    ("i-0abc0000", True),  # 8 hex digits, the older form
    ("i-bbaf92a190b0edad4", True),  # as moto makes them
    ("i-0abc", False),  # too short
    ("i-0123456789ABCDEF0", False),  # uppercase hex: EC2 never hands it out
    ("i-0123456789abcdef", False),  # 16 digits
    ("i-0123456789abcdef01", False),  # 18 digits
    ("i-0abc000g", False),
    ("abc", False),
    ("", False),
    ("i-0abc0000\n", False),
    (" i-0abc0000", False),
    ("<html><body>Login</body></html>", False),
    (None, False),
    (b"i-0abc0000", False),
])
def test_instance_ids(text, valid):
    assert is_instance_id(text) is valid


@pytest.mark.parametrize("text, valid", [
    ("eu-central-1", True),
    ("us-east-1", True),
    ("us-gov-west-1", True),
    ("ap-southeast-4", True),
    ("cn-northwest-1", True),
    ("il-central-1", True),
    ("not a region!", False),
    ("EU-CENTRAL-1", False),
    ("eu-central", False),
    ("eu-central-123", False),
    ("eu-central-1a", False),  # a zone, not a region
    ("us-west-2-lax-1", False),  # a Local Zone's group, not a region
    ("e-central-1", False),
    ("eu-central-\u0661", False),  # an Arabic-Indic digit is no region's digit
    ("eu-" + "a" * 40 + "-1", False),  # longer than any region
    ("", False),
    ("<html>", False),
    (None, False),
])
def test_regions(text, valid):
    assert is_region(text) is valid


@pytest.mark.parametrize("text, region, valid", [
    ("eu-central-1b", "eu-central-1", True),
    ("us-gov-west-1a", "us-gov-west-1", True),
    ("us-west-2-lax-1a", "us-west-2", True),  # a Local Zone
    ("us-east-1-wl1-bos-wlz-1", "us-east-1", True),  # a Wavelength Zone
    ("us-east-1-wl1-bos-wlz-", "us-east-1", False),
    ("us-east-1-bos-1a", "us-east-1", True),  # a Local Zone
    ("eu-west-1b", "eu-central-1", False),  # another region's zone
    ("eu-central-1", "eu-central-1", False),  # the region itself
    ("eu-central-1ab", "eu-central-1", False),
    ("eu-central-1B", "eu-central-1", False),
    ("eu-central-11b", "eu-central-1", False),  # the zone of eu-central-11
    ("eu-central-1b", "not a region!", False),
    ("eu-central-1-lax-1", "eu-central-1", False),  # a Local Zone's group without its letter
    ("", "eu-central-1", False),
    (None, "eu-central-1", False),
])
def test_availability_zones(text, region, valid):
    assert is_availability_zone(text, region) is valid


@pytest.mark.parametrize("text, valid", [
    ("10.0.1.23", True),
    ("172.31.255.254", True),
    ("3.120.1.23", True),
    ("127.0.3.4", True),  # loopback: the simulator's instances have these
    ("127.200.3.5", True),
    ("169.254.10.1", True),
    ("999.1.1.1", False),
    ("0.0.0.0", False),  # unspecified
    ("255.255.255.255", False),  # broadcast
    ("224.0.0.1", False),  # multicast
    ("240.0.0.1", False),  # reserved
    ("010.0.1.23", False),  # a leading zero: octal to some parsers
    ("10.0.01.23", False),
    ("10.0.1", False),
    ("10.0.1.23.4", False),
    ("10.0.1.23 ", False),
    ("::1", False),
    ("1.2.3.\u0664", False),
    ("", False),
    ("<html>", False),
    (None, False),
])
def test_instance_ipv4_addresses(text, valid):
    assert is_instance_ipv4(text) is valid


@pytest.mark.parametrize("text, valid", [
    ("AQAEAHd4ZkZ1T3Z2Q0hCQUh6N0d3c3VvbU9hVTRPS0hHZUxmTFlZTGc9PQ==", True),
    ("x", True),
    ("t" * 1024, True),
    ("t" * 1025, False),  # huge
    ("", False),
    ("a token", False),  # a space
    ("token\r\nX-Evil: 1", False),  # a header smuggled in
    ("t\u00f6ken", False),
    (None, False),
])
def test_imds_tokens(text, valid):
    assert is_imds_token(text) is valid


@pytest.mark.parametrize("text, valid", [
    *((state, True) for state in sorted(TARGET_LIFECYCLE_STATES)),
    ("InService", True),
    ("Terminated", True),
    ("Warmed:Terminated", True),
    ("terminated", False),
    ("Terminated\n", False),
    ("Terminating", False),  # a current state, never a target one
    ("<html>", False),
    ("", False),
    (None, False),
])
def test_target_lifecycle_states(text, valid):
    assert is_target_lifecycle_state(text) is valid
