"""Counting every AWS API call a boto3 session's clients make, through botocore's event hooks.

One place sees them all, whatever module makes the call (listing, Route53, security groups,
S3 and its multipart transfers, paginators' pages): the session's event emitter, which every
client created from the session copies.
"""

from __future__ import annotations

from typing import Callable

import boto3

# Where a call's service and operation are kept between its before-call and after-call-error
# events: botocore passes the same request context dict to both, and after-call-error has no model.
_CONTEXT_KEY = "etcd_appliance_operation"

OnCall = Callable[[str, str, str], None]


def counted_session(on_call: OnCall, session: boto3.session.Session | None = None) -> boto3.session.Session:
    """``session`` (default: a new one) with ``on_call(service, operation, error)`` called once per API call
    of every client created from it afterwards (clients copy the session's hooks when they are made).

    ``service`` is boto3's name ("autoscaling", "ec2", "route53", "s3"), ``operation`` the API's
    ("DescribeAutoScalingGroups"); ``error`` is "" when AWS answered with success, the AWS error code
    ("Throttling", "AccessDenied", "404") when it answered with an error, and the exception's class
    name ("ConnectTimeoutError", "EndpointConnectionError") when no answer came. A call counts once,
    after botocore's retries. ``on_call`` runs in the calling thread and must not raise.
    """
    session = session or boto3.session.Session()
    events = session.events

    def before(model, context, **_):
        context[_CONTEXT_KEY] = (model.service_model.service_name, model.name)

    def after(http_response, parsed, model, **_):
        error = ""
        if http_response.status_code >= 300:
            error = (parsed.get("Error") or {}).get("Code") or str(http_response.status_code)
        on_call(model.service_model.service_name, model.name, error)

    def failed(exception, context, event_name, **_):
        service, operation = context.get(_CONTEXT_KEY) or event_name.split(".")[1:3]
        on_call(service, operation, type(exception).__name__)

    # unique_id: registering twice on one session must not count twice.
    events.register("before-call", before, unique_id="etcd-appliance-calls-before")
    events.register("after-call", after, unique_id="etcd-appliance-calls-after")
    events.register("after-call-error", failed, unique_id="etcd-appliance-calls-error")
    return session
