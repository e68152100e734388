"""Database access for the portal: one connection per worker thread, reused across requests.

The flaskr tutorial opens a connection per request; we keep one per thread instead because the
probe endpoints answer every phone in the store every few seconds and the connect + pragmas cost
more than the query. gthread workers have a fixed pool of threads, so the number of connections
is bounded. Connections are in autocommit mode, so nothing is left open between requests.
"""

from __future__ import annotations

import threading

import sqlite_utils
from flask import current_app

from instore.db import connect

_local = threading.local()


def thread_db(path: str, busy_timeout_ms: int) -> sqlite_utils.Database:
    """This thread's connection to ``path``, opened on first use."""
    cache: dict[str, sqlite_utils.Database] = getattr(_local, "dbs", None) or {}
    _local.dbs = cache
    db = cache.get(path)
    if db is None:
        db = cache[path] = connect(path, busy_timeout_ms)
    return db


def get_db() -> sqlite_utils.Database:
    """The connection for the current request's thread."""
    cfg = current_app.config["INSTORE"]
    return thread_db(str(cfg.database_path), cfg["database"]["busy_timeout_ms"])


def close_thread_dbs() -> None:
    """Close this thread's connections (a test suite opens one per test database; a box has one)."""
    cache: dict[str, sqlite_utils.Database] = getattr(_local, "dbs", None) or {}
    for db in cache.values():
        db.conn.close()
    cache.clear()
