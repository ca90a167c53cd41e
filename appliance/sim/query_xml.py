"""Query-protocol XML answers the simulator writes itself, and its rewrites of moto's Auto Scaling answers.

Shapes: botocore's service models (``autoscaling`` 2011-01-01, ``cloudformation`` 2010-05-15): an answer is
``<{Operation}Response xmlns=NS>[<{Operation}Result>…</{Operation}Result>]<ResponseMetadata><RequestId>…``,
the ``…Result`` element present where the operation's output shape has a ``resultWrapper``; an error is
``<ErrorResponse xmlns=NS><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…``
with HTTP 400.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
CLOUDFORMATION_NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def answer(operation: str, namespace: str, result: str | None = "") -> bytes:
    """A successful answer; ``result`` is the inner XML of ``<{operation}Result>``, None for an operation whose
    output has no result wrapper (CloudFormation's SignalResource)."""
    wrapped = "" if result is None else f"<{operation}Result>{result}</{operation}Result>"
    return (f'<{operation}Response xmlns="{namespace}">{wrapped}'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</{operation}Response>").encode()


def error(code: str, message: str, namespace: str) -> tuple[int, bytes]:
    """(HTTP 400, the error answer) for a client error such as ``ValidationError``."""
    return 400, (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
                 f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
                 f"</ErrorResponse>").encode()


def activity(group: str, instance_id: str, start_time: str, cause: str) -> str:
    """The ``<Activity>`` of TerminateInstanceInAutoScalingGroup's answer, still in progress."""
    return (f"<Activity><ActivityId>{uuid.uuid4()}</ActivityId><AutoScalingGroupName>{escape(group)}"
            f"</AutoScalingGroupName><Description>Terminating EC2 instance: {escape(instance_id)}</Description>"
            f"<Cause>{escape(cause)}</Cause><StartTime>{start_time}</StartTime><StatusCode>InProgress</StatusCode>"
            f"<Progress>0</Progress></Activity>")


def rewrite_groups(body: bytes, states: dict[str, str], lower_desired: dict[str, int]) -> bytes:
    """A DescribeAutoScalingGroups or DescribeAutoScalingInstances answer with the given instances' LifecycleState
    (instance id -> state) and each named group's DesiredCapacity lowered by the given number."""
    root = ET.fromstring(body)
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    ET.register_namespace("", namespace)
    q = (lambda tag: f"{{{namespace}}}{tag}") if namespace else (lambda tag: tag)
    for element in root.iter():
        instance, state = element.find(q("InstanceId")), element.find(q("LifecycleState"))
        if instance is not None and state is not None and instance.text in states:
            state.text = states[instance.text]
        name, desired = element.find(q("AutoScalingGroupName")), element.find(q("DesiredCapacity"))
        if name is not None and desired is not None and lower_desired.get(name.text or ""):
            desired.text = str(int(desired.text or 0) - lower_desired[name.text])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
