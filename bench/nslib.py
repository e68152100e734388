"""Throw-away network namespaces, and reading what ``nft`` holds and reports inside them.

The gatekeeper bench runs the real ``NftablesGateway`` and the real ``nft`` in namespaces it
creates, so the host's ruleset is never touched. What the set holds is read here with ``nft``'s
own JSON rather than through ``hardware.nftables``, so a check does not share the code it checks.
Needs root, ``ip`` and ``nft``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from benchlib import BenchError, stop_process

from hardware.gateway import ClientKey

PROG = Path(sys.argv[0]).stem  # error messages name the bench that was run
TABLE = ("inet", "instore")  # the gateway's table and set, as hardware/nftables.py names them
ALLOWED_SET = "allowed4"
NFT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def in_ns(ns: str, *command: str) -> list[str]:
    """``command`` run inside namespace ``ns`` (``ip netns exec`` execs it: same pid)."""
    return ["ip", "netns", "exec", ns, *command]


def run_command(
    command: list[str], timeout_s: float = NFT_TIMEOUT_S, stdin: str | None = None
) -> str:
    """Run a command to completion; BenchError with its stderr if it fails."""
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{shlex.join(command)}: no answer after {timeout_s:.0f}s") from None
    if done.returncode != 0:
        raise BenchError(
            f"{shlex.join(command)} exited with {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


@contextmanager
def namespace(label: str, bridge: str) -> Iterator[str]:
    """A fresh network namespace with a ``bridge`` in it, always deleted afterwards.

    The bridge lets the rules name an interface that exists. The name carries this process's
    pid, so concurrent runs (and the e2e tests' namespaces) never collide, and only the
    namespace created here is deleted.
    """
    name = f"instore-bench-{os.getpid()}-{label}"
    run_command(["ip", "netns", "add", name])
    try:
        run_command(in_ns(name, "ip", "link", "add", bridge, "type", "bridge"))
        yield name
    finally:
        done = subprocess.run(
            ["ip", "netns", "del", name], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            print(
                f"{PROG}: could not delete namespace {name}: {done.stderr.strip()}", file=sys.stderr
            )


# ---------------------------------------------------------------------------------------------
# The allowed set


def element_keys(elems: list[Any]) -> list[ClientKey]:
    """(MAC, IP) of each element in the ``elem`` list of nft's JSON (a listing or a monitor event).

    An element with a timeout or counter is ``{"elem": {"val": {"concat": …}}}``; a bare one is
    ``{"concat": …}``.
    """
    found: list[ClientKey] = []
    for wrapper in elems:
        elem = wrapper.get("elem", wrapper) if isinstance(wrapper, dict) else {}
        val = elem.get("val", elem) if isinstance(elem, dict) else {}
        if isinstance(val, dict) and "concat" in val:
            mac, ip = val["concat"]
            found.append((mac, ip))
    return found


def set_elements(ns: str) -> list[ClientKey]:
    """The allowed set as ``nft`` lists it (a list, so duplicates would show)."""
    out = run_command(in_ns(ns, "nft", "-j", "list", "set", *TABLE, ALLOWED_SET))
    found: list[ClientKey] = []
    for item in json.loads(out).get("nftables", []):
        found.extend(element_keys(item.get("set", {}).get("elem", [])))
    return found


def check_set(ns: str, expected: set[ClientKey], when: str) -> None:
    """The allowed set must hold exactly ``expected``: no element missing, none extra."""
    listed = set_elements(ns)
    present = set(listed)
    if len(listed) != len(expected) or present != expected:
        missing, extra = len(expected - present), len(present - expected)
        raise BenchError(
            f"{when}: nft lists {len(listed)} element(s), expected exactly {len(expected)} "
            f"({missing} missing, {extra} unexpected)"
        )


def element_present(ns: str, key: ClientKey) -> bool:
    """One ``nft get element``: with many elements it loads the whole set first, so it is slow."""
    command = in_ns(ns, "nft", "get", "element", *TABLE, ALLOWED_SET, f"{{ {key[0]} . {key[1]} }}")
    return (
        subprocess.run(command, capture_output=True, timeout=NFT_TIMEOUT_S, check=False).returncode
        == 0
    )


class Monitor:
    """``nft -j monitor new elements`` in the namespace, read by a thread.

    Each element's first "add" event is stamped with ``time.perf_counter()`` the moment its line
    arrives, on the same clock as the commit it is compared with. The kernel sends the event when
    the transaction adding the element commits, so its arrival is when the element is there.
    """

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.process: subprocess.Popen[str] | None = None
        self.seen: dict[ClientKey, float] = {}
        self.changed = threading.Condition()
        self.reader: threading.Thread | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            in_ns(self.ns, "nft", "-j", "monitor", "new", "elements"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            arrived = time.perf_counter()
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not an event (nft prints nothing else with -j, but be lenient)
            body = event.get("add", {}).get("element", {})
            keys = element_keys(body.get("elem", {}).get("set", []))
            with self.changed:
                for key in keys:
                    self.seen.setdefault(key, arrived)
                self.changed.notify_all()

    def wait_for(self, key: ClientKey, timeout_s: float) -> float | None:
        """When the element's add event arrived, or None after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while key not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0 or self.process is None or self.process.poll() is not None:
                    return None
                self.changed.wait(min(left, 0.5))
            return self.seen[key]

    def stop(self) -> None:
        stop_process(self.process, STOP_TIMEOUT_S)
        if self.reader is not None:
            self.reader.join(timeout=STOP_TIMEOUT_S)
