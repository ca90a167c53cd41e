"""Instances of the autoscaling groups and one listing of them, as the AWS APIs told it."""

from __future__ import annotations

import dataclasses

# ASG lifecycle states of an instance being taken out (EC2 Auto Scaling user guide,
# "Amazon EC2 Auto Scaling instance lifecycle"). Detaching/Detached are left out on
# purpose: an operator who detaches an instance keeps its machine, so its member stays
# (and, no longer listed but running in EC2, it makes the listing incomplete).
TERMINATING_STATES = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated"})
# The tag naming a group's (and a security group's) cluster, the stack's name; set by the
# templates, read in the other active regions.
CLUSTER_TAG = "etcd-appliance:cluster"


@dataclasses.dataclass(frozen=True)
class Instance:
    """One instance of a group: id, private IPv4 (None if EC2 did not say), ASG lifecycle state,
    availability zone and region, public IPv4 (None: none or not asked)."""

    instance_id: str
    private_ip: str | None
    lifecycle_state: str
    availability_zone: str = ""
    region: str = ""
    public_ip: str | None = None
    advertises_public: bool = False  # ADVERTISE_ADDRESS=public: its member advertises public_ip

    @property
    def address(self) -> str | None:
        """Where its member and agent are reached: the private IP, or the public one when the
        cluster advertises public addresses (None: EC2 did not say)."""
        return self.public_ip if self.advertises_public else self.private_ip

    @property
    def in_service(self) -> bool:
        return self.lifecycle_state == "InService"

    @property
    def terminating(self) -> bool:
        return self.lifecycle_state in TERMINATING_STATES


@dataclasses.dataclass(frozen=True)
class Listing:
    """What the AWS APIs said about the groups at one moment.

    An incomplete listing is *unknown*, never *gone* (docs/design.md, "An incomplete listing is
    unknown, never gone"): nothing is seeded or removed on its word.

    Attributes:
        complete: True only if every call succeeded and the answers agree.
        instances: the groups' instances, in any lifecycle state.
        gone: of the instance ids asked to be confirmed, those EC2 reports as
            terminated, shutting down or not existing.
        problem: why the listing is incomplete ("" when complete).
        desired_capacity: the groups' DesiredCapacity added up, None if not known.
    """

    complete: bool
    instances: tuple[Instance, ...] = ()
    gone: frozenset[str] = frozenset()
    problem: str = ""
    desired_capacity: int | None = None

    def get(self, instance_id: str) -> Instance | None:
        return next((i for i in self.instances if i.instance_id == instance_id), None)

    def in_service(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.in_service)

    @classmethod
    def unknown(cls, problem: str) -> "Listing":
        return cls(complete=False, problem=problem)
