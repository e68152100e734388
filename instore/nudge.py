"""A wake-up call between processes on one box: "the sessions table changed, look now".

State still travels only through the database. The portal sends an empty datagram to the
gatekeeper's Unix socket after it commits a sign-in or sign-out, so the firewall follows within
milliseconds instead of at the next periodic check. Sending never blocks and never fails the
caller: if nobody listens, the periodic check catches up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from pathlib import Path

log = logging.getLogger(__name__)

# Unix socket paths are limited to 108 bytes (sun_path); keep ours well inside it.
MAX_SOCKET_PATH = 100


def send_nudge(path: str | Path) -> bool:
    """Wake whoever listens on ``path``; False when nobody does (which is fine)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(b"!", str(path))
        except OSError:
            return False
    return True


class NudgeListener:
    """The receiving end: ``wait(timeout)`` returns True if nudged, draining queued nudges."""

    def __init__(self, path: str | Path, mode: int = 0o660) -> None:
        self.path = Path(path)
        if len(str(self.path)) > MAX_SOCKET_PATH:
            raise ValueError(f"nudge socket path too long (max {MAX_SOCKET_PATH}): {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a crashed run
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        # The portal runs as another user in the same group; it only needs to write.
        os.chmod(self.path, mode)
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return False
        while True:  # many sign-ins at once are one reconcile
            try:
                self.sock.recv(16)
            except BlockingIOError:
                return True

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
