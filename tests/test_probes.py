"""Every OS connectivity check, before and after sign-in, against the exact expected answer.

The expectations are written out here, independently of ``instore/probes.py``, so a typo in the
table fails a test instead of silently breaking one kind of phone.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from instore.probes import PROBES
from tests.conftest import AuthActions

APPLE = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>\n"
FIREFOX_CANONICAL = (
    b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)
NM_TEXT = b"NetworkManager is online\n"

# (url, status, body, extra header that must be present)
ONLINE_ANSWERS: list[tuple[str, int, bytes, tuple[str, str] | None]] = [
    ("http://captive.apple.com/hotspot-detect.html", 200, APPLE, None),
    ("http://captive.apple.com/", 200, APPLE, None),
    ("http://captive.apple.com/library/test/success.html", 200, APPLE, None),
    ("http://www.apple.com/library/test/success.html", 200, APPLE, None),
    ("http://connectivitycheck.gstatic.com/generate_204", 204, b"", None),
    ("http://www.gstatic.com/generate_204", 204, b"", None),
    ("http://clients3.google.com/generate_204", 204, b"", None),
    ("http://clients1.google.com/generate_204", 204, b"", None),
    ("http://connectivitycheck.android.com/generate_204", 204, b"", None),
    ("http://www.google.com/gen_204", 204, b"", None),
    ("http://www.msftconnecttest.com/connecttest.txt", 200, b"Microsoft Connect Test", None),
    ("http://www.msftncsi.com/ncsi.txt", 200, b"Microsoft NCSI", None),
    ("http://detectportal.firefox.com/success.txt", 200, b"success\n", None),
    ("http://detectportal.firefox.com/canonical.html", 200, FIREFOX_CANONICAL, None),
    (
        "http://connectivity-check.ubuntu.com/",
        204,
        b"",
        ("X-NetworkManager-Status", "online"),
    ),
    (
        "http://nmcheck.gnome.org/check_network_status.txt",
        200,
        NM_TEXT,
        ("X-NetworkManager-Status", "online"),
    ),
    ("http://ping.archlinux.org/nm-check.txt", 200, NM_TEXT, ("X-NetworkManager-Status", "online")),
    (
        "http://fedoraproject.org/static/hotspot.txt",
        200,
        b"OK\n",
        ("X-NetworkManager-Status", "online"),
    ),
]
URLS = [case[0] for case in ONLINE_ANSWERS]


def get(client: FlaskClient, url: str):  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    return client.get(
        parts.path + (f"?{parts.query}" if parts.query else ""), headers={"Host": parts.netloc}
    )


def test_every_probe_in_the_table_is_tested() -> None:
    tested = {(urlsplit(url).hostname, urlsplit(url).path) for url in URLS}
    assert tested == set(PROBES)


@pytest.mark.parametrize("url", URLS)
def test_probe_redirects_before_sign_in(client: FlaskClient, url: str) -> None:
    response = get(client, url)
    assert response.status_code == 302
    assert response.headers["Location"] == "http://127.0.0.1:8080/signin"
    assert b'href="http://127.0.0.1:8080/signin"' in response.data
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize(("url", "status", "body", "header"), ONLINE_ANSWERS)
def test_probe_answers_online_after_sign_in(
    client: FlaskClient,
    auth: AuthActions,
    url: str,
    status: int,
    body: bytes,
    header: tuple[str, str] | None,
) -> None:
    auth.go_online()
    response = get(client, url)
    assert response.status_code == status
    assert response.data == body
    assert "no-store" in response.headers["Cache-Control"]
    if header:
        assert response.headers[header[0]] == header[1]


@pytest.mark.parametrize("url", ["http://captive.apple.com/hotspot-detect.html", URLS[4]])
def test_probe_redirects_again_after_sign_out(
    client: FlaskClient, auth: AuthActions, url: str
) -> None:
    auth.go_online()
    assert get(client, url).status_code in {200, 204}
    auth.logout()
    assert get(client, url).status_code == 302


def test_any_other_request_lands_on_sign_in_with_continue(client: FlaskClient) -> None:
    response = client.get("/news/today?id=3", headers={"Host": "example.com"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/signin"
    assert parse_qs(location.query)["continue"] == ["http://example.com/news/today?id=3"]


def test_post_to_other_host_lands_on_sign_in_without_continue(client: FlaskClient) -> None:
    response = client.post("/login", headers={"Host": "bank.example"}, data={"a": "b"})
    assert response.status_code == 302
    assert response.headers["Location"] == "http://127.0.0.1:8080/signin"


def test_online_client_intercepted_elsewhere_goes_to_online_page(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.go_online()
    response = client.get("/", headers={"Host": "example.com"})
    assert response.headers["Location"] == "http://127.0.0.1:8080/online"


def test_host_with_port_and_trailing_dot(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    response = client.get("/generate_204", headers={"Host": "connectivitycheck.gstatic.com.:80"})
    assert response.status_code == 204


def test_portal_host_is_served_by_flask(client: FlaskClient) -> None:
    response = client.get("/signin", headers={"Host": "127.0.0.1:8080"})
    assert response.status_code == 200
    assert b"<form" in response.data
