"""Secrets made on first use: every process that starts at once must read the same, whole key."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from instore.keys import stored_secret, write_once

PROCESSES = 8


def _read_secret(directory: str) -> str:
    return stored_secret(Path(directory), "secret_key")


def test_processes_starting_together_all_get_the_same_whole_key(tmp_path: Path) -> None:
    """The demo's gunicorn workers race to create the cookie key on a fresh box."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        keys = pool.map(_read_secret, [str(tmp_path / "var")] * PROCESSES)
    assert len(set(keys)) == 1 and len(keys[0]) >= 64
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["secret_key"]  # no scratch left


def test_write_once_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert write_once(path, b"first") is True
    assert write_once(path, b"second") is False
    assert path.read_bytes() == b"first"


def test_a_configured_secret_wins_and_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert stored_secret(tmp_path, "secret_key", "from-config") == "from-config"
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(RuntimeError, match="is empty; delete it"):
        stored_secret(tmp_path, "secret_key")
