"""What a simulated instance gets from its network at boot: an Elastic IP, and a TLS certificate for its addresses."""

from __future__ import annotations


def certificate_env(authority, inst: dict, public_ip: str | None) -> dict[str, str]:
    """The agent's CLIENT_*_FILE: a certificate from ``authority`` (a :class:`~appliance.sim.certificates.Authority`,
    None without TLS: {}) for the instance's addresses."""
    if authority is None:
        return {}
    files = authority.issue_instance(inst["id"], [inst["private_ip"], *([public_ip] if public_ip else [])])
    return {"CLIENT_CA_FILE": files.ca_file, "CLIENT_CERT_FILE": files.cert_file, "CLIENT_KEY_FILE": files.key_file}


def public_address(ec2, inst: dict) -> str:
    """Associate an Elastic IP with the instance (once; an agent restart keeps it), as a subnet with
    public addresses does on AWS: ``127.200.<n>.<h>`` for the private ``127.0.<n>.<h>``, a
    loopback address here, so that etcd can listen on it too (on AWS the VPC translates it).

    Args:
        ec2: a boto3 EC2 client of the instance's region. inst: {"id", "private_ip"}.
    Returns the address.
    """
    found = ec2.describe_instances(InstanceIds=[inst["id"]])["Reservations"][0]["Instances"][0]
    if found.get("PublicIpAddress"):
        return found["PublicIpAddress"]
    _, _, n, h = inst["private_ip"].split(".")
    address = f"127.200.{n}.{h}"
    # A replacement may get a terminated instance's private IP: its address is then moved over.
    known = ec2.describe_addresses(Filters=[{"Name": "public-ip", "Values": [address]}])["Addresses"]
    allocation = known[0]["AllocationId"] if known else \
        ec2.allocate_address(Domain="vpc", Address=address)["AllocationId"]
    ec2.associate_address(InstanceId=inst["id"], AllocationId=allocation, AllowReassociation=True)
    return address
