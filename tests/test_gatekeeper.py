"""The reconcile logic, against the memory gateway: desired sessions in, gateway state out."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from hardware import gatekeeper as gk
from hardware.gatekeeper import Gatekeeper, status
from hardware.gateway import ClientState, MemoryGateway
from instore import clock, sessions
from instore.nudge import NudgeListener, send_nudge

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def authorize(
    db: sqlite_utils.Database, mac: str, ip: str, hours: int = 8
) -> sessions.ClientSession:
    return sessions.authorize_client(
        db, mac=mac, ip=ip, member_id=None, hours=hours, idle_minutes=60
    )


@pytest.fixture
def keeper(db: sqlite_utils.Database) -> Gatekeeper:
    keeper = Gatekeeper(db, MemoryGateway(), "memory", idle_minutes=60)
    keeper.start()
    return keeper


def test_adds_and_removes(db: sqlite_utils.Database, keeper: Gatekeeper) -> None:
    first = keeper.reconcile(full=True)
    assert first.drift_fixed == 1  # a fresh gateway is built once
    authorize(db, MAC1, "10.0.0.2")
    authorize(db, MAC2, "10.0.0.3")
    result = keeper.reconcile()
    assert sorted(result.added) == [(MAC1, "10.0.0.2"), (MAC2, "10.0.0.3")]
    assert keeper.gateway.listing().keys() == {(MAC1, "10.0.0.2"), (MAC2, "10.0.0.3")}
    sessions.revoke_mac(db, MAC1, "test")
    result = keeper.reconcile()
    assert result.removed == [(MAC1, "10.0.0.2")] and not result.added
    assert not keeper.reconcile().changed  # idempotent


def test_mac_alone_on_another_ip_is_a_different_client(
    db: sqlite_utils.Database, keeper: Gatekeeper
) -> None:
    authorize(db, MAC1, "10.0.0.2")
    keeper.reconcile(full=True)
    assert (MAC1, "10.0.0.9") not in keeper.gateway.listing()


def test_expired_and_idle_sessions_are_removed(
    db: sqlite_utils.Database, keeper: Gatekeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = clock.utcnow()
    authorize(db, MAC1, "10.0.0.2", hours=1)
    keeper.reconcile(full=True)
    assert keeper.next_deadline is not None
    assert keeper.next_deadline <= start + timedelta(hours=1)
    monkeypatch.setattr(gk, "utcnow", lambda: start + timedelta(minutes=61))
    result = keeper.reconcile()
    assert result.removed == [(MAC1, "10.0.0.2")]


def test_drift_is_repaired(db: sqlite_utils.Database, keeper: Gatekeeper) -> None:
    authorize(db, MAC1, "10.0.0.2")
    keeper.reconcile(full=True)
    gateway = keeper.gateway
    assert isinstance(gateway, MemoryGateway)
    gateway.flush()  # a reboot, or someone flushing the firewall
    result = keeper.reconcile(full=True)
    assert result.drift_fixed >= 1
    # Rebuilt with the signed-in client already in it: no moment with the phone shut out.
    assert (MAC1, "10.0.0.2") in gateway.listing()
    state = status(db)
    assert state is not None and state["drift_fixed_total"] >= 2
    assert state["authorized"] == 1 and state["last_full_check_at"]


def test_traffic_keeps_an_active_client_from_idling_out(
    db: sqlite_utils.Database, keeper: Gatekeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = authorize(db, MAC1, "10.0.0.2")
    keeper.reconcile(full=True)
    counts = {"bytes": 100}

    def listing() -> dict[tuple[str, str], ClientState]:
        return {
            (MAC1, "10.0.0.2"): ClientState(clock.from_iso(session.expires_at), counts["bytes"])
        }

    monkeypatch.setattr(keeper.gateway, "listing", listing)
    keeper.reconcile(full=True)  # the first look at this counter
    later = clock.utcnow() + timedelta(minutes=45)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    keeper.reconcile(full=True)  # the counter did not move: no activity
    unchanged = sessions.get_session(db, session.id)
    assert unchanged is not None and unchanged.idle_deadline == session.idle_deadline
    counts["bytes"] = 5000
    keeper.reconcile(full=True)
    refreshed = sessions.get_session(db, session.id)
    assert refreshed is not None and refreshed.idle_deadline > session.idle_deadline


def test_loop_follows_a_nudge_quickly(db: sqlite_utils.Database, tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    """The portal's nudge wakes the loop; a new session is applied well within a second."""
    from instore.db import open_database

    keeper = Gatekeeper(open_database(config.database_path), MemoryGateway(), "memory", 60)
    listener = NudgeListener(tmp_path / "gk.sock")
    stop = threading.Event()
    thread = threading.Thread(target=keeper.run, args=(listener, 60.0, stop.is_set), daemon=True)
    thread.start()
    try:
        authorize(db, MAC1, "10.0.0.2")
        assert send_nudge(tmp_path / "gk.sock")
        waited = 0.0
        while (MAC1, "10.0.0.2") not in keeper.gateway.listing() and waited < 2.0:
            stop.wait(0.01)
            waited += 0.01
        assert waited < 1.0
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_nudge_without_listener_is_harmless(tmp_path: Path) -> None:
    assert send_nudge(tmp_path / "nobody.sock") is False


def test_listener_drains_many_nudges(tmp_path: Path) -> None:
    listener = NudgeListener(tmp_path / "gk.sock")
    try:
        for _ in range(20):
            send_nudge(tmp_path / "gk.sock")
        assert listener.wait(0.5) is True
        assert listener.wait(0.05) is False
    finally:
        listener.close()
    assert not (tmp_path / "gk.sock").exists()


def test_quick_pass_reads_only_what_changed(
    db: sqlite_utils.Database, keeper: Gatekeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in costs the same with many phones online: the quick pass follows the outbox."""
    for n in range(50):
        authorize(db, f"02:00:00:00:01:{n:02x}", f"10.0.1.{n}")
    keeper.reconcile(full=True)
    compared: list[int] = []
    real = keeper._converge

    def spy(result, full, keys=None):  # type: ignore[no-untyped-def]
        compared.append(len(keys) if keys is not None else -1)
        return real(result, full, keys)

    monkeypatch.setattr(keeper, "_converge", spy)
    authorize(db, MAC1, "10.0.0.2")
    result = keeper.reconcile()
    assert result.added == [(MAC1, "10.0.0.2")]
    assert compared == [1]
    sessions.revoke_mac(db, MAC1, "signed out")
    assert keeper.reconcile().removed == [(MAC1, "10.0.0.2")]


def test_a_session_edited_by_hand_is_caught_by_the_full_check(
    db: sqlite_utils.Database, keeper: Gatekeeper
) -> None:
    """No event is written when someone edits the table directly; the full check still sees it."""
    session = authorize(db, MAC1, "10.0.0.2")
    keeper.reconcile(full=True)
    db.conn.execute("UPDATE sessions SET revoked_at = expires_at WHERE id = ?", (session.id,))
    assert not keeper.reconcile().changed  # the quick pass only follows the outbox
    assert keeper.reconcile(full=True).removed == [(MAC1, "10.0.0.2")]


def test_changes_during_a_background_full_check_are_kept(
    db: sqlite_utils.Database,
    config,  # type: ignore[no-untyped-def]
) -> None:
    """A sign-in applied while a full check reads the gateway must survive that check."""
    from hardware.gatekeeper import _FullChecker
    from instore.db import connect

    gateway = MemoryGateway()
    keeper = Gatekeeper(
        db, gateway, "memory", 60, open_reader=lambda: connect(config.database_path)
    )
    keeper.start()
    keeper.reconcile(full=True)
    reading = threading.Event()
    release = threading.Event()
    real_listing = gateway.listing

    def slow_listing() -> dict[tuple[str, str], ClientState]:
        snapshot = real_listing()  # what the gateway held when the check read it
        reading.set()
        release.wait(5)
        return snapshot

    gateway.listing = slow_listing  # type: ignore[method-assign]
    checker = _FullChecker(keeper)
    assert checker.start()
    assert reading.wait(5)
    authorize(db, MAC2, "10.0.0.3")  # a sign-in while the check is reading
    keeper.quick()
    assert (MAC2, "10.0.0.3") in real_listing()
    release.set()
    checker.join()
    gateway.listing = real_listing  # type: ignore[method-assign]
    snap = checker.take()
    assert snap is not None and (MAC2, "10.0.0.3") not in snap.listing  # type: ignore[operator]
    result = keeper.apply_snapshot(snap)
    assert result.drift_fixed == 0  # the loop's own change is not drift
    assert (MAC2, "10.0.0.3") in gateway.listing()
    assert (MAC2, "10.0.0.3") in keeper.believed
