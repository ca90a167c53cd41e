"""The composition root: every verb is there, and without the simulator (as in the image) the production
commands still work and ``--sim`` says what is missing."""

import sys

import pytest

from appliance import cli
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
