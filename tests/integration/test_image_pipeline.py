"""What the image is made of and how it ships, without a docker engine: every stage starts from one base
pinned by digest; the image installs exactly requirements.lock, which pins, by hash, every package
requirements.txt needs (and nothing else) within its ranges, for the base image's Python, and the test venv
runs those versions; delivery.yaml builds one image per minor of etcd-releases.txt with that file's versions
and checksums, and checks each image before it pushes it. The Dockerfile's reading: test_image.py.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import shlex

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.conftest import REPO
from tests.integration.test_image import (
    ARG_NAMES,
    BASE_ARG,
    args,
    build_args_for,
    dockerfile,
    download_stage,
    final_stage,
    logical_lines,
    releases,
    stages,
)

DELIVERY = REPO / "delivery.yaml"
REQUIREMENTS = REPO / "requirements.txt"
LOCK = REPO / "requirements.lock"
LOCK_INSTALL = "pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock"


# -- the base image ------------------------------------------------------------------------------------------

def base_images() -> list[str]:
    """Each stage's base image, a global ARG (``${NAME}`` or ``$NAME``) replaced by its default."""
    head, split = stages(dockerfile())
    defaults = args(head)
    images = []
    for block in split:
        image = block[0][1].split()[0]
        match = re.fullmatch(r"\$\{?(\w+)\}?", image)
        images.append(defaults.get(match.group(1)) if match else image)
    return images


def test_every_stage_starts_from_one_base_pinned_by_digest():
    images = base_images()
    assert len(images) >= 2 and len(set(images)) == 1, images
    # name:tag@sha256:<index digest>: the digest decides what is pulled, the tag tells readers what it is.
    match = re.fullmatch(r"([\w./-]+):([\w.-]+)@sha256:[0-9a-f]{64}", images[0] or "")
    assert match and match.group(2) != "latest", images[0]
    # Every stage names the argument itself: no stage can drift to a base of its own.
    assert all(block[0][1].split()[0] in (f"${{{BASE_ARG}}}", f"${BASE_ARG}") for block in stages(dockerfile())[1])


def test_the_image_installs_exactly_the_locked_packages():
    stage = final_stage()
    copied = [rest.split() for keyword, rest in stage if keyword == "COPY" and not rest.startswith("--from")]
    assert ["requirements.lock", "./"] in copied and not any("requirements.txt" in c for c in copied)
    installs = [(i, " ".join(rest.split())) for i, (keyword, rest) in enumerate(stage) if "pip install" in rest]
    # One install: by hash, nothing the lock does not name, no cache left in the image; pip check then
    # fails the build on a lock that misses a dependency.
    assert [command.split(" && ") for _, command in installs] == [[LOCK_INSTALL, "pip check"]]
    copy_at = next(i for i, (keyword, rest) in enumerate(stage) if keyword == "COPY" and "requirements.lock" in rest)
    assert copy_at < installs[0][0]
    assert all("pip " not in rest for _, rest in download_stage())


# -- requirements.lock: what the image installs ----------------------------------------------------------------

def requirement_lines(text: str) -> list[str]:
    """A pip requirements file's requirements (and options), one a string, runs of spaces made one."""
    return [" ".join(line.split()) for line in logical_lines(text)]


@functools.cache
def locked() -> dict[str, tuple[str, tuple[str, ...]]]:
    """requirements.lock: canonical name -> (version, its files' hashes). Fails unless every line is one
    package at one exact version (``name==version``, no extras, no wildcard) with at least one SHA-256."""
    table = {}
    for line in requirement_lines(LOCK.read_text()):
        # Options (an index URL, find-links) would tie the lock to one machine: only pins.
        assert not line.startswith("-"), line
        pin, *hashes = line.split(" --hash=")
        requirement = Requirement(pin)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version, line
        assert not requirement.extras and requirement.marker is None, line
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), line
        name = canonicalize_name(requirement.name)
        assert name not in table, f"{name} pinned twice"
        table[name] = (specifiers[0].version, tuple(hashes))
    assert table, "requirements.lock pins nothing"
    return table


def runtime_requirements() -> list[Requirement]:
    return [Requirement(line) for line in requirement_lines(REQUIREMENTS.read_text())]


def test_the_lock_says_how_it_was_compiled_and_for_the_image_s_python():
    header = LOCK.read_text().split("\n\n", 1)[0]
    command = re.search(r"^#\s+(pip-compile .*)$", header, re.M)
    assert command, "requirements.lock's header names no pip-compile command"
    words = command.group(1).split()
    assert {"--generate-hashes", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
            "--output-file=requirements.lock"} <= set(words) and words[-1] == "requirements.txt", words
    # Compiled with the Python the image runs: the base image's tag names the same minor.
    python = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)$", header, re.M)
    assert python and base_images()[0].startswith(f"python:{python.group(1)}-"), (python, base_images())


def test_the_lock_pins_every_package_within_requirements_txt_ranges():
    table = locked()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in table, f"requirements.txt names {name}; requirements.lock does not"
        assert requirement.specifier.contains(table[name][0], prereleases=True), (requirement, table[name][0])


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_the_test_venv_runs_the_locked_versions():
    # The tests then run what the image runs, not merely something within requirements.txt's ranges.
    differ = {name: (installed_version(name), version) for name, (version, _) in locked().items()
              if installed_version(name) != version}
    assert not differ, f"the test venv's (installed, locked) versions differ: {differ}; reinstall the venv"


def test_the_lock_is_complete_and_names_nothing_else():
    """Every dependency of requirements.txt, down to the last, is locked at a version its dependents accept,
    and every locked package is one of them. The dependencies are those the installed distributions declare
    (Requires-Dist, markers evaluated for this interpreter: Python 3.11 on Linux x86_64, as in the image), so
    the locked versions must be the installed ones (the test above)."""
    table = locked()
    pending = [(requirement, "requirements.txt") for requirement in runtime_requirements()]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:  # each (package, extras) is expanded once: at most a few times the lock's size
        requirement, wanted_by = pending.pop()
        name = canonicalize_name(requirement.name)
        assert name in table, f"{wanted_by} needs {requirement}: requirements.lock lacks {name}"
        version = table[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{wanted_by} needs {requirement}: {version}"
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        assert installed_version(name) == version, f"the test venv has {name} {installed_version(name)}, not {version}"
        for declared in importlib.metadata.requires(name) or []:
            dependency = Requirement(declared)
            wanted = requirement.extras | {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in wanted):
                pending.append((dependency, f"{name} {version}"))
    assert {name for name, _ in seen} == set(table), f"locked, yet nothing needs: {set(table) - {n for n, _ in seen}}"


# -- delivery.yaml ------------------------------------------------------------------------------------------

def pipeline() -> list[dict]:
    delivery = yaml.safe_load(DELIVERY.read_text())
    assert delivery["version"] == "2017-09-20"
    steps = delivery["pipeline"]
    assert steps and all(step["type"] == "script" and step["commands"] for step in steps)
    assert len({step["id"] for step in steps}) == len(steps)
    return steps


def commands(step: dict) -> list[str]:
    return [c["cmd"] for c in step["commands"]]


def test_the_pipeline_runs_the_test_suite_and_every_linter():
    steps = {step["id"]: step for step in pipeline()}
    assert [shlex.split(c) for c in commands(steps["test"])] == [["make", "test"]]
    assert [shlex.split(c) for c in commands(steps["lint"])] == [["make", "lint"]]
    # make lint: ruff, cfn-lint, checkov on the templates, hadolint on the Dockerfile.
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    for tool in ("ruff check", "cfn-lint cloudformation/", "--framework cloudformation", "HADOLINT) Dockerfile"):
        assert tool in recipe, tool
    assert re.search(r"^CHECKOV := \.venv-checkov/bin/checkov$", makefile, re.M)
    assert re.search(r"^HADOLINT := \.venv-checkov/bin/hadolint$", makefile, re.M)
    # The suite needs the linters' virtualenv: make test builds it.
    for target in ("test", "test-all", "lint"):
        assert "$(CHECKOV)" in re.search(rf"^{target}:(.*)$", makefile, re.M).group(1), target


def test_the_pipeline_builds_one_image_per_minor_with_the_releases_of_etcd_releases():
    builds = [step for step in pipeline() if "ETCD_VERSION" in step.get("env", {})]
    by_minor = {step["env"]["ETCD_VERSION"].rsplit(".", 1)[0]: step for step in builds}
    assert len(by_minor) == len(builds), "two builds of one minor"
    assert set(by_minor) == set(releases())
    for minor, step in by_minor.items():
        assert {k: step["env"][k] for k in ARG_NAMES} == build_args_for(minor), minor
        assert set(step["depends_on"]) == {"test", "lint"}
        (cmd,) = commands(step)
        # Every etcd argument of the Dockerfile is passed, from the step's environment; the base image never:
        # the Dockerfile's digest is the only one.
        for name in ARG_NAMES:
            assert f'--build-arg {name}="${name}"' in cmd, name
        assert BASE_ARG not in cmd
        assert re.search(r'TAG="\$IMAGE:\$ETCD_VERSION-\$\(git rev-parse --short HEAD\)"', cmd)
        assert re.search(r'docker (buildx )?build .*-t "\$TAG" \.', cmd.replace("\\\n", " "))
        assert step["env"]["IMAGE"].endswith("/etcd-appliance")
        # Pushed from the main branch only, never from a pull request.
        guard = re.search(r'if \[ "\$CDP_TARGET_BRANCH" = main \] && \[ -z "\$\{CDP_PULL_REQUEST_NUMBER:-\}" \]; '
                          r'then\n(.*?)\n\s*fi', cmd, re.S)
        assert guard and "docker push" in guard.group(1)
        assert cmd.count("docker push") == 1
        # The image is checked before it is pushed: its etcd, its user, the versions the agent reports
        # (`etcd.py --version`: "etcd-appliance <version>", then "etcd <version>").
        assert cmd.index('grep -x "etcd Version: $ETCD_VERSION"') < cmd.index("docker push")
        assert cmd.index("-u)\" = 10001") < cmd.index("docker push")
        assert cmd.index('docker run --rm "$TAG" --version | grep -x "etcd $ETCD_VERSION"') < cmd.index("docker push")
