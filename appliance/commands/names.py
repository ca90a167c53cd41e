"""The grammars of names the agent and its commands are given: DNS names, regions, S3 buckets and key prefixes,
and AWS's own names (lifecycle hooks, CloudFormation stacks and logical ids, CloudWatch namespaces).

Each is a :class:`~appliance.commands.values.Value`: text -> value, ValueError saying what is allowed.
"""

from __future__ import annotations

import re

from appliance.commands.values import Value, optional
from appliance.model.formats import is_region


def _cluster_name(text: str) -> str:
    if not text or len(text) > 63 or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in text):
        raise ValueError("must be 1-63 letters, digits, '-', '_' or '.'")
    return text


def _hosted_zone(text: str) -> str:
    name = text.lower()
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    if len(name) > 253 or not all(
            0 < len(label) <= 63 and set(label) <= allowed and not label.startswith("-") and not label.endswith("-")
            for label in labels):
        raise ValueError("must be a DNS zone name such as example.org.")
    return name + "."


def _dns_service_name(text: str) -> str:
    name = text.lower().rstrip(".")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    if len(name) > 200 or not all(0 < len(label) <= 63 and set(label) <= allowed and label[0] != "-"
                                  and label[-1] != "-" for label in name.split(".")):
        raise ValueError("must be a DNS name relative to HOSTED_ZONE, such as etcd")
    return name


def _dns_name(text: str) -> str:
    """``text`` as written, if it is a DNS name (switchover's --write-name and --to-domain)."""
    try:
        _dns_service_name(text)
    except ValueError:
        raise ValueError("must be a DNS name such as etcd.example.org.") from None
    return text


def _regions(text: str) -> tuple[str, ...]:
    regions = tuple(r.strip() for r in text.split(",") if r.strip())
    if not all(is_region(r) for r in regions) or len(set(regions)) != len(regions):
        raise ValueError("must be AWS regions separated by commas, each once, e.g. eu-central-1,eu-west-1")
    return regions


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's bucket naming rules (general purpose)


def _bucket(text: str) -> str:
    if not _BUCKET.fullmatch(text) or ".." in text:
        raise ValueError("must be an S3 bucket name (3-63 lowercase letters, digits, '.' or '-')")
    return text


def _key_prefix(text: str) -> str:
    if text.startswith("/") or (text and not text.endswith("/")) or len(text) > 512 or "\0" in text:
        raise ValueError("must be empty or an S3 key prefix ending with '/', not starting with one, e.g. etcd/")
    return text


# AWS's own grammars (Auto Scaling API reference, LifecycleHookName; CloudFormation's stack names, stack ids and
# logical ids; CloudWatch's namespaces, which may not begin with AWS/, the prefix of AWS's own).
_HOOK_NAME = re.compile(r"[A-Za-z0-9_/-]{1,255}")
_STACK = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}|arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:stack/"
                    r"[A-Za-z][A-Za-z0-9-]{0,127}/[0-9a-f-]{36}")
_LOGICAL_ID = re.compile(r"[A-Za-z0-9]{1,255}")
_NAMESPACE = re.compile(r"[A-Za-z0-9._/#-][A-Za-z0-9._/#:-]{0,254}")


def _matching(pattern: re.Pattern, what: str, refuse: str = "") -> Value:
    def parse(text: str) -> str:
        if not pattern.fullmatch(text) or (refuse and text.startswith(refuse)):
            raise ValueError(what)
        return text
    return Value(what, parse)


CLUSTER_NAME = Value("must be 1-63 letters, digits, '-', '_' or '.'", _cluster_name)
HOSTED_ZONE = optional(Value("must be a DNS zone name such as example.org.", _hosted_zone))
DNS_NAME = Value("must be a DNS name such as etcd.example.org.", lambda text: _dns_name(text))
DNS_SERVICE_NAME = optional(Value("must be a DNS name relative to HOSTED_ZONE, such as etcd", _dns_service_name))
REGIONS = Value("must be AWS regions separated by commas, each once, e.g. eu-central-1,eu-west-1", _regions)
BUCKET = optional(Value("must be an S3 bucket name (3-63 lowercase letters, digits, '.' or '-')", _bucket))
KEY_PREFIX = Value("must be empty or an S3 key prefix ending with '/', not starting with one, e.g. etcd/",
                   _key_prefix)
HOOK_NAME = optional(_matching(_HOOK_NAME, "must be a lifecycle hook name (1-255 letters, digits, '-', '_' or '/')"))
STACK = optional(_matching(_STACK, "must be a CloudFormation stack name (a letter, then up to 127 letters, digits or "
                           "'-') or stack id (arn:aws:cloudformation:…:stack/NAME/ID)"))
LOGICAL_ID = optional(_matching(_LOGICAL_ID, "must be a template's logical resource id (1-255 letters or digits)"))
NAMESPACE = optional(_matching(_NAMESPACE, "must be a CloudWatch namespace (1-255 letters, digits, '.', '-', '_', "
                               "'/', '#' or ':', not beginning with AWS/, which is AWS's own)", refuse="AWS/"))
