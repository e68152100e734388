"""Secrets a box generates once and keeps beside its database (mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 48  # far beyond brute force for HMAC and cookie-signing keys


def write_once(path: Path, data: bytes) -> bool:
    """Create ``path`` (mode 0600) holding ``data``, unless it exists; True if this call made it.

    The data goes to a scratch file first and is then hard-linked into place: the file appears
    complete or not at all, and the link fails if another process won the race. Several gunicorn
    workers start together on a fresh box, and one must never read a half-written key (an empty
    cookie key makes every page fail).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(scratch, path)
        except FileExistsError:
            return False
        return True
    finally:
        scratch.unlink(missing_ok=True)


def stored_secret(directory: Path, name: str, configured: str = "") -> str:
    """``configured`` if set, else the key in ``directory/name``, created on first use."""
    if configured:
        return configured
    path = directory / name
    if not path.exists():
        write_once(path, secrets.token_urlsafe(SECRET_BYTES).encode())
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty; delete it and a new key is made on the next start")
    return key
