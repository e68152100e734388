"""The page a shopper wanted before the portal intercepted them.

It arrives in a query string anyone can write, so it is only ever shown as a link, and only when
it is an absolute http or https URL with a host and no credentials. ``javascript:``, ``data:``,
relative paths and anything odd are dropped, so the portal is never an open redirect.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_LENGTH = 2048


def safe_continue(raw: str | None) -> str | None:
    """``raw`` if it is safe to offer as a link, else None."""
    if not raw or len(raw) > MAX_LENGTH:
        return None
    text = raw.strip()
    if any(ord(ch) < 0x21 for ch in text):  # control characters and spaces smuggle schemes
        return None
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname or not port_ok:
        return None
    if parts.username or parts.password:
        return None
    return text


def continue_host(url: str | None) -> str | None:
    """The host to show in "Continue to …"."""
    return urlsplit(url).hostname if url else None
