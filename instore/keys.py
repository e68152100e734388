"""Secrets a box generates once and keeps beside its database (mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 48  # far beyond brute force for HMAC and cookie-signing keys


def stored_secret(directory: Path, name: str, configured: str = "") -> str:
    """``configured`` if set, else the key in ``directory/name``, created on first use."""
    if configured:
        return configured
    path = directory / name
    if path.exists():
        return path.read_text().strip()
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
