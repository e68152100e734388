"""Which WiFi terms are in force: the newest an admin published, else the built-in ones.

Every shopper's consent row names the terms version they accepted; when an admin publishes a new
version, ``has_accepted_terms`` is false for everyone until they accept it at their next sign-in.
With nothing published, ``[portal] terms_version`` from the config names the built-in text.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from instore import audit
from instore.clock import now_iso
from instore.db import transaction

MAX_VERSION_LENGTH = 40  # "2026-12" or "v7 (winter opening hours)" — a label, not a text
MAX_BODY_LENGTH = 20_000  # a few pages; longer terms are not read on a phone by anyone


class InvalidTerms(ValueError):
    """Terms an admin cannot publish as they are; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Terms:
    """The terms in force; ``body`` None means the built-in text of ``version``."""

    version: str
    body: str | None
    published_at: str | None = None
    published_by: str | None = None

    def paragraphs(self) -> list[str]:
        """The body split on blank lines, for rendering as escaped paragraphs."""
        return [part.strip() for part in (self.body or "").split("\n\n") if part.strip()]


def current_terms(db: sqlite_utils.Database, default_version: str) -> Terms:
    row = db.conn.execute(
        "SELECT version, body, published_at, published_by FROM wifi_terms ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return Terms(*row) if row else Terms(default_version, None)


def current_version(db: sqlite_utils.Database, default_version: str) -> str:
    return current_terms(db, default_version).version


def publish(
    db: sqlite_utils.Database,
    version: str,
    body: str,
    *,
    default_version: str,
    actor_id: int | None,
    actor_name: str,
) -> Terms:
    """Put new terms in force (audited); every shopper accepts them again at next sign-in."""
    version, body = version.strip(), body.strip().replace("\r\n", "\n")
    if not version:
        raise InvalidTerms("give the new terms a version, like 2026-12")
    if len(version) > MAX_VERSION_LENGTH:
        raise InvalidTerms(f"keep the version under {MAX_VERSION_LENGTH} characters")
    if not body:
        raise InvalidTerms("write the text of the terms")
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidTerms(f"the terms are too long; keep them under {MAX_BODY_LENGTH} characters")
    with transaction(db):
        before = current_terms(db, default_version)
        used = db.conn.execute(
            "SELECT 1 FROM wifi_terms WHERE version = ? UNION SELECT 1 FROM consents"
            " WHERE kind = 'wifi_terms' AND terms_version = ? LIMIT 1",
            (version, version),
        ).fetchone()
        if used or version == before.version:
            raise InvalidTerms(
                f"version {version!r} was used before; choose a new one so shoppers are asked again"
            )
        published_at = now_iso()
        db.conn.execute(
            "INSERT INTO wifi_terms (version, body, published_at, published_by)"
            " VALUES (?, ?, ?, ?)",
            (version, body, published_at, actor_name),
        )
        audit.record(
            db,
            actor_id,
            actor_name,
            "terms.publish",
            f"terms:{version}",
            {"version": before.version, "body": before.body},
            {"version": version, "body": body},
        )
    return Terms(version, body, published_at, actor_name)
