"""Fixtures for integration tests: real simulators (moto server + real etcd) that always get torn down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.adapters.etcd.client import EtcdClient
from appliance.sim import aws, state
from appliance.sim.aws import free_port
from appliance.sim.supervisor import etcd_binary

REPO = Path(__file__).resolve().parents[2]
ETCDCTL = os.path.join(os.path.dirname(etcd_binary()), "etcdctl")
# The previous etcd minor for upgrade tests: `make test` fetches Debian's 3.4 there.
# The simulator's cluster domain: CLUSTER_NAME "etcd" in the hosted zone sim.internal.
SIM_DOMAIN = "etcd.sim.internal."
ETCD_OLD = os.environ.get("ETCD_OLD_BINARY") or str(REPO / ".cache" / "etcd-3.4" / "usr" / "bin" / "etcd")


def run_cli(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python etcd.py ARGS`` and return its completed process (text output)."""
    return subprocess.run([sys.executable, str(REPO / "etcd.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    """Call ``check`` until it returns a truthy value (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Sim:
    """A simulator in its own state directory, driven through the ``etcd.py sim`` commands."""

    def __init__(self, state_dir: Path):
        self.state_dir = str(state_dir)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return run_cli("sim", args[0], "--state-dir", self.state_dir, *args[1:], timeout=timeout)

    def up(self, instances: int | str = 3, timeout: float = 120, agent_env: tuple[str, ...] = (),
           etcd_bin: str | None = None, regions: str | None = None, mode: str | None = None,
           public_addresses: bool = False, tls: bool = False) -> None:
        extra = [a for pair in agent_env for a in ("--agent-env", pair)]
        extra += ["--etcd-bin", etcd_bin] if etcd_bin else []
        extra += ["--regions", regions] if regions else []
        extra += ["--mode", mode] if mode else []
        extra += ["--public-addresses"] if public_addresses else []
        extra += ["--tls"] if tls else []
        done = self.cli("up", "--detach", "--instances", str(instances), "--timeout", str(timeout), *extra,
                        timeout=timeout + 60)
        assert done.returncode == 0, f"sim up failed:\n{done.stdout}\n{done.stderr}"

    def down(self) -> None:
        self.cli("down", timeout=90)

    @property
    def state(self) -> dict:
        return state.load(self.state_dir)

    @property
    def tls(self):
        """The operator's CA and client certificate of a simulator started with ``tls``, else None."""
        return state.tls_files(self.state)

    def tls_flags(self) -> list[str]:
        """etcdctl's (and etcd.py's) ``--cacert``, ``--cert``, ``--key`` where the simulator runs TLS."""
        return self.tls.flags() if self.tls else []

    def status(self) -> dict:
        """The first region's part of ``sim status --json`` (a single-region simulator's whole)."""
        return next(iter(self.status_all()["regions"].values()))

    def status_all(self) -> dict:
        """``sim status --json``: the cluster's verdict and every region's part."""
        done = self.cli("status", "--json", timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def healthy(self):
        current = self.status()
        return current if current["healthy"] else None

    def wait_healthy(self, timeout: float = 60) -> dict:
        return wait_until(self.healthy, timeout, "a healthy cluster at full size", interval=1)

    def instances(self) -> list[dict]:
        """Every region's instances, as ``sim status --json`` shows them."""
        return [i for region in self.status_all()["regions"].values() for i in region["instances"]]

    def leader(self) -> dict:
        return next(i for i in self.instances() if i["leader"])

    def non_leader(self) -> dict:
        return next(i for i in self.instances() if i["member"] and not i["leader"])

    def endpoints(self) -> str:
        return ",".join(i["client_url"] for i in self.instances() if i["member"])

    def etcdctl(self, *args: str, endpoints: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([ETCDCTL, "--endpoints", endpoints or self.endpoints(), "--command-timeout=5s",
                               *self.tls_flags(), *args], capture_output=True, text=True, timeout=30)

    def members(self, endpoints: str | None = None) -> list[dict]:
        done = self.etcdctl("member", "list", "-w", "json", endpoints=endpoints)
        assert done.returncode == 0, done.stderr
        # etcdctl leaves out empty fields: a member added but not yet started has no "name".
        return [{"name": "", **m} for m in json.loads(done.stdout).get("members", [])]

    def aws(self, service: str, region: str | None = None):
        return aws.clients(self.state["aws_endpoint"], region or self.state["region"])[service]

    def records(self) -> dict[tuple[str, str], list[str]]:
        """The hosted zone's record sets: (name, type) -> sorted values."""
        zone = self.aws("route53").list_resource_record_sets(HostedZoneId=self.state["hosted_zone_id"])
        return {(r["Name"], r["Type"]): sorted(v["Value"] for v in r.get("ResourceRecords", []))
                for r in zone["ResourceRecordSets"]}

    def expected_records(self) -> dict[tuple[str, str], list[str]]:
        """The record sets the leader should publish for the instances the simulator shows now."""
        instances = {i["id"]: i["private_ip"] for i in self.status()["instances"]}
        targets = sorted(f"{i}.{SIM_DOMAIN}" for i in instances)
        ssl = "-ssl" if self.tls else ""
        wanted = {
            (f"_etcd-server{ssl}._tcp.{SIM_DOMAIN}", "SRV"): [f"1 1 2380 {t}" for t in targets],
            (f"_etcd-client{ssl}._tcp.{SIM_DOMAIN}", "SRV"): [f"1 1 2379 {t}" for t in targets],
            (SIM_DOMAIN, "A"): sorted(instances.values()),
        }
        wanted.update({(f"{i}.{SIM_DOMAIN}", "A"): [ip] for i, ip in instances.items()})
        return wanted

    def our_records(self) -> dict[tuple[str, str], list[str]]:
        """The zone's record sets under the cluster's domain (not the zone's own SOA and NS)."""
        return {k: v for k, v in self.records().items() if k[0].endswith(SIM_DOMAIN)}

    def records_match(self) -> bool | None:
        """True once the cluster is healthy at full size and the zone publishes exactly its members."""
        self.wait_healthy(60)
        return self.our_records() == self.expected_records() or None

    def peer_rules(self, region: str) -> dict[str, set[str]]:
        """The appliance's /32 rules in the region's group: direction -> CIDRs (ports 2378-2380)."""
        from appliance.model.security_groups import RULE_DESCRIPTION

        group_id = self.state["regions"][region]["security_group"]
        group = self.aws("ec2", region).describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        return {direction: {r["CidrIp"] for p in group[key] if (p.get("FromPort"), p.get("ToPort")) == (2378, 2380)
                            for r in p.get("IpRanges", []) if r.get("Description") == RULE_DESCRIPTION}
                for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress"))}

    def agent_operations(self) -> set[str]:
        """Every ``service:Operation`` the agents sent to AWS so far, S3's as the IAM actions that allow them."""
        with open(os.path.join(self.state_dir, "aws-calls.log")) as calls:
            made = {line.split(" ", 3)[2] for line in calls if line.split(" ", 3)[1].startswith("i-")}
        return {S3_IAM_ACTIONS.get(operation, operation) for operation in made}

    def aws_calls(self, since: float = 0.0) -> list[tuple[float, str, str]]:
        """The agents' AWS calls logged by the simulator's proxy: (time, instance, service:Operation)."""
        calls = []
        with open(os.path.join(self.state_dir, "aws-calls.log")) as f:
            for line in f:
                stamp, caller, operation, _ = line.split(" ", 3)
                if float(stamp) >= since:
                    calls.append((float(stamp), caller, operation))
        return calls

    def agent_pid(self, instance_id: str) -> int:
        return self.state["instances"][instance_id]["agent_pid"]

    def agent_log(self, instance_id: str) -> str:
        return Path(self.state_dir, "instances", instance_id, "agent.log").read_text(errors="replace")

    def agent_status(self, instance_id: str) -> dict:
        import requests
        ip, files = self.state["instances"][instance_id]["private_ip"], self.tls
        if files is None:
            return requests.get(f"http://{ip}:2378/status", timeout=3).json()
        return requests.get(f"https://{ip}:2378/status", timeout=3, verify=files.ca_file).json()

    def metric(self, instance_id: str, name: str, **labels: str) -> float:
        """The sum of an agent's ``/metrics`` samples named ``name`` whose labels include ``labels``
        (0 when none has them; NaN where a sample is NaN)."""
        import requests
        from prometheus_client.parser import text_string_to_metric_families

        ip, files = self.state["instances"][instance_id]["private_ip"], self.tls
        if files is None:
            text = requests.get(f"http://{ip}:2378/metrics", timeout=3).text
        else:
            text = requests.get(f"https://{ip}:2378/metrics", timeout=3, verify=files.ca_file).text
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())


def etcd_pid(instance_id: str) -> int | None:
    """The pid of the etcd process named ``instance_id``, from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"etcd") and instance_id.encode() in cmdline and b"--name" in cmdline:
            return int(entry)
    return None


@pytest.fixture
def guards():
    """Guard processes, killed with their groups at the end."""
    made: list[subprocess.Popen] = []
    yield made
    for proc in made:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def sim_factory(tmp_path_factory):
    """Make simulators; every one is brought down at the end of the test, whatever happens."""
    made: list[Sim] = []

    def make(name: str = "sim") -> Sim:
        sim = Sim(tmp_path_factory.mktemp(name))
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.down()


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    """One 3-instance stack shared by a module's tests; each test leaves it healthy at full size."""
    sim = Sim(tmp_path_factory.mktemp("cluster3"))
    try:
        sim.up(3)
        yield sim
    finally:
        sim.down()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """One real etcd on loopback; killed (with its process group) at the end."""
    data = tmp_path_factory.mktemp("etcd")
    client_url, peer_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    with open(data / "etcd.log", "wb") as out:
        proc = subprocess.Popen([etcd_binary(), "--name", "solo", "--data-dir", str(data / "data"),
                                 "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                                 "--initial-cluster", f"solo={peer_url}"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = EtcdClient([client_url], timeout=2)
        wait_until(lambda: client.healthy(client_url), 30, "etcd to serve")
        yield client, client_url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def etcd_old() -> str:
    """The path of an etcd 3.4 binary; the test is skipped, saying why, where there is none."""
    if not os.access(ETCD_OLD, os.X_OK):
        pytest.skip(f"no etcd 3.4 at {ETCD_OLD}: run `make test` (it fetches Debian's etcd-server 3.4) "
                    "or set ETCD_OLD_BINARY")
    return ETCD_OLD


@pytest.fixture
def stopped_group():
    """Remember process groups a test SIGSTOPs, and SIGCONT them whatever happens."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGCONT)
        except ProcessLookupError:
            pass


# S3 operations whose IAM action has another name (AWS's Service Authorization Reference, Amazon S3).
S3_IAM_ACTIONS = {"s3:HeadObject": "s3:GetObject", "s3:ListObjectsV2": "s3:ListBucket",
                  "s3:ListObjects": "s3:ListBucket", "s3:DeleteObjects": "s3:DeleteObject",
                  "s3:CreateMultipartUpload": "s3:PutObject", "s3:UploadPart": "s3:PutObject",
                  "s3:CompleteMultipartUpload": "s3:PutObject"}


def policy_statements(template: dict) -> list[dict]:
    """The statements of the instance role's one inline policy in a decoded template."""
    return template["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def policy_actions(template_path: Path) -> set[str]:
    """The actions the template's instance role allows."""
    from cfnlint.decode import decode_str

    template, _ = decode_str(template_path.read_text())
    allowed = set()
    for statement in policy_statements(template):
        if "Fn::If" in statement:  # a conditional statement: what it allows when its condition holds
            statement = statement["Fn::If"][1]
        actions = statement["Action"]
        allowed.update([actions] if isinstance(actions, str) else actions)
    return allowed
