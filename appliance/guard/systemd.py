"""systemd's notify protocol (sd_notify(3)): ``READY=1`` and ``WATCHDOG=1`` datagrams to ``$NOTIFY_SOCKET``.

Our own few lines: the protocol is one datagram on a Unix socket, and the bindings
(systemd-python) need libsystemd's headers to build.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends notifications when ``NOTIFY_SOCKET`` is set; does nothing otherwise. Never raises."""

    def __init__(self, environ: dict[str, str] | None = None):
        address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address or None

    def send(self, message: str) -> bool:
        """Send one notification, e.g. "WATCHDOG=1"; False if unset or it could not be sent."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1.0)
                sock.sendto(message.encode(), self.address)
            return True
        except OSError:
            return False
