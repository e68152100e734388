"""Traffic for any host other than the portal's own: OS probes and everything intercepted.

This runs as WSGI middleware in front of Flask rather than as a blueprint, on purpose: every phone
in the store repeats its connectivity check every few seconds, and a probe must cost one indexed
SQLite lookup, not a trip through sessions, CSRF, rate limits and templates. Requests for the
portal's own host names pass straight through to the Flask app.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from hardware.clients import ClientLookup
from instore import sessions
from instore.clock import to_iso, utcnow
from instore.probes import probe_answer
from portal.database import thread_db

if TYPE_CHECKING:
    from instore.config import Config

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Probes and redirects must never be cached: a cached "online" answer hides the portal.
NO_STORE = ("Cache-Control", "no-cache, no-store, must-revalidate")
MAX_CONTINUE_LENGTH = 2048  # longer URLs are dropped rather than carried through the sign-in
# The health check answers the box itself on any host name; phones on the WiFi are never
# loopback, so this opens nothing to them.
HEALTH_PATH = "/healthz"
LOOPBACK = frozenset({"127.0.0.1", "::1"})


def portal_hostnames(config: Config) -> frozenset[str]:
    """Host names that reach the portal's own pages."""
    names = {name.lower() for name in config["portal"]["hostnames"]}
    for key in ("public_url", "api_url"):
        url = config["portal"][key]
        if url:
            names.add((urlsplit(url).hostname or "").lower())
    return frozenset(name for name in names if name)


def host_of(environ: dict[str, Any]) -> str:
    """The requested host name without port or trailing dot, lower-cased."""
    raw = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").strip().lower()
    if raw.startswith("["):  # IPv6 literal: [::1]:8080
        return raw[1 : raw.find("]")] if "]" in raw else raw
    return raw.rsplit(":", 1)[0].rstrip(".") if raw.count(":") <= 1 else raw


class CaptivePortalMiddleware:
    """Answer probes and redirect strangers; hand the portal's own host to Flask."""

    def __init__(self, app: WSGIApp, config: Config, lookup: ClientLookup) -> None:
        self.app = app
        self.hostnames = portal_hostnames(config)
        self.public_url = config["portal"]["public_url"].rstrip("/")
        self.db_path = str(config.database_path)
        self.busy_timeout_ms = config["database"]["busy_timeout_ms"]
        self.idle_minutes = config["portal"]["idle_minutes"]
        self.lookup = lookup

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        host = host_of(environ)
        if not host or host in self.hostnames:
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO") or "/"
        if path == HEALTH_PATH and environ.get("REMOTE_ADDR") in LOOPBACK:
            # The box's own upgrade and monitors ask by whatever address the portal binds.
            return self.app(environ, start_response)
        probe = probe_answer(host, path)
        if self.is_authorized(environ.get("REMOTE_ADDR") or ""):
            if probe is not None:
                headers = [("Content-Type", probe.content_type), NO_STORE, *probe.headers]
                headers.append(("Content-Length", str(len(probe.body))))
                start_response(f"{probe.status} {_REASONS[probe.status]}", headers)
                return [probe.body]
            # Intercepted although online (stale DNS or an old tab): show the online page.
            return self.redirect(start_response, f"{self.public_url}/online")
        target = f"{self.public_url}/signin"
        if probe is None and environ.get("REQUEST_METHOD") == "GET":
            wanted = self.original_url(environ, host, path)
            if len(wanted) <= MAX_CONTINUE_LENGTH:
                target += "?continue=" + quote(wanted, safe="")
        return self.redirect(start_response, target)

    def is_authorized(self, ip: str) -> bool:
        """True when this IP and the MAC behind it have a live session."""
        if not ip:
            return False
        mac = self.lookup.mac_for(ip)
        if mac is None:
            return False
        db = thread_db(self.db_path, self.busy_timeout_ms)
        now = to_iso(utcnow())
        row = db.conn.execute(sessions.LIVE_SQL, (ip, mac, now, now)).fetchone()
        if row is None:
            return False
        # A probe is activity: keep an active phone's session from idling out.
        sessions.refresh_idle(db, row[0], row[2], self.idle_minutes)
        return True

    @staticmethod
    def original_url(environ: dict[str, Any], host: str, path: str) -> str:
        query = environ.get("QUERY_STRING")
        return f"http://{host}{quote(path)}" + (f"?{query}" if query else "")

    @staticmethod
    def redirect(start_response: StartResponse, location: str) -> list[bytes]:
        """302 with a tiny page that links to the portal, for clients that show the body."""
        escaped = html.escape(location, quote=True)
        body = (
            "<!doctype html><html><head><meta charset=utf-8><title>Sign in to WiFi</title></head>"
            f'<body><p><a href="{escaped}">Sign in to the store WiFi</a></p></body></html>'
        ).encode()
        start_response(
            "302 Found",
            [
                ("Location", location),
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                NO_STORE,
            ],
        )
        return [body]


_REASONS = {200: "OK", 204: "No Content"}
