"""CloudFormation's SignalResource, which moto lacks, answered by the simulator's AWS proxy.

Source: AWS CloudFormation API reference, SignalResource (StackName, LogicalResourceId, UniqueId, Status
``SUCCESS`` or ``FAILURE``; an unknown stack or resource answers ``ValidationError``). On AWS a stack that is
not waiting for signals (no CreationPolicy or UpdatePolicy under way) refuses them with ``ValidationError``
too; the simulator's stacks accept every valid signal, as if always waiting, and ``sim rotate`` reads them
(it plays the UpdatePolicy's wait). Each accepted signal is appended to ``<state dir>/cfn-signals.jsonl``:
{"time" (epoch seconds), "stack", "resource", "unique_id", "status", "caller" (the signalling instance)}.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import botocore.exceptions

from appliance.sim import aws, query_xml, state
from appliance.sim.aws_proxy import Call, Reply

SIGNALS_FILE = "cfn-signals.jsonl"
NS = query_xml.CLOUDFORMATION_NS


class ResourceSignals:
    """The proxy extension answering ``cloudformation:SignalResource``; stacks are checked in moto."""

    def __init__(self, upstream: str, state_dir: str):
        self.upstream = upstream
        self.path = os.path.join(state_dir, SIGNALS_FILE)
        self._lock = threading.Lock()

    def intercept(self, call: Call) -> Reply | None:
        if call.service != "cloudformation" or call.operation != "SignalResource":
            return None
        p = call.params
        stack, resource, unique_id, status = (p.get(k, "") for k in ("StackName", "LogicalResourceId", "UniqueId",
                                                                     "Status"))
        if status not in ("SUCCESS", "FAILURE") or not 1 <= len(unique_id) <= 64:
            return Reply(*query_xml.error("ValidationError", "Status must be SUCCESS or FAILURE and UniqueId "
                                          "1 to 64 characters", NS))
        problem = self._check(call.region, stack, resource)
        if problem:
            return Reply(*query_xml.error("ValidationError", problem, NS))
        record = {"time": time.time(), "stack": stack, "resource": resource, "unique_id": unique_id,
                  "status": status, "caller": call.caller}
        with self._lock:
            state.append_record(self.path, record)
        return Reply(200, query_xml.answer("SignalResource", NS, None))

    def rewrite(self, call: Call, body: bytes) -> bytes:
        return body

    def _check(self, region: str, stack: str, resource: str) -> str:
        """"" when ``stack`` (name or id) has the resource ``resource``, else AWS's reason."""
        cfn = aws.clients(self.upstream, region or aws.REGION)["cloudformation"]
        try:
            resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
        except botocore.exceptions.ClientError:
            return f"Stack with id {stack} does not exist"
        if resource not in {r.get("LogicalResourceId") for r in resources}:  # moto leaves some out
            return f"Resource {resource} does not exist for stack {stack}"
        return ""


def read_signals(state_dir: str) -> list[dict]:
    """Every signal the simulator accepted, oldest first (shape in the module's docstring)."""
    return state.read_records(os.path.join(state_dir, SIGNALS_FILE))


def wait_for_signal(state_dir: str, wanted: Callable[[dict], bool], timeout: float, poll: float = 0.5) -> dict | None:
    """The first signal ``wanted`` accepts, waiting at most ``timeout`` seconds; None if none came."""
    deadline = time.monotonic() + timeout
    while True:
        found = next((s for s in read_signals(state_dir) if wanted(s)), None)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(poll)
