"""The shopper's live feed: new offers and friend notes stream to the store page as they happen.

``GET /feed`` is a Server-Sent Events stream of the member's rows in the notifications table,
which the offers worker (another process) writes. Nothing but the database carries a
notification here, so any gunicorn worker can serve any phone. One watcher thread per process
(``portal.watch``) notices every commit and, only then, asks which members got something new; it
wakes the waiting streams through a condition, and only those members' streams query their rows.
A stream ends after ``STREAM_SECONDS`` so it does not keep a gthread thread for ever: the browser's
EventSource reconnects by itself and resumes with ``Last-Event-ID``.

The store page also uses this blueprint to record that a shopper opened a notification and to
draw the QR code of an offer's redemption code.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from decimal import Decimal

import segno
import sqlite_utils
from flask import Blueprint, Response, abort, current_app, request
from flask_babel import format_currency, format_datetime
from flask_babel import gettext as _

from instore.clock import from_iso, utcnow
from offers.notifications import (
    Notification,
    mark_opened,
    member_notification_by_code,
    notifications_after,
)
from portal.clients import current_session
from portal.database import get_db, thread_db
from portal.pages import shopping_member
from portal.watch import Watcher, at_capacity, subscribed

log = logging.getLogger(__name__)

bp = Blueprint("feed", __name__)

# Proxies, NAT boxes and phone radios drop a connection that is silent for 30-60 s; a comment
# line this often keeps it open and lets a write error reveal a phone that went away.
HEARTBEAT_SECONDS = 15.0
# A stream holds one of a gthread worker's few threads; ending it now and then lets a thread go
# back to the pool and the EventSource reconnect (with Last-Event-ID) costs one small request.
STREAM_SECONDS = 300.0
# Threads of each gunicorn worker that never hold a stream, kept for the OS probes and pages:
# every phone's connectivity check must be answered even when many store pages are open.
RESERVED_THREADS = 4
# With every other thread streaming, a page gets what it missed at once and asks again this much
# later: it polls instead of streaming until a thread is free, and nothing is lost.
BUSY_RETRY_MILLISECONDS = 20_000
# What EventSource waits before reconnecting after a stream ends: long enough not to hammer the
# portal when it restarts, short enough that nothing is missed for long.
RETRY_MILLISECONDS = 2000
# A phone that closes the page is noticed at the next write or at this check of its socket,
# whichever comes first, so its thread is free again within about a second.
DISCONNECT_CHECK_SECONDS = 1.0
# The quiet zone around a QR symbol, in modules: ISO/IEC 18004 asks for 4, and scanners at a
# till misread codes printed closer to other marks.
QR_BORDER = 4
# Codes are shown for a while on a phone; the same code always draws the same picture.
QR_CACHE_SECONDS = 3600
# The largest event id a phone may resume from (SQLite rowids are 64-bit; this is plenty).
MAX_EVENT_ID_DIGITS = 18

MONOTONIC = time.monotonic  # the one seam tests patch to move a stream's clock


class NotificationWatcher(Watcher):
    """Wakes the feed's streams when the offers worker commits notifications, per member."""

    kind = "feed-watcher"

    def __init__(self, db_path: str, busy_timeout_ms: int) -> None:
        super().__init__(db_path, busy_timeout_ms)
        # Newest notification id committed for each member since this watcher started.
        self._latest: dict[int, int] = {}
        self._high_water = 0

    def take_baseline(self, db: sqlite_utils.Database) -> None:
        """Only notifications after the newest one now are news: the backlogs hold the rest."""
        row = db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM notifications").fetchone()
        self._high_water = int(row[0])

    def newest_for(self, member_id: int) -> int:
        """The member's newest notification id this watcher has seen committed (0: none)."""
        with self._changed:
            return self._latest.get(member_id, 0)

    def wait_for_newer(self, member_id: int, after_id: int, timeout: float) -> bool:
        """Block until the member has a notification newer than ``after_id``, or the timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._latest.get(member_id, 0) > after_id, max(0.0, timeout)
            )

    def on_commit(self, db: sqlite_utils.Database) -> None:
        """Wake the streams of members with news (a commit to another table wakes none)."""
        rows = db.conn.execute(
            "SELECT member_id, MAX(id) FROM notifications WHERE id > ? GROUP BY member_id",
            (self._high_water,),
        ).fetchall()
        if not rows:
            return
        with self._changed:
            for member_id, newest in rows:
                self._latest[member_id] = max(self._latest.get(member_id, 0), newest)
                self._high_water = max(self._high_water, newest)
            self._changed.notify_all()


def format_event(notification: Notification) -> str:
    """One SSE message: the id a phone resumes from, the event name and the JSON on one line."""
    data = json.dumps(notification.to_json(), separators=(",", ":"), ensure_ascii=False)
    return f"id: {notification.id}\nevent: notification\ndata: {data}\n\n"


def client_gone(sock: socket.socket | None) -> bool:
    """True when the phone closed its end of the connection (read side at EOF or reset).

    A stream only learns of a closed page when a write fails, which can take two heartbeats;
    peeking at the socket frees the thread sooner. Unknown sockets (TLS, none) count as open, and
    so does one with bytes the phone sent and nobody read (EventSource sends none): the next
    failed write ends those.
    """
    if sock is None or isinstance(sock, ssl.SSLSocket) or sock.fileno() < 0:
        return False
    try:
        # Non-blocking peek, not select(): a busy worker's descriptors pass select's limit of 1024.
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # nothing to read: still connected
    except OSError:
        return True  # reset by the phone


def stream_notifications(
    db_path: str,
    busy_timeout_ms: int,
    member_id: int,
    after_id: int,
    sock: socket.socket | None = None,
    max_streams: int | None = None,
) -> Iterator[str]:
    """The SSE body: the backlog after ``after_id``, then each new notification as it commits.

    Runs outside the request context (gunicorn iterates it after the view returned), so it gets
    everything it needs as arguments and its own thread's connection. When this process already
    serves ``max_streams`` streams (the console's count too: each holds a thread of the same
    pool), the page gets its backlog and a long ``retry`` instead.
    """
    started = MONOTONIC()
    ends = started + STREAM_SECONDS
    next_heartbeat = started + HEARTBEAT_SECONDS
    db = thread_db(db_path, busy_timeout_ms)
    if at_capacity(max_streams):
        yield f"retry: {BUSY_RETRY_MILLISECONDS}\n\n"
        for notification in notifications_after(db, member_id, after_id):
            yield format_event(notification)
        return
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    with subscribed(NotificationWatcher, db_path, busy_timeout_ms) as watcher:
        last_id, news = after_id, True
        while True:
            if news:
                # Read before the query: the query then sees at least every row seen so far, so
                # a row deleted meanwhile (an erasure) cannot keep waking this stream.
                seen = watcher.newest_for(member_id)
                for notification in notifications_after(db, member_id, last_id):
                    yield format_event(notification)
                    last_id = notification.id
                last_id = max(last_id, seen)
            now = MONOTONIC()
            if now >= ends:
                return
            if now >= next_heartbeat:
                yield ": hb\n\n"
                next_heartbeat = now + HEARTBEAT_SECONDS
            wait = min(ends, next_heartbeat, now + DISCONNECT_CHECK_SECONDS) - now
            news = watcher.wait_for_newer(member_id, last_id, wait)
            if not news and client_gone(sock):
                return


def _resume_after() -> int:
    """Where a stream starts: EventSource's ``Last-Event-ID`` on a reconnect, else ``?after=``
    (the newest id the page rendered), else 0 (the latest few)."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    raw = raw.strip()
    if not raw.isdecimal() or not raw.isascii() or len(raw) > MAX_EVENT_ID_DIGITS:
        abort(400)
    return int(raw)


def _not_signed_in() -> Response:
    return Response(
        _("Sign in to the store WiFi or to your account to see your offers."),
        401,
        mimetype="text/plain",
    )


@bp.route("/feed")
def stream() -> Response:
    """The member's notifications as Server-Sent Events, resuming after the last one seen."""
    member = shopping_member(current_session())
    if member is None:
        return _not_signed_in()
    after_id = _resume_after()
    cfg = current_app.config["INSTORE"]
    environ = request.environ
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    body = stream_notifications(
        str(cfg.database_path),
        cfg["database"]["busy_timeout_ms"],
        member.id,
        after_id,
        sock,
        max_streams=max(1, cfg["portal"]["threads"] - RESERVED_THREADS),
    )
    return _event_stream_response(body)


def _event_stream_response(body: Iterator[str]) -> Response:
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    # nginx (and proxies that honour it) would otherwise hold events back to fill a buffer.
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.post("/feed/<int:notification_id>/opened")
def opened(notification_id: int) -> Response:
    """Record that the shopper saw or tapped one of their notifications (the first time counts).

    CSRF-protected like every POST: the page's script sends the token in ``X-CSRFToken``.
    """
    member = shopping_member(current_session())
    if member is None:
        return _not_signed_in()
    if not mark_opened(get_db(), notification_id, member.id, utcnow()):
        abort(404)  # someone else's id looks exactly like one that does not exist
    return Response(status=204)


def qr_svg(code: str) -> bytes:
    """The code as a QR symbol in SVG, sized by the page (a viewBox, no width or height).

    ``micro=False``: segno would pick a Micro QR for a code this short, which most phone cameras
    and till scanners do not read. The white background keeps it readable in dark mode.
    """
    buffer = io.BytesIO()
    segno.make(code, error="m", micro=False).save(
        buffer,
        kind="svg",
        border=QR_BORDER,
        dark="#000",
        light="#fff",
        omitsize=True,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
    )
    return buffer.getvalue()


@bp.route("/codes/<code>.svg")
def code_svg(code: str) -> Response:
    """The QR picture of a redemption code, only for the member the code was issued to."""
    member = shopping_member(current_session())
    if member is None or member_notification_by_code(get_db(), member.id, code) is None:
        abort(404)
    response = Response(qr_svg(code), mimetype="image/svg+xml")
    # The code is the member's own: a shared cache must not keep it.
    response.headers["Cache-Control"] = f"private, max-age={QR_CACHE_SECONDS}"
    return response


@bp.app_template_filter("money")
def money(cents: int | None) -> str:
    """Cents in the store's currency, written the shopper's way ("55,50 €", "€55.50")."""
    if cents is None:
        return ""
    currency = current_app.config["INSTORE"]["store"]["currency"]
    return str(format_currency(Decimal(int(cents)) / 100, currency))


@bp.app_template_filter("store_time")
def store_time(stored: str | None) -> str:
    """A stored UTC timestamp in the store's time zone and the shopper's language."""
    if not stored:
        return ""
    return str(format_datetime(from_iso(stored), "short"))
