"""A guest WiFi box, a phone, a spoofer and "the internet" as network namespaces, with real packets.

Used by ``tests/test_gatekeeper_netns.py`` and ``bench/login_to_packet.py``; the process
helpers are in ``tests/netns_procs.py``. Needs root, ``ip``
(iproute2) and ``nft`` (nftables). The topology, all on documentation ranges::

    phone  eth0 02:00:00:00:00:10  192.0.2.10   2001:db8:1::10 ─┐
                                                                 ├─ box br-guest 192.0.2.1
    spoof  eth0 02:00:00:00:00:10  192.0.2.20  (same MAC)  ─────┘           2001:db8:1::1
    box    wan0 198.51.100.1  2001:db8:2::1 ── internet eth0 198.51.100.2, 198.51.100.7 (garden)
                                                                2001:db8:2::2

The box runs what a box runs: ``instore portal`` (gunicorn) on 192.0.2.1:8080 and
``instore gatekeeper`` with the nftables backend, configured only through ``INSTORE_*`` variables
(``INSTORE_CONFIG`` is an empty file, so nothing from the machine leaks in). The internet runs
``tests/netns_agent.py internet``; the phone and the spoofer each run a ``netns_agent.py serve``
that the test drives over a pipe (see that file for the commands).

Choices that keep the tests honest:
- Before the portal and gatekeeper start, the harness checks that the topology forwards everything
  (HTTP, 443, DNS, IPv6) with no ruleset: every "gets nothing" later is the firewall's doing.
- The box masquerades out of ``wan0`` (``INSTORE_HARDWARE_WAN_INTERFACE``), and the internet's
  HTTP server reports the peer it saw, so the masquerade path is exercised and visible. The
  internet also has a route back to the guest LAN, only so the no-firewall check can work.
- MAC learning is off on the box's two guest ports: the phone and the spoofer share a MAC, and a
  learning bridge would move that MAC to whichever port spoke last, stalling the other's replies
  (flooding instead sends each frame to both; each drops what is not addressed to its own IP).
- Names carry the pid (``instore-box-1234-0``); ``close()`` deletes whatever was created, even
  after a half-finished ``start()``, and ``start()`` first removes namespaces left by a dead run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from instore.clock import to_iso, utcnow
from instore.nudge import send_nudge
from tests.live_portal import instore_command
from tests.netns_procs import (
    COMMAND_TIMEOUT_SECONDS,
    Agent,
    HarnessError,
    LineProcess,
    dns_probe,
    end_processes_in,
    http_probe,
    poll,
    run,
    stop_process,
    tcp_probe,
)

# Re-exported: tests and benches reach the whole harness through ``tests.netns``.
from tests.netns_procs import PROBE_TIMEOUT_SECONDS as PROBE_TIMEOUT_SECONDS
from tests.netns_procs import skip_reason as skip_reason

AGENT = Path(__file__).with_name("netns_agent.py")

PHONE_MAC = "02:00:00:00:00:10"  # locally administered; the spoofer wears it too
BOX_LAN4, PHONE4, SPOOF4 = "192.0.2.1", "192.0.2.10", "192.0.2.20"
BOX_WAN4, INTERNET4, GARDEN4 = "198.51.100.1", "198.51.100.2", "198.51.100.7"
BOX_LAN6, PHONE6 = "2001:db8:1::1", "2001:db8:1::10"
BOX_WAN6, INTERNET6 = "2001:db8:2::1", "2001:db8:2::2"
LAN, WAN = "br-guest", "wan0"
PORTAL_PORT = 8080
PORTAL_URL = f"http://{BOX_LAN4}:{PORTAL_PORT}"
PASSWORD = "correct horse battery"
ROLES = ("box", "phone", "spoof", "internet")
NAME_RE = re.compile(r"^instore-(?:box|phone|spoof|internet)-(\d+)-\d+$")
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
# The rate limits protect real shoppers; here one phone signs in dozens of times a minute.
UNLIMITED = "100000 per minute"

START_TIMEOUT_SECONDS = 20.0  # a cold portal start takes about 1 s; slow CI machines more
# First packets between fresh namespaces wait for ARP and neighbour discovery.
WARMUP_SECONDS = 5.0
# Sign-in to online takes milliseconds (the issue's goal is 1 s); a flow helper waits this long.
ONLINE_SECONDS = 5.0

_instances = itertools.count()


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces of ours whose creating process is gone (a run killed before teardown).

    Their processes (a portal, a gatekeeper) would outlive the name; they are ended first.
    """
    removed = []
    for line in run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.strip() else ""
        match = NAME_RE.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            end_processes_in(name)
            run(["ip", "netns", "delete", name], check=False)
            removed.append(name)
    return removed


INTERNET_URL = f"http://{INTERNET4}/"
# What "the real internet answered" and "the portal intercepted it" look like to a probe.
REAL = {"server": "internet"}
INTERCEPTED = {"status": 302, "server": "other"}


class Lab:
    """The four namespaces and the processes in them. ``start()`` builds, ``close()`` removes."""

    def __init__(self, workdir: Path, settings: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.settings = settings or {}  # extra INSTORE_* for the box, over the defaults below
        self.suffix = f"{os.getpid()}-{next(_instances)}"
        self.names = {role: f"instore-{role}-{self.suffix}" for role in ROLES}
        self.created: list[str] = []
        self.logs: dict[str, IO[bytes]] = {}
        self.internet: LineProcess | None = None
        self.portal: subprocess.Popen[bytes] | None = None
        self.gatekeeper: subprocess.Popen[bytes] | None = None
        self.agents: dict[str, Agent] = {}
        self.db_path = workdir / "instore.db"
        self.socket_path = workdir / "gk.sock"
        self._members = itertools.count(1)

    # -- names and commands ---------------------------------------------------------------------
    @property
    def phone(self) -> Agent:
        return self.agents["phone"]

    @property
    def spoof(self) -> Agent:
        return self.agents["spoof"]

    def ip(self, role: str, *args: str) -> str:
        return run(["ip", "-n", self.names[role], *args])

    def exec_in(self, role: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[role], *cmd]

    def plain_env(self) -> dict[str, str]:
        """This environment without the developer's INSTORE_* settings or proxies."""
        return {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("INSTORE_") and key.lower() not in PROXY_VARIABLES
        }

    def box_env(self) -> dict[str, str]:
        """What the portal, the gatekeeper and the CLI in the box are configured with."""
        empty = self.workdir / "empty.toml"
        empty.touch()
        env = self.plain_env()
        env.update(
            INSTORE_CONFIG=str(empty),
            INSTORE_DATABASE_PATH=str(self.db_path),
            INSTORE_PORTAL_BIND=f"{BOX_LAN4}:{PORTAL_PORT}",
            INSTORE_PORTAL_PUBLIC_URL=PORTAL_URL,
            INSTORE_PORTAL_SECRET_KEY="netns-test-secret-key",
            INSTORE_PORTAL_WORKERS="1",
            INSTORE_PORTAL_LOGIN_LIMIT=UNLIMITED,
            INSTORE_PORTAL_SIGNUP_LIMIT=UNLIMITED,
            INSTORE_HARDWARE_CLIENT_LOOKUP="neighbours",
            INSTORE_HARDWARE_LAN_INTERFACE=LAN,
            INSTORE_HARDWARE_WAN_INTERFACE=WAN,
            INSTORE_HARDWARE_LEASES_FILE=str(self.workdir / "none.leases"),
            INSTORE_GATEWAY_BACKEND="nftables",
            INSTORE_GATEWAY_NUDGE_SOCKET=str(self.socket_path),
            INSTORE_GATEWAY_WALLED_GARDEN=GARDEN4,
            # Drift repairs within a second; sign-ins and sign-outs go by the nudge anyway.
            INSTORE_GATEWAY_RECONCILE_SECONDS="1",
        )
        env.update(self.settings)
        return env

    def instore(self, *args: str, check: bool = True) -> str:
        """The ``instore`` CLI in the box, as an operator would run it there."""
        return run(self.exec_in("box", *instore_command(), *args), env=self.box_env(), check=check)

    def nft(self, *args: str) -> str:
        return run(self.exec_in("box", "nft", *args))

    def log(self, name: str) -> IO[bytes]:
        if name not in self.logs:
            self.logs[name] = (self.workdir / f"{name}.log").open("ab")
        return self.logs[name]

    def log_text(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- building -------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the topology and start everything; HarnessError (with logs) if any step fails."""
        remove_stale_namespaces()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._build_namespaces()
        self._start_internet()
        for role in ("phone", "spoof"):
            cmd = self.exec_in(role, sys.executable, str(AGENT), "serve")
            self.agents[role] = Agent(role, cmd, self.plain_env(), self.log(role))
        self._check_open_without_firewall()
        self.portal = self._spawn("portal", "portal")
        self.start_gatekeeper()
        self._wait_for_portal()

    def _build_namespaces(self) -> None:
        for role in ROLES:
            run(["ip", "netns", "add", self.names[role]])
            self.created.append(self.names[role])
            # No duplicate address detection anywhere: addresses are usable at once.
            run(self.exec_in(role, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"))
            run(self.exec_in(role, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"))
            self.ip(role, "link", "set", "lo", "up")
        self.ip("box", "link", "add", LAN, "type", "bridge", "forward_delay", "0")
        for role, port in (("phone", "lan-phone"), ("spoof", "lan-spoof")):
            peer = ("peer", "name", "eth0", "netns", self.names[role])
            self.ip("box", "link", "add", port, "type", "veth", *peer)
            self.ip("box", "link", "set", port, "master", LAN)
            self.ip("box", "link", "set", port, "type", "bridge_slave", "learning", "off")
            self.ip("box", "link", "set", port, "up")
            self.ip(role, "link", "set", "eth0", "address", PHONE_MAC)
            self.ip(role, "link", "set", "eth0", "up")
        self.ip("box", "link", "set", LAN, "up")
        self.ip("box", "addr", "add", f"{BOX_LAN4}/24", "dev", LAN)
        self.ip("box", "addr", "add", f"{BOX_LAN6}/64", "dev", LAN, "nodad")
        self.ip("phone", "addr", "add", f"{PHONE4}/24", "dev", "eth0")
        self.ip("phone", "addr", "add", f"{PHONE6}/64", "dev", "eth0", "nodad")
        self.ip("phone", "route", "add", "default", "via", BOX_LAN4)
        self.ip("phone", "-6", "route", "add", "default", "via", BOX_LAN6)
        self.ip("spoof", "addr", "add", f"{SPOOF4}/24", "dev", "eth0")
        self.ip("spoof", "route", "add", "default", "via", BOX_LAN4)

        peer = ("peer", "name", "eth0", "netns", self.names["internet"])
        self.ip("box", "link", "add", WAN, "type", "veth", *peer)
        self.ip("box", "addr", "add", f"{BOX_WAN4}/24", "dev", WAN)
        self.ip("box", "addr", "add", f"{BOX_WAN6}/64", "dev", WAN, "nodad")
        self.ip("box", "link", "set", WAN, "up")
        for address in (f"{INTERNET4}/24", f"{GARDEN4}/24"):
            self.ip("internet", "addr", "add", address, "dev", "eth0")
        self.ip("internet", "addr", "add", f"{INTERNET6}/64", "dev", "eth0", "nodad")
        self.ip("internet", "link", "set", "eth0", "up")
        # Only for the no-firewall check: with the ruleset loaded, the box masquerades.
        self.ip("internet", "route", "add", "192.0.2.0/24", "via", BOX_WAN4)
        self.ip("internet", "-6", "route", "add", "2001:db8:1::/64", "via", BOX_WAN6)
        run(self.exec_in("box", "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        run(self.exec_in("box", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"))

    def _start_internet(self) -> None:
        cmd = self.exec_in("internet", sys.executable, str(AGENT), "internet")
        self.internet = LineProcess("internet", cmd, self.plain_env(), self.log("internet"))
        line = self.internet.readline(START_TIMEOUT_SECONDS)
        if line != "ready":
            raise HarnessError(f"internet servers said {line!r}:\n{self.log_text('internet')}")

    def _check_open_without_firewall(self) -> None:
        """Everything the tests later expect to be blocked must work without the ruleset."""
        checks = [
            ("phone", http_probe(INTERNET_URL), {**REAL, "peer": PHONE4}),
            ("phone", tcp_probe(INTERNET4, 443), {"result": "connected"}),
            ("phone", dns_probe(INTERNET4), {"result": "answered"}),
            ("phone", http_probe(f"http://[{INTERNET6}]/"), {**REAL, "peer": PHONE6}),
            ("spoof", http_probe(INTERNET_URL), {**REAL, "peer": SPOOF4}),
        ]
        for role, probe, want in checks:
            answer = self.agents[role].wait(probe, want, WARMUP_SECONDS)
            if not answer["matched"]:
                raise HarnessError(
                    f"topology broken before any firewall: {role} {probe} gave {answer['last']}"
                )

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """``instore ARGS`` in the box, output to ``NAME.log``, in its own process group."""
        return subprocess.Popen(
            self.exec_in("box", *instore_command(), *args),
            env=self.box_env(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self.log(name),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_for_portal(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.portal is None or self.portal.poll() is not None:
                raise HarnessError(f"instore portal exited:\n{self.log_text('portal')}")
            answer = self.phone.wait(http_probe(f"{PORTAL_URL}/venue"), {"status": 200}, 0.5)
            if answer["matched"]:
                return
        raise HarnessError(f"instore portal did not answer:\n{self.log_text('portal')}")

    # -- the gatekeeper -------------------------------------------------------------------------
    def start_gatekeeper(self) -> None:
        """Start ``instore gatekeeper`` and wait for its first full reconcile."""
        self.gatekeeper = self._spawn("gatekeeper", "gatekeeper")
        pid = self.gatekeeper.pid  # `ip netns exec` execs: this is the gatekeeper itself

        def ready() -> bool:
            if self.gatekeeper is None or self.gatekeeper.poll() is not None:
                raise HarnessError(f"instore gatekeeper exited:\n{self.log_text('gatekeeper')}")
            row = self.status_row()
            return bool(row and row["pid"] == pid and row["last_full_check_at"])

        try:
            poll(ready, START_TIMEOUT_SECONDS, "gatekeeper's first reconcile")
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.log_text('gatekeeper')}") from None

    def stop_gatekeeper(self, crash: bool = False) -> None:
        """SIGTERM (its orderly stop), or with ``crash`` SIGKILL: no chance to tidy up."""
        if self.gatekeeper is not None:
            stop_process(self.gatekeeper, graceful=not crash)
            self.gatekeeper = None

    def gatekeeper_running(self) -> bool:
        return self.gatekeeper is not None and self.gatekeeper.poll() is None

    # -- state in the box -----------------------------------------------------------------------
    @contextlib.contextmanager
    def connect_db(self) -> Iterator[sqlite3.Connection]:
        """The box's database, as another process on the box sees it; committed and closed."""
        conn = sqlite3.connect(self.db_path, timeout=COMMAND_TIMEOUT_SECONDS)
        conn.row_factory = sqlite3.Row
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def status_row(self) -> dict[str, Any] | None:
        """The gatekeeper's status row, or None before it first ran."""
        if not self.db_path.exists():
            return None
        with self.connect_db() as conn:
            try:
                row = conn.execute("SELECT * FROM gatekeeper_status WHERE id = 1").fetchone()
            except sqlite3.OperationalError:  # the portal is still migrating a new file
                return None
        return dict(row) if row else None

    def update_live_sessions(self, assignments: str, *params: Any) -> int:
        """``UPDATE sessions SET <assignments>`` on the live sessions, then nudge; rows changed."""
        now = to_iso(utcnow())
        with self.connect_db() as conn:
            cursor = conn.execute(
                f"UPDATE sessions SET {assignments} WHERE revoked_at IS NULL AND expires_at > ?",  # noqa: S608
                (*params, now),
            )
        send_nudge(self.socket_path)
        return cursor.rowcount

    def revoke_all(self) -> int:
        now = to_iso(utcnow())
        return self.update_live_sessions("revoked_at = ?, revoked_reason = 'test reset'", now)

    def expire_all_in(self, seconds: int) -> str:
        """Move every live session's end to ``seconds`` from now; the stored timestamp."""
        ends = to_iso(utcnow() + timedelta(seconds=seconds))
        self.update_live_sessions(
            "expires_at = ?, idle_deadline = MIN(idle_deadline, ?)", ends, ends
        )
        return ends

    def table_present(self) -> bool:
        listing = run(self.exec_in("box", "nft", "list", "table", "inet", "instore"), check=False)
        return listing != ""  # nft prints nothing (and fails) when the table is missing

    def allowed(self) -> set[tuple[str, str]]:
        """(MAC, IP) pairs in the live ``allowed4`` set, read with nft itself."""
        try:
            out = self.nft("-j", "list", "set", "inet", "instore", "allowed4")
        except HarnessError:
            return set()
        found = set()
        for item in json.loads(out).get("nftables", []):
            for wrapper in item.get("set", {}).get("elem", []):
                elem = wrapper.get("elem", wrapper) if isinstance(wrapper, dict) else {}
                value = elem.get("val", wrapper) if isinstance(elem, dict) else wrapper
                if isinstance(value, dict) and "concat" in value:
                    mac, ip = value["concat"]
                    found.add((mac, ip))
        return found

    # -- flows ----------------------------------------------------------------------------------
    def new_identity(self) -> str:
        return f"shopper{next(self._members)}-{self.suffix}@example.com"

    def go_online(
        self,
        agent: Agent | None = None,
        identifier: str | None = None,
        probes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Sign up a new member (or sign in ``identifier``) on the portal from the phone.

        Returns once the "You're online" page was shown and every probe matched; by default the
        one probe is "the internet host answers", so the firewall has caught up on return.
        """
        agent = agent or self.phone
        if probes is None:
            probes = [{"probe": http_probe(INTERNET_URL), "want": REAL, "timeout": ONLINE_SECONDS}]
        answer = agent.call(
            "online",
            portal=PORTAL_URL,
            identifier=identifier or self.new_identity(),
            password=PASSWORD,
            name="Netns Shopper",
            signup=identifier is None,
            probes=probes,
        )
        if not answer["online_page"] or not all(probe["matched"] for probe in answer["probes"]):
            raise HarnessError(f"{agent.name} did not get online: {answer}\n{self.diagnostics()}")
        return answer

    def reset(self) -> None:
        """Between tests: gatekeeper up, nobody authorized, fresh phones."""
        if not self.gatekeeper_running():
            self.start_gatekeeper()
        self.revoke_all()
        for agent in self.agents.values():
            agent.call("reset")
        poll(
            lambda: self.table_present() and not self.allowed(),
            START_TIMEOUT_SECONDS,
            "firewall back to nobody authorized",
        )

    def diagnostics(self) -> str:
        """What to look at when an assertion fails: the ruleset, sessions and the logs' tails."""
        parts = [f"workdir: {self.workdir}"]
        try:
            parts.append(self.nft("list", "table", "inet", "instore"))
        except HarnessError as exc:
            parts.append(str(exc))
        if self.db_path.exists():
            with self.connect_db() as conn:
                rows = conn.execute(
                    "SELECT id, mac, ip, expires_at, revoked_at, revoked_reason FROM sessions "
                    "ORDER BY id DESC LIMIT 5"
                ).fetchall()
            parts.append("sessions: " + "; ".join(str(tuple(row)) for row in rows))
        for name in ("gatekeeper", "portal"):
            tail = "\n".join(self.log_text(name).splitlines()[-15:])
            parts.append(f"--- {name}.log (tail)\n{tail}")
        return "\n".join(parts)

    # -- teardown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every process we started and delete every namespace we created. Idempotent."""
        errors = []
        for agent in self.agents.values():
            agent.stop()
        self.agents.clear()
        if self.internet is not None:
            self.internet.stop()
            self.internet = None
        self.stop_gatekeeper()
        if self.portal is not None:
            stop_process(self.portal)
            self.portal = None
        for name in reversed(self.created):
            try:
                end_processes_in(name)
                run(["ip", "netns", "delete", name])
            except HarnessError as exc:
                errors.append(str(exc))
        self.created.clear()
        for log in self.logs.values():
            log.close()
        self.logs.clear()
        if errors:
            raise HarnessError("could not delete namespaces: " + "; ".join(errors))
