"""The console's floor plan page: picture upload and scale, zones, sensors, roles and the audit."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from instore import audit
from presence.floorplan import PlanImage, get_plan_image, store_plan_image
from presence.floorplan_image import MAX_IMAGE_BYTES
from presence.zones import create_sensor, create_zone, list_sensors, list_zones
from tests.conftest import PASSWORD, ConsoleActions
from tests.manage_plan_helpers import (
    PAGE,
    SQUARE,
    last_change,
    manager_fixture,  # noqa: F401 - a fixture
    refused,
    text,
)
from tests.plan_images import JPEG_1X1, jpeg_header, png, svg

IMAGE = "/manage/plan-image"


def upload(client: FlaskClient, data: bytes, filename: str = "plan.bin") -> Any:
    return client.post(
        f"{PAGE}/picture",
        data={"picture": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


@pytest.fixture
def picture(manager: ConsoleActions, client: FlaskClient, db: sqlite_utils.Database) -> PlanImage:
    """A 600 x 400 px plan the manager uploaded, at the default scale."""
    upload(client, png(600, 400))
    image = get_plan_image(db)
    assert image is not None
    return image


def audit_actions(db: sqlite_utils.Database) -> list[str]:
    return [entry.action for entry in reversed(audit.entries(db))]


# -- who may do what ---------------------------------------------------------------------------


def test_someone_not_signed_in_is_sent_to_the_console_sign_in(client: FlaskClient) -> None:
    for url in (PAGE, IMAGE):
        response = client.get(url)
        assert response.status_code == 302
        assert "/manage/signin" in response.headers["Location"]


@pytest.mark.parametrize("role", ["staff", "shopper"])
def test_staff_and_shoppers_may_not_edit_the_plan(
    console: ConsoleActions, client: FlaskClient, db: sqlite_utils.Database, role: str
) -> None:
    zone = create_zone(db, "Shoes", [(0, 0), (4, 0), (4, 4)])
    create_sensor(db, "wifi-1", "wifi", 1, 1)
    if role == "shopper":
        from instore import members

        members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
        client.post("/manage/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
        client.post("/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
    else:
        console.signin(role)
    assert client.get(PAGE).status_code == 403
    for url, form in (
        (f"{PAGE}/zones", {"name": "Hats", "points": SQUARE, "colour": "#112233"}),
        (f"{PAGE}/zones/{zone.id}", {"name": "Hats", "points": SQUARE, "colour": "#112233"}),
        (f"{PAGE}/zones/{zone.id}/delete", {}),
        (f"{PAGE}/sensors", {"sensor_id": "x", "kind": "ble", "x": "1", "y": "1"}),
        (f"{PAGE}/sensors/wifi-1/delete", {}),
        (f"{PAGE}/scale", {"metres_per_px": "0.05"}),
    ):
        assert client.post(url, data=form).status_code == 403, url
    assert upload(client, png(10, 10)).status_code == 403
    assert [z.name for z in list_zones(db)] == ["Shoes"] and len(list_sensors(db)) == 1
    assert get_plan_image(db) is None


def test_staff_see_the_picture_but_shoppers_do_not(
    console: ConsoleActions, client: FlaskClient, db: sqlite_utils.Database
) -> None:
    store_plan_image(db, png(20, 10))
    console.signin("staff")
    response = client.get(IMAGE)
    assert response.status_code == 200 and response.data == png(20, 10)
    client.post("/manage/signout")
    from instore import members

    members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    client.post("/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
    assert client.get(IMAGE).status_code == 403


# -- the page ----------------------------------------------------------------------------------


def test_the_page_draws_the_plan_with_the_editor_controls(
    manager: ConsoleActions, client: FlaskClient, db: sqlite_utils.Database
) -> None:
    from presence.floorplan_demo import seed_demo_floorplan

    seed_demo_floorplan(db)
    response = client.get(PAGE)
    assert response.status_code == 200
    page = text(response)
    assert re.search(r'<svg class="plan" id="plan" viewBox="0 0 24 16"', page)
    image = get_plan_image(db)
    assert image is not None
    assert f'href="/manage/plan-image?v={image.sha256[:16]}"' in page
    assert 'width="24" height="16"' in page
    assert page.count('<polygon class="zone"') == 6
    assert 'data-zone-name="Shoes" points="8,0 16,0 16,8 8,8"' in page
    assert '<text class="zone-label" data-zone-id="2" x="12" y="3.68">Shoes</text>' in page
    assert page.count('<circle class="sensor" data-sensor-id="sim-') == 6
    for element_id in (
        "new-zone",
        "zone-name",
        "zone-colour",
        "zone-points",
        "save-zone",
        "sensor-id",
        "sensor-kind",
        "sensor-x",
        "sensor-y",
        "save-sensor",
        "plan-file",
        "upload-plan",
        "draw-scale",
        "scale-length",
    ):
        assert f'id="{element_id}"' in page, element_id
    # The CSP allows no inline script or style: nothing on the page relies on them.
    assert "style=" not in page and not re.search(r"\son\w+=", page)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_an_empty_store_shows_an_empty_plan(manager: ConsoleActions, client: FlaskClient) -> None:
    page = text(client.get(PAGE))
    assert 'viewBox="0 0 30 20"' in page and "<image" not in page
    assert 'id="draw-scale"' not in page  # no picture, nothing to scale


# -- uploading the picture ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (png(600, 400), "image/png", (600, 400)),
        (JPEG_1X1, "image/jpeg", (1, 1)),
        (jpeg_header(800, 600), "image/jpeg", (800, 600)),
        (svg("960", "640"), "image/svg+xml", (960, 640)),
    ],
)
def test_a_manager_uploads_a_png_jpeg_or_svg(
    manager: ConsoleActions,
    client: FlaskClient,
    db: sqlite_utils.Database,
    data: bytes,
    mime: str,
    size: tuple[int, int],
) -> None:
    response = upload(client, data, "whatever-the-name.txt")
    assert response.status_code == 302
    image = get_plan_image(db)
    assert image is not None
    assert (image.mime, image.width_px, image.height_px) == (mime, *size)
    served = client.get(IMAGE)
    assert served.data == data and served.mimetype == mime
    entry = audit.entries(db)[0]
    assert (entry.action, entry.target, entry.before) == ("plan.picture", "floorplan", None)
    assert entry.after is not None and entry.after["width_px"] == size[0]
    assert "image" not in entry.after  # the bytes stay out of the log


def test_the_picture_is_served_with_caching_and_a_locked_down_svg_csp(
    manager: ConsoleActions, client: FlaskClient, db: sqlite_utils.Database
) -> None:
    upload(client, svg())
    image = get_plan_image(db)
    assert image is not None
    response = client.get(f"{IMAGE}?v={image.sha256[:16]}")
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, max-age=86400"
    assert client.get(IMAGE).headers["Cache-Control"] == "private, max-age=60"
    again = client.get(IMAGE, headers={"If-None-Match": f'"{image.sha256}"'})
    assert again.status_code == 304 and again.data == b""
    upload(client, png(4, 4))
    png_response = client.get(IMAGE)
    assert "script-src 'self'" in png_response.headers["Content-Security-Policy"]


def test_no_picture_is_a_404(manager: ConsoleActions, client: FlaskClient) -> None:
    assert client.get(IMAGE).status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"just some text, not a picture", "not a PNG, JPEG or SVG"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "not a PNG, JPEG or SVG"),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5">&lol;</svg>',
            "DOCTYPE",
        ),
        (png(2, 2) + b"\0" * MAX_IMAGE_BYTES, "larger than 5 MB"),
        (png(20_000, 10), "largest allowed side"),
    ],
)
def test_bad_pictures_are_refused_and_the_stored_one_kept(
    manager: ConsoleActions,
    client: FlaskClient,
    db: sqlite_utils.Database,
    data: bytes,
    message: str,
) -> None:
    upload(client, png(100, 50))
    before = get_plan_image(db)
    refused(upload(client, data, "plan.png"), "picture", message)
    assert get_plan_image(db) == before
    assert audit_actions(db) == ["plan.picture"]


def test_no_file_chosen_is_a_400(manager: ConsoleActions, client: FlaskClient) -> None:
    response = client.post(f"{PAGE}/picture", data={}, content_type="multipart/form-data")
    refused(response, "picture", "Choose a floor plan picture")


def test_a_body_far_past_the_limit_gets_the_page_with_the_limit(
    manager: ConsoleActions, client: FlaskClient, db: sqlite_utils.Database
) -> None:
    response = upload(client, b"\0" * (MAX_IMAGE_BYTES * 2))
    assert response.status_code == 413
    assert "larger than 5 MB" in text(response)
    assert get_plan_image(db) is None


def test_the_upload_passes_the_real_csrf_check_above_the_16_kb_form_limit(
    app: Flask, db: sqlite_utils.Database
) -> None:
    """With CSRF on (the app's 16 KB limit would refuse the form before the token is read)."""
    ConsoleActions(app.test_client(), db).create("manager")
    client = app.test_client()
    token_re = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
    signin = text(client.get("/manage/signin"))
    token = token_re.search(signin)
    assert token is not None
    client.post(
        "/manage/signin",
        data={"identifier": "manager@example.com", "password": PASSWORD, "csrf_token": token[1]},
    )
    page_token = token_re.search(text(client.get(PAGE)))
    assert page_token is not None
    big = png(300, 300, noise=True)
    assert len(big) > 200_000
    response = client.post(
        f"{PAGE}/picture",
        data={"picture": (io.BytesIO(big), "plan.png"), "csrf_token": page_token[1]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)[:500]
    image = get_plan_image(db)
    assert image is not None and image.width_px == 300
    # Other forms keep the app's 16 KB limit.
    huge = client.post(
        f"{PAGE}/zones", data={"csrf_token": page_token[1], "points": "1, 1; " * 4000}
    )
    assert huge.status_code == 413


# -- the scale ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "metres_per_px"),
    [
        ({"x1": "0", "y1": "0", "x2": "300", "y2": "400", "length_m": "25"}, 0.05),
        ({"x1": "10", "y1": "5", "x2": "10", "y2": "205", "length_m": "4,0"}, 0.02),
        ({"metres_per_px": "0.025"}, 0.025),
        ({"width_m": "12"}, 0.02),
    ],
)
def test_the_scale_is_set_from_a_line_or_typed(
    picture: PlanImage,
    client: FlaskClient,
    db: sqlite_utils.Database,
    form: dict[str, str],
    metres_per_px: float,
) -> None:
    response = client.post(f"{PAGE}/scale", data=form)
    assert response.status_code == 302
    image = get_plan_image(db)
    assert image is not None and image.metres_per_px == pytest.approx(metres_per_px, rel=1e-12)
    _, after = last_change(db, "plan.scale", "floorplan")
    assert after["metres_per_px"] == pytest.approx(metres_per_px)
    assert after["width_m"] == pytest.approx(600 * metres_per_px, abs=1e-3)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"x1": "0", "y1": "0", "x2": "100", "y2": "0", "length_m": "0"}, "more than 0"),
        ({"x1": "5", "y1": "5", "x2": "5", "y2": "5", "length_m": "3"}, "same point"),
        ({"x1": "0", "y1": "0", "x2": "1", "y2": "0", "length_m": "5000"}, "outside"),
        ({"x1": "0", "y1": "0", "x2": "100", "y2": "0", "length_m": "ten"}, "must be a number"),
        ({"length_m": "5"}, "Draw the line"),
        ({"metres_per_px": "abc"}, "must be a number"),
        ({"metres_per_px": "-1"}, "positive"),
        ({"width_m": "0"}, "more than 0"),
        ({}, "Draw a line of known length"),
    ],
)
def test_bad_scales_are_refused(
    picture: PlanImage,
    client: FlaskClient,
    db: sqlite_utils.Database,
    form: dict[str, str],
    message: str,
) -> None:
    refused(client.post(f"{PAGE}/scale", data=form), "scale", message)
    assert get_plan_image(db) == picture


def test_a_scale_without_a_picture_is_refused(manager: ConsoleActions, client: FlaskClient) -> None:
    response = client.post(f"{PAGE}/scale", data={"metres_per_px": "0.05"})
    refused(response, "scale", "Upload a floor plan picture")
