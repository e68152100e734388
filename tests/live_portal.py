"""The real portal in a subprocess, started the way a box starts it: ``instore portal``.

End-to-end tests must exercise what ships — the console script, ``deploy/gunicorn.conf.py``, the
gthread worker and configuration from ``INSTORE_*`` variables — not the Flask test client. Each
portal gets its own database, port and gunicorn control socket, so tests never share state and
never touch files outside their temporary directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

START_TIMEOUT_SECONDS = 20.0  # a cold start (imports, migrations, worker boot) takes about 1 s
STOP_TIMEOUT_SECONDS = 10.0
SECRET_KEY = "browser-test-secret-key"
# What a portal's output may never contain: gunicorn's error lines and the app's logfmt errors.
ERROR_MARKERS = ("Traceback", "[ERROR]", "level=error")


class PortalDidNotStart(RuntimeError):
    """The portal exited or never answered; the message carries its output."""


def free_port() -> int:
    """A loopback port nobody listens on right now (gunicorn binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def instore_command() -> list[str]:
    """The ``instore`` console script installed beside this interpreter, as in production."""
    script = Path(sys.executable).parent / "instore"
    if script.exists():
        return [str(script)]
    # Same entry point when the script is missing (e.g. a non-venv interpreter).
    return [sys.executable, "-c", "import sys; from instore.cli import main; sys.exit(main())"]


def portal_environment(
    workdir: Path, port: int, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment minus any INSTORE_* of the developer's, plus the test's own
    and then ``extra_env`` (a test's settings win over the defaults here)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("INSTORE_")}
    env.update(
        INSTORE_DATABASE_PATH=str(workdir / "instore.db"),
        INSTORE_PORTAL_BIND=f"127.0.0.1:{port}",
        INSTORE_PORTAL_PUBLIC_URL=f"http://127.0.0.1:{port}",
        INSTORE_PORTAL_SECRET_KEY=SECRET_KEY,
        INSTORE_PORTAL_WORKERS="1",
        # Loopback has no neighbour table; the demo lookup gives 127.0.0.1 a stable fake MAC.
        INSTORE_HARDWARE_CLIENT_LOOKUP="demo",
        INSTORE_GATEWAY_BACKEND="memory",
    )
    env.update(extra_env or {})
    return env


@dataclass
class LivePortal:
    """A running portal: where it listens, its database and its output."""

    url: str
    port: int
    database_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    # The portal's whole environment, for other processes that must share its configuration.
    environment: dict[str, str] = field(repr=False)
    _log: IO[bytes] = field(repr=False)

    def output(self) -> str:
        """Everything the portal printed so far (gunicorn errors and the app's log lines)."""
        return self.log_path.read_text(errors="replace")

    def assert_no_errors(self) -> None:
        """Fail when the portal's output has an error line or a traceback."""
        output = self.output()
        for marker in ERROR_MARKERS:
            assert marker not in output, f"the portal logged an error:\n{output}"

    def stop(self) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._log.close()


# Straight to loopback even when the developer's environment sets http_proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_portal(
    workdir: Path,
    timeout: float = START_TIMEOUT_SECONDS,
    extra_env: Mapping[str, str] | None = None,
) -> LivePortal:
    """Start ``instore portal`` and return once a page is served, or raise with its output.

    ``extra_env`` adds or overrides ``INSTORE_*`` settings of this portal only.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = portal_environment(workdir, port, extra_env)
    log_path = workdir / "portal.log"
    # Output goes to a file, not a pipe: nobody reads a pipe while the tests run, and a full pipe
    # would block the server.
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*instore_command(), "portal"],
        env=environment,
        cwd=workdir,  # nothing may depend on being started from the checkout
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    portal = LivePortal(
        url=f"http://127.0.0.1:{port}",
        port=port,
        database_path=workdir / "instore.db",
        log_path=log_path,
        process=process,
        environment=environment,
        _log=log,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            portal.stop()
            raise PortalDidNotStart(
                f"`instore portal` exited with status {process.returncode}:\n{portal.output()}"
            )
        # /venue is a plain GET page: it proves a worker booted and the app renders templates.
        if _answers(f"{portal.url}/venue"):
            return portal
        time.sleep(0.1)
    output = portal.output()
    portal.stop()
    raise PortalDidNotStart(f"`instore portal` did not answer within {timeout:.0f} s:\n{output}")


@contextmanager
def running_portal(
    workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[LivePortal]:
    """A portal for the length of a ``with`` block (or a fixture): the test fails if it does not
    start, and, when the block ends normally, if its log shows an error."""
    try:
        portal = start_portal(workdir, extra_env=extra_env)
    except PortalDidNotStart as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield portal
    finally:
        portal.stop()
    portal.assert_no_errors()
