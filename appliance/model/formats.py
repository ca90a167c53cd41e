"""The formats of names that come from AWS and from operators: one definition each, checked where a value enters.

Each ``is_*`` is a pure predicate on text; none raises. The formats follow AWS's own documentation
(EC2 user guide, "Resource IDs": ``i-`` and 8 or 17 hexadecimal digits; "Regions and Zones": a region
such as ``eu-central-1`` or ``us-gov-west-1``, an availability zone that is its region and a letter, a
Local Zone such as ``us-west-2-lax-1a``, a Wavelength Zone such as ``us-east-1-wl1-bos-wlz-1``).
"""

from __future__ import annotations

import ipaddress
import re

_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# re.ASCII: without it \d also matches other scripts' digits ("eu-central-\u0661"), which no region has.
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}", re.ASCII)
# "b", a Local Zone's "-lax-1a" or a Wavelength Zone's "-wl1-bos-wlz-1"
_ZONE_SUFFIX = re.compile(r"[a-z]|-[a-z]+-\d{1,2}[a-z]|-wl\d{1,2}-[a-z]+-wlz-\d{1,2}", re.ASCII)
# An IMDSv2 session token goes into a request header: visible ASCII only, so it cannot smuggle a header in.
_IMDS_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")
# The steady states EC2 Auto Scaling writes to the metadata item autoscaling/target-lifecycle-state
# (EC2 Auto Scaling user guide, "Retrieve the target lifecycle state through instance metadata").
TARGET_LIFECYCLE_STATES = frozenset({"InService", "Terminated", "Detached", "Standby", "Warmed:Hibernated",
                                     "Warmed:Running", "Warmed:Stopped", "Warmed:Terminated"})


def is_instance_id(text: str) -> bool:
    """True for an EC2 instance id such as ``i-0123456789abcdef0`` (or the older 8-digit form)."""
    return isinstance(text, str) and _INSTANCE_ID.fullmatch(text) is not None


def is_region(text: str) -> bool:
    """True for an AWS region name such as ``eu-central-1``."""
    return isinstance(text, str) and len(text) <= 32 and _REGION.fullmatch(text) is not None


def is_availability_zone(text: str, region: str) -> bool:
    """True for an availability zone (or Local or Wavelength Zone) of ``region``, e.g. ``eu-central-1b``."""
    return (is_region(region) and isinstance(text, str) and text.startswith(region)
            and _ZONE_SUFFIX.fullmatch(text[len(region):]) is not None)


def is_instance_ipv4(text: str) -> bool:
    """True for a dotted-quad IPv4 address an instance can have: not unspecified, multicast, broadcast or
    reserved. Loopback addresses pass: the simulator gives each instance one (127.0.0.0/8)."""
    try:
        address = ipaddress.IPv4Address(text)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return False
    return not (address.is_unspecified or address.is_multicast or address.is_reserved
                or address == ipaddress.IPv4Address("255.255.255.255")) and str(address) == text


def is_imds_token(text: str) -> bool:
    """True for an IMDSv2 session token as the metadata service hands it out: 1 to 1024 visible ASCII characters
    (AWS's are about 56), nothing that could break the header ``X-aws-ec2-metadata-token`` it is sent in."""
    return isinstance(text, str) and _IMDS_TOKEN.fullmatch(text) is not None


def is_target_lifecycle_state(text: str) -> bool:
    """True for a target lifecycle state the metadata item ``autoscaling/target-lifecycle-state`` may hold
    (:data:`TARGET_LIFECYCLE_STATES`, e.g. ``InService``, ``Terminated``)."""
    return isinstance(text, str) and text in TARGET_LIFECYCLE_STATES
