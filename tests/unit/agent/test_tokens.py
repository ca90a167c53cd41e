"""The etcd 3.5.1 token workaround (appliance/agent/components/tokens.py) on a fake etcd process and client:
one check per etcd start, a restart for "invalid auth token" at most once per TOKEN_RESTART_INTERVAL."""

from __future__ import annotations

import pytest

from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.agent.components.tokens import TOKEN_RESTART_INTERVAL, TokenCheck
from tests.unit.agent.fakes import Clock, FakeEtcd, FakeProcess

INVALID = "etcdserver: invalid auth token"


class Raising(FakeEtcd):
    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def get(self, key):
        raise self.error


class Clients:
    """Makes the fresh clients the check asks for; each answers the next of ``answers`` (an error message to
    refuse with, an exception to raise, or None to answer)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.made = 0

    def __call__(self) -> FakeEtcd:
        self.made += 1
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            return Raising(answer)
        client = FakeEtcd()
        if answer is not None:
            client.refuse["get"] = answer
        return client


def check(*answers) -> tuple[TokenCheck, FakeProcess, Clients, Clock]:
    etcd, clients, clock = FakeProcess(running=True), Clients(*answers), Clock()
    return TokenCheck(etcd, clients, clock), etcd, clients, clock


def restart(etcd: FakeProcess) -> None:
    """etcd is started again (by the next cycle's rejoin): a new pid."""
    etcd.start(["etcd"])


def test_an_invalid_auth_token_restarts_etcd_once_and_not_again_within_the_interval():
    tokens, etcd, _, clock = check(INVALID, INVALID, INVALID)
    assert tokens.tick() == "etcd rejected its own tokens: restarted" and etcd.stopped == 1
    restart(etcd)
    clock.advance(TOKEN_RESTART_INTERVAL - 1)
    assert tokens.tick() == "etcd rejects its own tokens; restarted recently, left running" and etcd.stopped == 1
    restart(etcd)
    clock.advance(1)
    assert tokens.tick() == "etcd rejected its own tokens: restarted" and etcd.stopped == 2


def test_one_check_per_etcd_start():
    tokens, etcd, clients, _ = check(None, None)
    assert tokens.tick() == "tokens accepted"
    assert [tokens.tick() for _ in range(3)] == ["", "", ""] and clients.made == 1
    restart(etcd)
    assert tokens.tick() == "tokens accepted" and clients.made == 2


def test_an_etcd_that_does_not_answer_yet_is_checked_again_next_cycle():
    tokens, etcd, clients, _ = check(EtcdUnavailable("connection refused"), None)
    assert tokens.tick() == "etcd does not answer yet"
    assert tokens.tick() == "tokens accepted" and clients.made == 2 and etcd.stopped == 0


@pytest.mark.parametrize("answer", ["etcdserver: permission denied", "etcdserver: request timed out"])
def test_other_refusals_restart_nothing(answer):
    tokens, etcd, clients, _ = check(answer)
    assert tokens.tick() == "" and etcd.stopped == 0
    assert tokens.tick() == "" and clients.made == 1  # checked once for this start all the same


def test_without_credentials_or_etcd_nothing_is_checked():
    etcd = FakeProcess(running=True)
    assert TokenCheck(etcd, None).tick() == "" and etcd.calls == []
    clients = Clients(INVALID)
    assert TokenCheck(FakeProcess(running=False), clients).tick() == "" and clients.made == 0


def test_the_error_type_is_etcds():
    # The check tells "invalid auth token" by etcd's message on an EtcdError, as the client raises it.
    tokens, etcd, _, _ = check(EtcdError(INVALID, code=16))
    assert tokens.tick() == "etcd rejected its own tokens: restarted" and etcd.stopped == 1
