"""What runs *inside* the test namespaces: the fake internet's servers and a phone's client.

Started by ``tests/netns.py`` with ``ip netns exec NS python tests/netns_agent.py MODE``; it only
uses the standard library, so any Python works. Two modes:

``internet``
    Plain HTTP on 80 (answers JSON naming itself and the peer address it saw, so a test can tell
    the real host from the portal and see the box's masquerade), a TCP listener on 443 (writes one
    byte, then echoes, so a held connection can show that a revoke stops it), and a "DNS" responder
    on UDP 53 that answers anything. All dual-stack on every address. Prints ``ready`` once bound.

``serve``
    A phone (or the spoofer) taking one JSON command per stdin line and answering one JSON line.
    A long-lived process rather than one per probe: a timing measured in-process is not inflated
    by interpreter start-up, and the cookie jar (the portal's session, CSRF) survives between
    commands. Every answer carries ``at``, a ``time.monotonic()`` reading: the namespaces share the
    host's monotonic clock, so the test process can subtract its own readings from it.

Any other mode runs one ``serve`` command from the command line and prints the answer, for poking
at a topology by hand: ``ip netns exec NS python tests/netns_agent.py http '{"url": "..."}'``.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import queue
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INTERNET_MARKER = "internet"
DNS_QUERY_ID = b"\x12\x34"
# One question for "probe.test" type A, class IN, recursion desired.
DNS_QUERY = (
    DNS_QUERY_ID + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
)
POLL_PAUSE_SECONDS = 0.005  # between attempts of a poll: keeps a tight loop off the portal's back
# A poll's attempt that has not finished by then is probably stalled: start the next beside it.
# Local answers take 1-2 ms; this is small enough to measure a change to within it.
OVERLAP_SECONDS = 0.02
# A portal page takes milliseconds; sign-in hashes a password (~0.1 s). Generous for slow CI.
PAGE_TIMEOUT_SECONDS = 10.0
READ_LIMIT = 4096  # bodies we look at are a few hundred bytes
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


# -- the fake internet --------------------------------------------------------------------------
class _DualStackHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _peer(address: str) -> str:
    """``::ffff:198.51.100.1`` (an IPv4 peer on a dual-stack socket) as ``198.51.100.1``."""
    return address.removeprefix("::ffff:")


class _InternetHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {
                "server": INTERNET_MARKER,
                "peer": _peer(self.client_address[0]),
                "host": self.headers.get("Host", ""),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"http {self.client_address[0]} {format % args}\n")


def _dual_stack_socket(kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return sock


def _echo(conn: socket.socket) -> None:
    with conn:
        conn.sendall(b"!")
        while data := conn.recv(READ_LIMIT):
            conn.sendall(data)


def _serve_tls_port(sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _serve_dns(sock: socket.socket) -> None:
    while True:
        data, peer = sock.recvfrom(READ_LIMIT)
        if len(data) >= 4:  # the query back with the QR (response) bit set: "an answer"
            sock.sendto(data[:2] + bytes([data[2] | 0x80, data[3]]) + data[4:], peer)


def _exit_with_parent() -> None:
    """The harness holds our stdin: EOF means it is gone, so the servers go too."""
    sys.stdin.read()
    os._exit(0)


def run_internet() -> None:
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    http_server = _DualStackHTTPServer(("::", 80), _InternetHandler)
    tls = _dual_stack_socket(socket.SOCK_STREAM)
    tls.bind(("::", 443))
    tls.listen(64)
    dns = _dual_stack_socket(socket.SOCK_DGRAM)
    dns.bind(("::", 53))
    threading.Thread(target=_serve_tls_port, args=(tls,), daemon=True).start()
    threading.Thread(target=_serve_dns, args=(dns,), daemon=True).start()
    print("ready", flush=True)
    http_server.serve_forever()


# -- probes ---------------------------------------------------------------------------------------
def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def op_tcp(host: str, port: int, timeout: float, greeting: bool = False) -> dict[str, Any]:
    """Open a TCP connection: connected, refused (RST), timeout (dropped) or unreachable."""
    start = time.monotonic()
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            result: dict[str, Any] = {"result": "connected"}
            if greeting:
                result["greeting"] = sock.recv(1).decode(errors="replace")
        except ConnectionRefusedError:
            result = {"result": "refused"}
        except TimeoutError:
            result = {"result": "timeout"}
        except OSError as exc:
            result = {"result": "unreachable", "error": str(exc)}
    result["seconds"] = time.monotonic() - start
    return result


def op_http(url: str, timeout: float) -> dict[str, Any]:
    """One GET, no redirects followed: status, Location, and who answered (``server``)."""
    parts = urllib.parse.urlsplit(url)
    start = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read(READ_LIMIT).decode(errors="replace")
        result: dict[str, Any] = {
            "result": "answered",
            "status": response.status,
            "location": response.getheader("Location"),
            "server": "other",
            "body": body[:300],
        }
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("server") == INTERNET_MARKER:
            result.update(server=INTERNET_MARKER, peer=parsed.get("peer"))
    except ConnectionRefusedError:
        result = {"result": "refused"}
    except TimeoutError:
        result = {"result": "timeout"}
    except OSError as exc:
        result = {"result": "error", "error": str(exc)}
    finally:
        conn.close()
    result["seconds"] = time.monotonic() - start
    return result


def op_dns(host: str, port: int, timeout: float) -> dict[str, Any]:
    """One UDP query: answered, or none within ``timeout``."""
    start = time.monotonic()
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(DNS_QUERY, (host, port))
            data = sock.recv(READ_LIMIT)
            result = "answered" if data[:2] == DNS_QUERY_ID else "garbled"
        except TimeoutError:
            result = "none"
        except ConnectionRefusedError:
            result = "refused"  # ICMP port unreachable: something answered, just not DNS
    return {"result": result, "seconds": time.monotonic() - start}


PROBES = {"tcp": op_tcp, "http": op_http, "dns": op_dns}


def _matches(result: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(result.get(key) == value for key, value in want.items())


def op_wait(probe: dict[str, Any], want: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Repeat a probe until its answer has every ``want`` field, or ``timeout`` passes.

    Attempts overlap: when one has not finished after ``OVERLAP_SECONDS``, the next starts
    anyway. A connection caught half-way through a firewall change (its SYN let through, its next
    segment dropped) stalls until its own timeout, and waiting for it would time TCP's retransmits,
    not the box; the stalled attempt is left to time out on its own.

    ``at`` and ``done`` are when the matching attempt started and ended: a fresh connection got
    the wanted treatment somewhere in between. Latencies are measured to ``done`` (the cautious
    end); ``at`` bounds them from below.
    """
    args = {key: value for key, value in probe.items() if key != "kind"}
    finished: queue.Queue[tuple[float, float, dict[str, Any]]] = queue.Queue()

    def attempt() -> None:
        started = time.monotonic()
        result = PROBES[probe["kind"]](**args)
        finished.put((started, time.monotonic(), result))

    deadline = time.monotonic() + timeout
    attempts = running = 0
    launched = 0.0
    last: dict[str, Any] = {}
    while True:
        now = time.monotonic()
        if now < deadline and (running == 0 or now - launched >= OVERLAP_SECONDS):
            threading.Thread(target=attempt, daemon=True).start()
            launched, attempts, running = now, attempts + 1, running + 1
        elif now >= deadline and running == 0:
            return {"matched": False, "attempts": attempts, "last": last}
        try:
            started, done, last = finished.get(timeout=POLL_PAUSE_SECONDS)
        except queue.Empty:
            continue
        running -= 1
        if _matches(last, want):
            found = {"matched": True, "at": started, "done": done, "attempts": attempts}
            return {**found, "last": last}
        time.sleep(POLL_PAUSE_SECONDS)


# -- the phone's browser --------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx back to the caller: the test wants to see each step of the flow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Phone:
    """Cookie jar + the portal's forms, as a phone's captive sheet would submit them."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.held: dict[int, socket.socket] = {}
        self.posted_at = 0.0
        self._reset_opener()

    def _reset_opener(self) -> None:
        self.jar.clear()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never a proxy from the environment
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoRedirect(),
        )

    def request(
        self, url: str, form: dict[str, str] | None = None, timeout: float = PAGE_TIMEOUT_SECONDS
    ) -> tuple[int, str | None, str]:
        """(status, Location, body) for a GET, or a POST when ``form`` is given."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(url, data=data, timeout=timeout) as response:
                return response.status, response.headers.get("Location"), response.read().decode()
        except urllib.error.HTTPError as exc:  # 3xx (redirects are not followed) and errors
            with exc:
                return exc.code, exc.headers.get("Location"), exc.read().decode(errors="replace")

    def csrf(self, url: str) -> str:
        status, location, body = self.request(url)
        match = CSRF_RE.search(body)
        if status != 200 or match is None:
            raise RuntimeError(f"GET {url}: {status} {location or ''}, no csrf_token in the page")
        return match.group(1) or match.group(2)

    def step(self, url: str, form: dict[str, str], expect: tuple[str, ...]) -> str:
        """POST a form (with a fresh CSRF token) and insist on a redirect to one of ``expect``."""
        form = {"csrf_token": self.csrf(url), **form}
        self.posted_at = time.monotonic()
        status, location, body = self.request(url, form)
        path = urllib.parse.urlsplit(location or "").path
        if status not in (302, 303) or path not in expect:
            snippet = re.sub(r"\s+", " ", body)[:400]
            raise RuntimeError(f"POST {url}: {status} to {location!r}, wanted {expect}: {snippet}")
        return path

    def op_online(
        self,
        portal: str,
        identifier: str,
        password: str,
        name: str = "",
        signup: bool = False,
        probes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Sign up (or in), accept the WiFi terms if asked, and land on "You're online".

        ``authorized_at`` is when the response that authorized this phone arrived (the redirect
        to /online), ``submitted_at`` when that form was sent. Each of ``probes`` (arguments of
        ``op_wait``) is then polled at once, before the /online page is fetched, so its ``done``
        measures the gatekeeper, not us.
        """
        if signup:
            form = {"identifier": identifier, "display_name": name, "password": password}
            path = self.step(f"{portal}/signup", form, ("/consents",))
        else:
            form = {"identifier": identifier, "password": password, "remember": "y"}
            path = self.step(f"{portal}/signin", form, ("/consents", "/online"))
        if path == "/consents":
            path = self.step(f"{portal}/consents", {"wifi_terms": "y"}, ("/online",))
        authorized_at = time.monotonic()
        waited = [op_wait(**probe) for probe in probes or []]
        status, _, body = self.request(f"{portal}{path}")
        return {
            "submitted_at": self.posted_at,  # the tap on the button that got it online
            "authorized_at": authorized_at,
            "online_page": status == 200 and "You're online" in body.replace("&#39;", "'"),
            "probes": waited,
        }

    def op_signout(self, portal: str) -> dict[str, Any]:
        """The "Sign out" button of the online page: its form's CSRF token, then POST."""
        token = self.csrf(f"{portal}/online")
        status, location, _ = self.request(f"{portal}/signout", {"csrf_token": token})
        return {"status": status, "location": location, "at": time.monotonic()}

    def op_hold(self, host: str, port: int, timeout: float) -> dict[str, Any]:
        """Open a connection to the echo port and keep it, for ``echo`` later."""
        sock = socket.create_connection((host, port), timeout=timeout)
        greeting = sock.recv(1)
        self.held[sock.fileno()] = sock
        return {"id": sock.fileno(), "greeting": greeting.decode()}

    def op_echo(self, id: int, timeout: float) -> dict[str, Any]:
        """Send a byte on a held connection: echoed, reset, or nothing within ``timeout``."""
        sock = self.held[id]
        sock.settimeout(timeout)
        try:
            sock.sendall(b"?")
            result = "echoed" if sock.recv(1) == b"?" else "closed"
        except TimeoutError:
            result = "timeout"
        except ConnectionResetError:
            result = "reset"
        except OSError as exc:
            result = f"error: {exc}"
        return {"result": result}

    def op_reset(self) -> dict[str, Any]:
        """Forget cookies and held connections: the next test starts as a fresh phone."""
        for sock in self.held.values():
            sock.close()
        self.held.clear()
        self._reset_opener()
        return {}


def dispatch(phone: Phone, command: dict[str, Any]) -> dict[str, Any]:
    name = command.pop("op")
    if name == "wait":
        handler: Any = op_wait
    elif name in PROBES:
        handler = PROBES[name]
    else:
        handler = getattr(phone, f"op_{name}")
    answer: dict[str, Any] = {"at": time.monotonic()}
    answer.update(handler(**command))
    return answer


def serve() -> None:
    """One JSON command per line in, one JSON answer per line out, until stdin closes."""
    phone = Phone()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = {"ok": True, **dispatch(phone, json.loads(line))}
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "internet":
        run_internet()
    elif mode == "serve":
        serve()
    elif mode:
        args = json.loads(argv[2]) if len(argv) > 2 else {}
        print(json.dumps(dispatch(Phone(), {"op": mode, **args}), indent=2))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
