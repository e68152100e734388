"""The analytics page: access by role, the date range's errors, charts, tables and CSV exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore import clock
from portal.manage import analytics_data
from presence.zones import create_zone
from tests.conftest import AuthActions, ConsoleActions
from tests.test_reports import decided, saved_offer

NOW = datetime(2024, 6, 12, 12, 0, tzinfo=UTC)
URL = "/manage/analytics/"


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The page's "today" is 2024-06-12 (UTC, the default store time zone)."""
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)
    monkeypatch.setattr(analytics_data, "utcnow", lambda: NOW)
    monkeypatch.setattr("portal.manage.analytics.utcnow", lambda: NOW)
    analytics_data.clear_lift_cache()
    yield
    analytics_data.clear_lift_cache()


def _zone_visit(db: sqlite_utils.Database, zone_id: int, enter: str, leave: str) -> None:
    for kind, ts in (("zone_enter", enter), ("zone_exit", leave)):
        payload = {"device": "h:1", "member_id": None, "zone": "z", "zone_id": zone_id, "ts": ts}
        db.conn.execute(
            "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)",
            (ts, kind, json.dumps(payload)),
        )


def test_not_signed_in_goes_to_the_console_sign_in(client: FlaskClient) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and "/manage/signin" in response.headers["Location"]


@pytest.mark.parametrize("role", ["staff"])
def test_staff_get_403(client: FlaskClient, console: ConsoleActions, role: str) -> None:
    console.signin(role)
    assert client.get(URL).status_code == 403
    assert client.get(URL + "export/funnel.csv").status_code == 403


def test_shoppers_get_403(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    auth.login()
    assert client.get(URL).status_code == 403


def test_manager_sees_every_chart_for_the_last_week(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("manager")
    db.conn.execute(
        "INSERT INTO footfall (hour, devices, addresses, randomized_addresses)"
        " VALUES ('2024-06-11T10:00:00Z', 42, 61, 0)"
    )
    response = client.get(URL)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for slug in analytics_data.FIGURES:
        assert f'id="{slug}"' in html
        assert f"export/{slug}.csv?from=2024-06-06&amp;to=2024-06-12" in html
    assert html.count('<svg class="chart"') == len(analytics_data.FIGURES)
    assert 'value="2024-06-06"' in html and 'value="2024-06-12"' in html
    assert '<td class="num">42</td>' in html  # footfall per day's table
    # Nothing the CSP would block: no inline script, style attribute or handler.
    assert "<script" not in html and " style=" not in html and not re.search(r"\son\w+=", html)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=yesterday", "is not a date"),
        ("from=2024-06-10&to=2024-06-01", "ends before it starts"),
        ("from=2024-01-01&to=2024-06-01", "pick at most 92 days"),
        ("to=2024-06-13", "ends in the future"),
        ("from=1999-12-31&to=2000-01-01", "Pick a day in 2000 or later"),
    ],
)
def test_bad_ranges_are_400_with_a_sentence(
    client: FlaskClient, console: ConsoleActions, query: str, message: str
) -> None:
    console.signin("manager")
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'aria-invalid="true"' in html and "<svg" not in html
    export = client.get(f"{URL}export/friends.csv?{query}")
    assert export.status_code == 400 and message in export.get_data(as_text=True)


def test_a_quarter_is_allowed(client: FlaskClient, console: ConsoleActions) -> None:
    console.signin("manager")
    assert client.get(f"{URL}?from=2024-03-13&to=2024-06-12").status_code == 200  # 92 days


def test_csv_export_has_the_tables_rows(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("manager")
    shoes = create_zone(db, "Shoes", [(0, 0), (8, 0), (8, 8)]).id
    create_zone(db, "=HYPERLINK(1)", [(8, 0), (16, 0), (16, 8)])
    _zone_visit(db, shoes, "2024-06-10T10:00:00Z", "2024-06-10T10:05:00Z")
    response = client.get(f"{URL}export/dwell.csv?from=2024-06-10&to=2024-06-11")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="dwell_2024-06-10_2024-06-11.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [
        ["Zone", "<1 min", "1–3 min", "3–10 min", "10–30 min", "30+ min", "Visits"],
        ["'=HYPERLINK(1)", "0", "0", "0", "0", "0", "0"],  # a formula is made text
        ["Shoes", "0", "0", "1", "0", "0", "1"],
    ]


def test_unknown_export_is_404(client: FlaskClient, console: ConsoleActions) -> None:
    console.signin("manager")
    assert client.get(f"{URL}export/passwords.csv").status_code == 404


def test_zone_names_are_escaped_in_charts_and_tables(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("manager")
    zone = create_zone(db, "<script>alert(1)</script>", [(0, 0), (8, 0), (8, 8)]).id
    _zone_visit(db, zone, "2024-06-10T10:00:00Z", "2024-06-10T10:00:20Z")
    html = client.get(URL).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    dwell = html[html.index('id="dwell"') :]
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; · &lt;1 min: 1</title>" in dwell


def test_funnel_shows_holdout_lift_with_its_note(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    manager = console.signin("manager")
    offer = saved_offer(db, "Shoes deal", name="Shoes", holdout_percent=10)
    shopper = console.create("shopper", "ana@example.com")
    for member, outcome in ((manager.id, "sent"), (shopper.id, "holdout")):
        decided(db, "2024-06-11T10:00:00Z", member, offer, outcome)
    html = client.get(URL).get_data(as_text=True)
    funnel = html[html.index('id="funnel"') : html.index('id="friends"')]
    assert "Shoes deal" in funnel and "Holdout lift" in funnel
    assert "too few members to tell" in funnel


def test_bar_chart_geometry() -> None:
    from portal.manage.charts import MAX_X_LABELS, bar_chart, nice_step

    assert [nice_step(top) for top in (0, 7, 40, 130, 999)] == [1.0, 2.0, 10.0, 50.0, 500.0]
    stacked = bar_chart(["a", "b"], [("new", [3, 0]), ("back", [1, 4])], stacked=True)
    a_new, b_new, a_back, b_back = (
        stacked.bars[0],
        stacked.bars[2],
        stacked.bars[1],
        stacked.bars[3],
    )
    assert a_new.x == a_back.x and a_back.y + a_back.height == a_new.y  # on top of each other
    assert abs((a_new.height + a_back.height) - b_back.height) < 0.01  # 3 + 1 == 4
    assert b_new.height == 0 and a_new.title == "a · new: 3"
    grouped = bar_chart(["a"], [("x", [1]), ("y", [2])])
    assert grouped.bars[1].x > grouped.bars[0].x and grouped.bars[1].height > grouped.bars[0].height
    days = bar_chart([str(n) for n in range(90)], [("d", [1] * 90)])
    assert len(days.x_labels) <= MAX_X_LABELS and len(days.bars) == 90
