"""VAPID keys: made once, kept private, reused, and never replaced by a racing writer."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from offers.channels import webpush
from offers.channels.webpush import WebPushError, b64url_decode, ensure_vapid_keys
from tests.webpush_helpers import public_point


def test_vapid_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = ensure_vapid_keys(tmp_path)
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    assert first.path == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = ensure_vapid_keys(tmp_path)
    assert second.application_server_key == first.application_server_key
    assert [p.name for p in tmp_path.iterdir()] == [webpush.VAPID_KEY_FILE]


def test_application_server_key_is_the_uncompressed_point_in_url_safe_base64(
    tmp_path: Path,
) -> None:
    keys = ensure_vapid_keys(tmp_path)
    text = keys.application_server_key
    assert len(text) == 87 and not set(text) & set("=+/")
    point = b64url_decode(text)
    assert len(point) == 65 and point[0] == 4
    assert point == public_point(keys.vapid.private_key)


def test_a_key_file_others_can_read_is_restricted(tmp_path: Path) -> None:
    before = ensure_vapid_keys(tmp_path).application_server_key
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    key_file.chmod(0o644)
    assert ensure_vapid_keys(tmp_path).application_server_key == before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_second_writer_never_replaces_the_first_key(tmp_path: Path) -> None:
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    webpush._write_new_key(key_file)
    original = key_file.read_bytes()
    webpush._write_new_key(key_file)  # as if another worker raced past the exists() check
    assert key_file.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == [webpush.VAPID_KEY_FILE]


def test_an_unreadable_key_file_is_reported(tmp_path: Path) -> None:
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    key_file.chmod(0o600)
    with pytest.raises(WebPushError, match="readable VAPID private key"):
        ensure_vapid_keys(tmp_path)
