"""What an online backup costs a busy box: ``instore.backup.backup_database`` on a database of
``--mb`` megabytes while a writer commits as fast as it can, against baselines from the same run.

Figures:
- the backup's duration and MB/s, against copying the file's bytes and fsyncing them (the floor
  any backup pays, but a copy that can tear while the services write);
- the writer's commits per second and its slowest commit: alone, during that raw copy, and during
  the backup. An online backup is only "online" if writers barely notice it; flushing a few
  hundred MB to disk stalls a commit or two whichever way the copy is made, so the raw copy is
  the fair comparison;
- the copy's consistency (events counted = the counter written with them) and integrity check;
- a restore of the copy (services stopped), for the time a restore takes.

    .venv/bin/python bench/backup_online.py --mb 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from benchlib import tests_importable

tests_importable()

from instore.backup import backup_database, restore_database  # noqa: E402
from instore.db import open_database  # noqa: E402
from instore.health import latest_versions  # noqa: E402

BLOB_BYTES = 4096  # one filler row: about one SQLite page
WRITER_WINDOW_SECONDS = 3.0  # how long the writer runs alone for its baseline
BUSY_TIMEOUT_MS = 5000
# One event and the counter that must equal the events written, per transaction, with the
# services' pragmas; reports its commits per second and slowest commit between "go" and "stop".
WRITER = """
import sqlite3, sys, time, json
from pathlib import Path
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("PRAGMA synchronous = NORMAL")  # as instore.db.connect sets it for every service
go, stop, out = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
n, slowest, started = 0, 0.0, None
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
started = time.perf_counter()
while not stop.exists():
    began = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events (ts, kind, payload) VALUES ('t', 'tick', '{}')")
    conn.execute(
        "INSERT INTO cursors (consumer, last_id, updated_at) VALUES ('ticks', 1, 't')"
        " ON CONFLICT(consumer) DO UPDATE SET last_id = last_id + 1"
    )
    conn.execute("COMMIT")
    slowest = max(slowest, time.perf_counter() - began)
    n += 1
out.write_text(json.dumps({"commits": n, "seconds": time.perf_counter() - started,
                           "slowest_ms": slowest * 1000}))
"""


def build(database: Path, megabytes: int) -> None:
    db = open_database(database)
    rows = megabytes * 1024 * 1024 // BLOB_BYTES
    with closing(db.conn):
        db.conn.execute("BEGIN")
        db.conn.executemany(
            "INSERT INTO events (ts, kind, payload) VALUES ('t', 'filler', ?)",
            ((os.urandom(BLOB_BYTES // 2).hex(),) for _ in range(rows)),
        )
        db.conn.execute("COMMIT")
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def writer(database: Path, work: Path, name: str) -> tuple[subprocess.Popen[str], Path, Path, Path]:
    go, stop, out = work / f"{name}.go", work / f"{name}.stop", work / f"{name}.json"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(database), str(go), str(stop), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process, go, stop, out


def finish(process: subprocess.Popen[str], stop: Path, out: Path) -> dict[str, float]:
    import json

    stop.touch()
    process.wait(timeout=60)
    result: dict[str, float] = json.loads(out.read_text())
    return result


def copy_and_sync(source: Path, dest: Path) -> None:
    """The raw baseline: copy the bytes and flush them to disk, as a backup must."""
    shutil.copyfile(source, dest)
    with open(dest, "rb") as handle:
        os.fsync(handle.fileno())


def consistent(copy: Path) -> tuple[bool, str]:
    with closing(sqlite3.connect(copy)) as conn:
        events = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'tick'").fetchone()[0]
        row = conn.execute("SELECT last_id FROM cursors WHERE consumer = 'ticks'").fetchone()
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return events == (row[0] if row else 0), verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="database size (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="instore-backup-bench-") as tmp:
        work = Path(tmp)
        database = work / "instore.db"
        began = time.perf_counter()
        build(database, args.mb)
        size_mb = database.stat().st_size / 1024 / 1024
        print(f"database: {size_mb:.0f} MB, built in {time.perf_counter() - began:.1f} s")

        process, go, stop, out = writer(database, work, "alone")
        go.touch()
        time.sleep(WRITER_WINDOW_SECONDS)
        alone = finish(process, stop, out)

        process, go, stop, out = writer(database, work, "cp")
        go.touch()
        time.sleep(0.2)
        began = time.perf_counter()
        copy_and_sync(database, work / "cp.db")
        cp_seconds = time.perf_counter() - began
        during_cp = finish(process, stop, out)
        (work / "cp.db").unlink()

        process, go, stop, out = writer(database, work, "during")
        go.touch()
        time.sleep(0.2)  # the writer is committing before the copy starts
        result = backup_database(database, work / "copy.db", BUSY_TIMEOUT_MS)
        during = finish(process, stop, out)
        ok, verdict = consistent(work / "copy.db")

        began = time.perf_counter()
        restore_database(work / "copy.db", database, latest_versions(), BUSY_TIMEOUT_MS)
        restore_seconds = time.perf_counter() - began

    def writer_line(label: str, figures: dict[str, float]) -> str:
        rate = figures["commits"] / figures["seconds"]
        base = alone["commits"] / alone["seconds"]
        return (
            f"writer {label:<21} {rate:8.0f} commits/s ({rate / base:.2f}x alone), "
            f"slowest commit {figures['slowest_ms']:.0f} ms"
        )

    print(
        f"cp + fsync of the file (baseline; tears while written): {cp_seconds:.2f} s "
        f"({size_mb / cp_seconds:.0f} MB/s)"
    )
    print(
        f"instore backup while writing (consistent, checked):     {result.seconds:.2f} s "
        f"({size_mb / result.seconds:.0f} MB/s, {result.seconds / cp_seconds:.1f}x cp)"
    )
    print(writer_line("alone", alone))
    print(writer_line("during cp + fsync", during_cp))
    print(writer_line("during instore backup", during))
    print(f"copy: integrity {verdict}, events = counter: {ok}")
    print(f"restore of the copy (services stopped): {restore_seconds:.2f} s")
    return 0 if ok and verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
