"""systemd's notify protocol: a datagram to $NOTIFY_SOCKET, nothing without one."""

import socket

from appliance.guard.systemd import Notifier


def test_notifier_sends_to_the_socket_and_is_silent_without_one(tmp_path):
    assert Notifier({}).send("WATCHDOG=1") is False
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": path}).send("WATCHDOG=1") is True
        assert listener.recv(64) == b"WATCHDOG=1"
    assert Notifier({"NOTIFY_SOCKET": "@appliance-test-abstract"}).address == "\0appliance-test-abstract"
