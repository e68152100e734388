"""Processes for the namespace harness (``tests/netns.py``): commands, children, the agent.

Split from the topology so each file does one thing: this one starts, talks to and stops
processes, each with a bounded wait; ``netns.py`` builds the namespaces and the box.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from typing import IO, Any

COMMAND_TIMEOUT_SECONDS = 10.0  # ip, nft and the instore CLI answer in well under a second
STOP_TIMEOUT_SECONDS = 12.0  # gunicorn's graceful_timeout is 10 s
# The agent bounds every probe itself; this only catches an agent that hangs or died.
AGENT_CALL_TIMEOUT_SECONDS = 60.0
PROBE_TIMEOUT_SECONDS = 1.0  # one attempt; a dropped SYN is only retransmitted after 1 s anyway
POLL_SECONDS = 0.05  # between checks of state in the box (nft set, status row)


class HarnessError(RuntimeError):
    """The topology or a process in it is not working; the message says what and shows logs."""


def skip_reason() -> str | None:
    """Why these tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces and load nftables rules"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"needs {' and '.join(missing)} (Debian packages iproute2, nftables)"
    return None


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run a command to completion within the command timeout; its stdout, or HarnessError."""
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, env=env
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{' '.join(cmd)}: no answer in {COMMAND_TIMEOUT_SECONDS} s") from None
    if check and result.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def poll(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until ``check()``; seconds it took, or HarnessError naming ``what``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise HarnessError(f"{what}: not within {timeout} s")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - start


def stop_process(process: subprocess.Popen[Any], graceful: bool = True) -> None:
    """SIGTERM (or SIGKILL) our child and wait for it; SIGKILL if it does not stop in time.

    What it leaves behind (gunicorn workers of a killed master, an nft run by a killed
    gatekeeper) is ended with its namespace: see ``end_processes_in``.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def end_processes_in(namespace: str) -> None:
    """SIGKILL, by pid, whatever still runs in one of our namespaces: we started all of it."""
    for pid in run(["ip", "netns", "pids", namespace], check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def http_probe(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, Any]:
    return {"kind": "http", "url": url, "timeout": timeout}


def tcp_probe(host: str, port: int, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, Any]:
    return {"kind": "tcp", "host": host, "port": port, "timeout": timeout}


def dns_probe(host: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, Any]:
    return {"kind": "dns", "host": host, "port": 53, "timeout": timeout}


class LineProcess:
    """A child in a namespace that talks in lines on stdout; reads are bounded by a deadline."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: IO[bytes]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        self._buffer = b""

    def readline(self, timeout: float) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"{self.name}: no answer within {timeout} s")
            # poll, not select: select() refuses descriptors above 1023, which a long test
            # session in one process can reach.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if poller.poll(remaining * 1000):
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise HarnessError(f"{self.name} exited ({self.process.poll()})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the agent's loop ends at EOF
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Agent(LineProcess):
    """``netns_agent.py serve`` in a namespace: a phone that runs probes and portal flows."""

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.readline(AGENT_CALL_TIMEOUT_SECONDS))
        if not answer.pop("ok"):
            raise HarnessError(f"{self.name} {op}: {answer['error']}")
        return answer

    def probe(self, probe: dict[str, Any]) -> dict[str, Any]:
        """One attempt of a probe built by ``http_probe``/``tcp_probe``/``dns_probe``."""
        args = {key: value for key, value in probe.items() if key != "kind"}
        return self.call(probe["kind"], **args)

    def wait(self, probe: dict[str, Any], want: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Repeat ``probe`` until its answer has the ``want`` fields; ``matched`` says if it did."""
        return self.call("wait", probe=probe, want=want, timeout=timeout)
