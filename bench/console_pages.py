"""Manager console pages: server time per page with 90 days of a 5,000-visits/day store.

Issue 6's figure (goal: every console page p95 < 200 ms). A database seeded by
``bench/console_seed.py`` (made once, or reused with ``--database``) is opened by the real portal
app (``create_app``); a Flask test client signs in as a manager through the console's sign-in
and GETs each console page that is registered, ``--requests`` times after one first request. The
first request is shown apart: it fills what later ones reuse (the settled days of the analytics
reports, the dwell rollup's new events, the holdout lift), the state a page is in right after a
quiet night. The baseline is the bare Flask app of ``bench/bare_app.py`` through the same kind of
test client, so the figures can be read as multiples of what Flask itself costs on this machine.

The test client runs the whole WSGI app in this process without sockets: the figures are server
time (routing, the gate, queries, templates), not network or gunicorn. Prints, asserts nothing:
``.venv/bin/python bench/console_pages.py [--database PATH] [--requests N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bare_app import app as bare_app
from benchlib import goal_verdict, invocation, machine_info, percentile
from console_seed import DAYS, MANAGER_EMAIL, MANAGER_PASSWORD, VISITS_PER_DAY, seed
from flask import Flask, url_for
from flask.testing import FlaskClient

from instore.clock import utcnow
from instore.config import load_config
from portal import create_app
from portal.manage.access import NAV, ROLE_RANK

GOAL_P95_MS = 200.0
REQUESTS = 50


def _time(client: FlaskClient, path: str, count: int) -> tuple[int, float, list[float]]:
    """(status, first request ms, the next ``count`` requests' ms)."""
    began = time.perf_counter()
    status = client.get(path).status_code
    first = (time.perf_counter() - began) * 1000
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        client.get(path)
        samples.append((time.perf_counter() - began) * 1000)
    return status, first, samples


def _pages(app: Flask) -> list[tuple[str, str]]:
    """(label, path) of every console page a manager may open here, analytics twice."""
    today = utcnow().date()
    quarter = f"?from={(today - timedelta(days=DAYS - 1)).isoformat()}&to={today.isoformat()}"
    with app.test_request_context():
        pages = [("console home", url_for("manage.home"))]
        for endpoint, label, role in NAV:
            if endpoint not in app.view_functions or ROLE_RANK[role] > ROLE_RANK["manager"]:
                continue
            path = url_for(endpoint)
            pages.append((label.lower(), path))
            if endpoint == "manage_analytics.page":
                pages[-1] = ("analytics (last 7 days)", path)
                pages.append((f"analytics ({DAYS} days)", path + quarter))
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", type=Path, help="a seeded database to reuse (made if absent)")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed GETs per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="instore-bench-") as tmp:
        path = args.database or Path(tmp) / "instore.db"
        if not path.exists():
            summary = seed(path)
            print(
                f"seeded {summary.days} days x {VISITS_PER_DAY:,} visits: {summary.events:,} "
                f"events, {summary.decisions:,} decisions in {summary.seconds:.0f} s "
                f"(dwell rollup {summary.rollup_seconds:.0f} s)"
            )
        config = load_config(
            environ={"INSTORE_DATABASE_PATH": str(path), "INSTORE_PORTAL_SECRET_KEY": "bench"}
        )
        app = create_app(config, {"WTF_CSRF_ENABLED": False})
        client = app.test_client()
        signed_in = client.post(
            "/manage/signin", data={"identifier": MANAGER_EMAIL, "password": MANAGER_PASSWORD}
        )
        if signed_in.status_code != 302:
            print(f"console_pages.py: sign-in failed ({signed_in.status_code})")
            return 1
        bare = bare_app.test_client()
        _, _, base = _time(bare, "/generate_204", args.requests)
        base_p50 = percentile(base, 0.5)
        print(f"{'page':28} {'status':>6} {'first':>9} {'p50':>8} {'p95':>8} {'p95/bare':>9}")
        print(
            f"{'bare Flask 204':28} {204:>6} {'':>9} {base_p50:>6.2f}ms "
            f"{percentile(base, 0.95):>6.2f}ms {'1x':>9}"
        )
        for label, page in _pages(app):
            status, first, samples = _time(client, page, args.requests)
            p95 = percentile(samples, 0.95)
            print(
                f"{label:28} {status:>6} {first:>7.1f}ms {percentile(samples, 0.5):>6.1f}ms "
                f"{p95:>6.1f}ms {p95 / base_p50:>8.0f}x  {goal_verdict(p95, GOAL_P95_MS)}"
            )
        for line in machine_info(f"database {path.stat().st_size / 1e6:,.0f} MB"):
            print(line)
        print("reproduce: " + invocation())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
