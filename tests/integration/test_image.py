"""The appliance image, without a docker engine: the Dockerfile passes hadolint and keeps its promises (one
base pinned by digest, a fixed non-root user, the agent's ports, every download checked against
etcd-releases.txt before use, and its download step works and refuses
what it should when run against a local server. The base's digest, requirements.lock and delivery.yaml:
test_image_pipeline.py.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

from appliance.commands import settings as config
from tests.integration.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
RELEASES = REPO / "etcd-releases.txt"
HADOLINT = REPO / ".venv-checkov" / "bin" / "hadolint"
RELEASE_URL = "https://github.com/etcd-io/etcd/releases/download"
ARG_NAMES = {"ETCD_VERSION", "ETCD_SHA256", "ETCD_OLD_VERSION", "ETCD_OLD_SHA256"}
# The one build argument that is not etcd's: the base image of every stage, pinned by digest.
BASE_ARG = "BASE_IMAGE"


# -- the Dockerfile, read as docker reads it -------------------------------------------------------------------

def logical_lines(text: str) -> list[str]:
    """The lines docker (and pip, in a requirements file) reads: comment lines dropped, also inside a continued
    line, a line ending in a backslash joined to the next, blank lines dropped; spacing kept."""
    found, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line, pending = pending + line, ""
        if line.strip():
            found.append(line.strip())
    assert not pending, "the file ends inside a continued line"
    return found


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order."""
    split = (line.partition(" ") for line in logical_lines(text))
    return [(keyword.upper(), rest.strip()) for keyword, _, rest in split]


def stages(text: str) -> tuple[list[tuple[str, str]], list[list[tuple[str, str]]]]:
    """The global instructions (before the first FROM) and each stage's, FROM first."""
    head, split = [], []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            split.append([])
        (split[-1] if split else head).append((keyword, rest))
    return head, split


def args(block: list[tuple[str, str]]) -> dict[str, str | None]:
    """ARG name -> default (None without one)."""
    found = {}
    for keyword, rest in block:
        if keyword == "ARG":
            name, eq, default = rest.partition("=")
            found[name] = default if eq else None
    return found


def exec_form(rest: str) -> list[str]:
    form = json.loads(rest)
    assert isinstance(form, list), f"{rest} is not the exec form"
    return form


@functools.cache
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def download_stage() -> list[tuple[str, str]]:
    """The stage that fetches the etcd releases (the only one that downloads)."""
    _, split = stages(dockerfile())
    named = [s for s in split if s[0][1].endswith(" AS etcd-release")]
    assert len(named) == 1, "the Dockerfile has no single stage named etcd-release"
    return named[0]


def final_stage() -> list[tuple[str, str]]:
    return stages(dockerfile())[1][-1]


# -- etcd-releases.txt ---------------------------------------------------------------------------------------

def releases() -> dict[str, tuple[str, str]]:
    """minor ("3.5") -> (version, SHA-256) from etcd-releases.txt."""
    table = {}
    for line in RELEASES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        version, sha256, source = line.split(None, 2)
        assert re.fullmatch(r"3\.\d+\.\d+", version), line
        assert re.fullmatch(r"[0-9a-f]{64}", sha256), line
        # Where the SHA-256 is published: at least two "owner/repository path" entries.
        assert len([s for s in source.split(";") if re.fullmatch(r"\s*[\w.-]+/[\w.-]+ \S+\s*", s)]) >= 2, line
        minor = version.rsplit(".", 1)[0]
        assert minor not in table, f"two releases of {minor}"
        table[minor] = (version, sha256)
    assert {"3.4", "3.5"} <= set(table)
    return table


def previous_minor(minor: str) -> str:
    major, number = minor.split(".")
    return f"{major}.{int(number) - 1}"


def build_args_for(minor: str) -> dict[str, str]:
    """The four build arguments of the image of ``minor``: its release, and the previous minor's if listed."""
    table = releases()
    version, sha256 = table[minor]
    old_version, old_sha256 = table.get(previous_minor(minor), ("", ""))
    return {"ETCD_VERSION": version, "ETCD_SHA256": sha256, "ETCD_OLD_VERSION": old_version,
            "ETCD_OLD_SHA256": old_sha256}


def newest_minor() -> str:
    return max(releases(), key=lambda m: tuple(int(n) for n in m.split(".")))


# -- the Dockerfile's promises -------------------------------------------------------------------------------

def test_hadolint_reports_nothing():
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: `make test` installs it (requirements-checkov.txt)")
    done = subprocess.run([str(HADOLINT), "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stdout + done.stderr
    # Every rule hadolint is told to ignore says why, on the line above.
    lines = dockerfile().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            assert number > 0 and lines[number - 1].lstrip().startswith("#") and len(lines[number - 1]) > 10, line


def test_arg_defaults_are_the_newest_minor_of_etcd_releases():
    head, _ = stages(dockerfile())
    # The defaults live before the first FROM only; each stage takes them over by name.
    assert set(args(head)) == ARG_NAMES | {BASE_ARG}
    assert {name: args(head)[name] for name in ARG_NAMES} == build_args_for(newest_minor())
    assert set(args(download_stage())) == ARG_NAMES
    for block in (download_stage(), final_stage()):
        assert set(args(block)) <= ARG_NAMES and all(default is None for default in args(block).values())


def test_the_image_runs_as_a_fixed_user_that_is_not_root_after_the_last_install_step():
    stage = final_stage()
    installs = [i for i, (keyword, _) in enumerate(stage) if keyword in ("RUN", "COPY", "ADD")]
    users = [(i, rest) for i, (keyword, rest) in enumerate(stage) if keyword == "USER"]
    assert users and users[-1][0] > installs[-1], "USER must come after the last RUN/COPY/ADD"
    user = users[-1][1]
    # Numeric, so that a runtime can see it is not root without reading /etc/passwd.
    match = re.fullmatch(r"(\d+):(\d+)", user)
    assert match and match.group(1) != "0" and match.group(2) != "0", user
    uid = match.group(1)
    created = " ".join(rest for keyword, rest in stage if keyword == "RUN" and "useradd" in rest)
    assert f"--uid {uid}" in created and f"--gid {match.group(2)}" in created
    # The data directory's parent (appliance/commands/settings.py's default) belongs to that user, 0700.
    data_dir = {s.env: s.default for s in config.SPECS}["DATA_DIR"]
    assert f"install -d -o {uid} -g {match.group(2)} -m 0700 {os.path.dirname(data_dir)}" in created
    # The templates' hosts give the directory they mount as the data directory to the same uid.
    for name in ("etcd-cluster.yaml", "etcd-cluster-multiregion.yaml"):
        template, _ = decode_str((REPO / "cloudformation" / name).read_text())
        boot = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
        script = boot["Fn::Base64"]["Fn::Sub"][0]  # [the script, its variables (the TLS options)]
        assert f"install -d -o {uid} -g {match.group(2)} -m 0700 /var/lib/etcd-appliance" in script, name
        assert "-v /var/lib/etcd-appliance:/data" in script and "-e DATA_DIR=/data/etcd" in script, name


def test_the_image_exposes_the_agent_s_ports_and_runs_the_agent():
    defaults = {s.env: s.default for s in config.SPECS}
    exposed = {int(p) for keyword, rest in final_stage() if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {int(defaults[p]) for p in ("STATUS_PORT", "CLIENT_PORT", "PEER_PORT", "METRICS_PORT")}
    assert {2379, 2380, 2381} <= exposed
    entrypoint = [exec_form(rest) for keyword, rest in final_stage() if keyword == "ENTRYPOINT"][-1]
    command = [exec_form(rest) for keyword, rest in final_stage() if keyword == "CMD"][-1]
    assert entrypoint + command == ["python", "etcd.py", "run"]
    # The templates pass the command as the argument: `docker run … IMAGE run` runs the agent too.
    for name in ("etcd-cluster.yaml", "etcd-cluster-multiregion.yaml"):
        template, _ = decode_str((REPO / "cloudformation" / name).read_text())
        boot = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
        assert boot["Fn::Base64"]["Fn::Sub"][0].rstrip().endswith("${DockerImage} run"), name
    # etcd.py and its package are in the working directory the entry point runs in.
    workdir = [rest for keyword, rest in final_stage() if keyword == "WORKDIR"][-1]
    copied = [rest.split() for keyword, rest in final_stage() if keyword == "COPY" and not rest.startswith("--from")]
    assert workdir.startswith("/") and ["etcd.py", "./"] in copied and ["appliance/", "appliance/"] in copied


def test_every_download_is_checked_against_its_sha256_before_use():
    # Nothing is fetched outside the download stage, and nothing with ADD.
    for block in stages(dockerfile())[1]:
        assert all(keyword != "ADD" for keyword, _ in block)
        if block != download_stage():
            assert all("://" not in rest for _, rest in block), block[0]
    runs = [rest for keyword, rest in download_stage() if keyword == "RUN"]
    assert len(runs) == 1
    run = runs[0]
    # One function downloads; in it the check comes between the download and tar, on the same file.
    fetch = re.search(r"fetch\(\) \{(.*?)\};", run)
    assert fetch, "no fetch() function in the download step"
    body = fetch.group(1)
    assert run.count("https://") == body.count("https://") == 1 and run.count("urlopen") == 1
    tarball = '"etcd-v$1-linux-amd64.tar.gz"'
    download = body.index("urlopen")
    check = body.index('echo "$2  etcd-v$1-linux-amd64.tar.gz" | sha256sum --check --strict')
    unpack = body.index(f"tar -xzf {tarball}")
    assert download < check < unpack
    assert f'"{RELEASE_URL}/v$1/etcd-v$1-linux-amd64.tar.gz" {tarball}' in body
    # Every fetch is of a version with its own SHA-256 argument.
    calls = re.findall(r"\bfetch (\S+) (\S+);", run.replace(body, ""))
    assert calls == [('"${ETCD_VERSION}"', '"${ETCD_SHA256}"'), ('"${ETCD_OLD_VERSION}"', '"${ETCD_OLD_SHA256}"')]
    # The image takes the binaries only, from the download stage.
    assert [rest for keyword, rest in final_stage() if keyword == "COPY" and "--from" in rest] == [
        "--from=etcd-release /out/ /"]


def test_the_build_context_holds_what_the_image_copies():
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"
    let_in = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    # The simulator stays out of the image (a later line wins in a .dockerignore): production code never imports it.
    assert ignore.index("appliance/sim/") > ignore.index("!appliance/")
    for keyword, rest in final_stage():
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert source.rstrip("/") in let_in, source
                assert (REPO / source).exists(), source


# -- the download step, run for real against a local server --------------------------------------------------

def download_script(root: Path, port: int) -> str:
    """The download stage's RUN, fetching from ``port`` on loopback and installing under ``root``."""
    run = [rest for keyword, rest in download_stage() if keyword == "RUN"][0]
    assert RELEASE_URL in run and "/out/" in run
    return run.replace(RELEASE_URL, f"http://127.0.0.1:{port}").replace("/out/", f"{root}/out/")


def download_shell() -> list[str]:
    shell = [exec_form(rest) for keyword, rest in download_stage() if keyword == "SHELL"][-1]
    assert shell[0] == "/bin/bash" and "pipefail" in shell
    return shell


def fake_release(version: str, tools: tuple[str, ...], reported: str | None = None) -> bytes:
    """An etcd-vVERSION-linux-amd64.tar.gz whose tools are scripts answering like etcd's
    (``etcd --version``, ``etcdctl version``) with ``reported`` (default: VERSION)."""
    said = reported or version
    answers = {"etcd": f"etcd Version: {said}\nGit SHA: 0\n", "etcdctl": f"etcdctl version: {said}\nAPI version: 3\n",
               "etcdutl": f"etcdutl version: {said}\nAPI version: 3\n"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for tool in tools:
            script = f"#!/bin/sh\nprintf '{answers[tool]}'\n".encode()
            info = tarfile.TarInfo(f"etcd-v{version}-linux-amd64/{tool}")
            info.size, info.mode = len(script), 0o755
            tar.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


@pytest.fixture
def release_server(tmp_path):
    """A local stand-in for GitHub's release downloads: ``publish(version, tarball)`` serves the tarball at
    /vVERSION/etcd-vVERSION-linux-amd64.tar.gz and returns its SHA-256."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def publish(version: str, tarball: bytes) -> str:
        path = served / f"v{version}" / f"etcd-v{version}-linux-amd64.tar.gz"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(tarball)
        return hashlib.sha256(tarball).hexdigest()

    publish.port = server.server_address[1]
    yield publish
    server.shutdown()
    server.server_close()


def run_download(tmp_path: Path, port: int, build_args: dict[str, str]) -> subprocess.CompletedProcess:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    # `python3` in the script is this interpreter, as in the image it is the base image's.
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", **build_args}
    return subprocess.run([*download_shell(), download_script(tmp_path, port)], capture_output=True, text=True,
                          timeout=120, cwd=work, env=env)


def installed(tmp_path: Path) -> set[str]:
    out = tmp_path / "out"
    return {str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()} if out.exists() else set()


def answer(path: Path, *arguments: str) -> str:
    return subprocess.run([str(path), *arguments], capture_output=True, text=True, timeout=10, check=True).stdout


def test_the_download_step_installs_the_release_and_the_previous_minor_as_etcd_old(tmp_path, release_server):
    current, old = build_args_for(newest_minor())["ETCD_VERSION"], build_args_for(newest_minor())["ETCD_OLD_VERSION"]
    assert old, "the newest minor's image carries the previous minor as etcd.old"
    sha = release_server(current, fake_release(current, ("etcd", "etcdctl", "etcdutl")))
    old_sha = release_server(old, fake_release(old, ("etcd", "etcdctl")))
    done = run_download(tmp_path, release_server.port, {"ETCD_VERSION": current, "ETCD_SHA256": sha,
                                                        "ETCD_OLD_VERSION": old, "ETCD_OLD_SHA256": old_sha})
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(tmp_path) == {"usr/local/bin/etcd", "usr/local/bin/etcdctl", "usr/local/bin/etcdutl",
                                   "usr/local/bin/etcd.old", "usr/local/bin/etcdctl.old",
                                   "usr/local/lib/etcd.old/etcd", "usr/local/lib/etcd.old/etcdctl"}
    bin_dir = tmp_path / "out" / "usr" / "local" / "bin"
    for tool in ("etcd", "etcdctl", "etcdutl"):
        assert (bin_dir / tool).stat().st_mode & 0o777 == 0o755
    assert f"etcdutl version: {current}" in answer(bin_dir / "etcdutl", "version")
    # etcd.old is the previous minor, with its own etcdctl beside it (the agent's snapshot tools).
    assert os.readlink(bin_dir / "etcd.old") == "../lib/etcd.old/etcd"
    assert f"etcd Version: {old}" in answer(bin_dir / "etcd.old", "--version")
    assert f"etcdctl version: {old}" in answer(tmp_path / "out/usr/local/lib/etcd.old/etcdctl", "version")


def test_the_download_step_of_the_3_4_image_installs_no_etcdutl_and_no_etcd_old(tmp_path, release_server):
    build_args = build_args_for("3.4")
    assert build_args["ETCD_OLD_VERSION"] == ""
    build_args["ETCD_SHA256"] = release_server(build_args["ETCD_VERSION"],
                                               fake_release(build_args["ETCD_VERSION"], ("etcd", "etcdctl")))
    done = run_download(tmp_path, release_server.port, build_args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(tmp_path) == {"usr/local/bin/etcd", "usr/local/bin/etcdctl"}


@pytest.mark.parametrize("fault", ["wrong sha256", "empty sha256", "wrong old sha256", "another version inside",
                                   "no etcdutl"])
def test_the_download_step_refuses(tmp_path, release_server, fault):
    current, old = build_args_for(newest_minor())["ETCD_VERSION"], build_args_for(newest_minor())["ETCD_OLD_VERSION"]
    tools = ("etcd", "etcdctl") if fault == "no etcdutl" else ("etcd", "etcdctl", "etcdutl")
    sha = release_server(current, fake_release(current, tools,
                                               reported="3.5.1" if fault == "another version inside" else None))
    old_sha = release_server(old, fake_release(old, ("etcd", "etcdctl")))
    build_args = {"ETCD_VERSION": current, "ETCD_SHA256": sha, "ETCD_OLD_VERSION": old, "ETCD_OLD_SHA256": old_sha}
    if fault == "wrong sha256":
        build_args["ETCD_SHA256"] = hashlib.sha256(b"another tarball").hexdigest()
    elif fault == "empty sha256":
        build_args["ETCD_SHA256"] = ""
    elif fault == "wrong old sha256":
        build_args["ETCD_OLD_SHA256"] = sha
    done = run_download(tmp_path, release_server.port, build_args)
    assert done.returncode != 0, done.stdout + done.stderr
    if fault in ("wrong sha256", "empty sha256"):
        # Refused before tar read it: nothing unpacked, nothing installed.
        assert not (tmp_path / "work" / f"etcd-v{current}-linux-amd64").exists()
        assert installed(tmp_path) == set()
    if fault == "wrong old sha256":
        assert not (tmp_path / "work" / f"etcd-v{old}-linux-amd64").exists()
        assert "usr/local/bin/etcd.old" not in installed(tmp_path)
