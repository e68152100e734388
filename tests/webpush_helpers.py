"""Shared pieces of the Web Push tests: the RFC 8291 worked example, a browser's side of a
subscription (its key, auth secret and the JSON the page sends us), a push service that
listens on 127.0.0.1, and an HTTP seam for the few tests that must not reach any server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import http_ece
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from requests.adapters import BaseAdapter

from offers.channels.webpush import PushSession, b64url_decode, b64url_encode

# RFC 8291 §5 and Appendix A: the worked example, all values base64url as the RFC prints them.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_AUTH_SECRET = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
# Appendix A intermediate values.
RFC_ECDH_SECRET = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
RFC_PRK_KEY = "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k"
RFC_KEY_INFO = (
    "V2ViUHVzaDogaW5mbwAEJXGyvs3942BVGq8e0PTNNmwRzr5VX4m8t7GGpTM5FzFo7OLr4BhZe9MEebhuPI-OztV3"
    "ylkYfpJGmQ22ggCLDgT-M_SrDepxkU21WCP3O1SUj0EwbZIHMtu5pZpTKGSCIA5Zent7wmC6HCJ5mFgJkuk5cwAv"
    "MBKiiujwa7t45ewP"
)
RFC_IKM = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"
RFC_PRK = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"
RFC_CEK = "oIhVW04MRdy2XN9CiKLxTg"
RFC_NONCE = "4h_95klXJ5E_qnoN"
RFC_HEADER = (  # salt || rs = 4096 || idlen = 65 || the application server's public key
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW"
    "AmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_CIPHERTEXT = "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"
RFC_BODY = (  # §5, the three lines joined
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)
RFC_KEYS = {"p256dh": RFC_UA_PUBLIC, "auth": RFC_AUTH_SECRET}

CONTACT = "mailto:manager@shop.example"
FCM_ENDPOINT = "https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"

OFFER = {"kind": "offer", "title": "Trainers −20 %", "body": "Today in Shoes", "code": "K7QX"}

Subscriber = tuple[ec.EllipticCurvePrivateKey, bytes]


def private_key_from_raw(raw_b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(raw_b64), "big"), ec.SECP256R1())


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def new_subscriber() -> Subscriber:
    """A browser's side of a subscription: its P-256 key and auth secret."""
    return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)


def keys_of(subscriber: tuple[ec.EllipticCurvePrivateKey, bytes]) -> dict[str, str]:
    key, auth = subscriber
    return {"p256dh": b64url_encode(public_point(key)), "auth": b64url_encode(auth)}


def decrypt_as(subscriber: tuple[ec.EllipticCurvePrivateKey, bytes], body: bytes) -> bytes:
    key, auth = subscriber
    plaintext: bytes = http_ece.decrypt(
        body, private_key=key, auth_secret=auth, version="aes128gcm"
    )
    return plaintext


def subscription_for(endpoint: str, subscriber: Any) -> dict[str, Any]:
    """What ``PushSubscription.toJSON()`` gives the page."""
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys_of(subscriber)}


def split_authorization(header: str) -> tuple[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    return fields["t"], fields["k"]


class FakePushService(ThreadingHTTPServer):
    """Answers like a push service, by path, and keeps every request it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PushHandler)
        self.received: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class PushHandler(BaseHTTPRequestHandler):
    server: FakePushService
    answers: ClassVar[dict[str, tuple[int, dict[str, str]]]] = {
        "/push/ok": (201, {"Location": "/m/1"}),
        "/push/gone": (410, {}),
        "/push/busy": (429, {"Retry-After": "7"}),
        "/push/moved": (307, {"Location": "/push/ok"}),
        "/push/fail": (500, {}),
        "/push/forbidden": (403, {}),
    }

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "headers": self.headers, "body": body})
        status, headers = self.answers[self.path.partition("?")[0]]  # the query tells phones apart
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``received`` instead."""


@contextmanager
def running_push_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePushService]:
    """A FakePushService in a thread for the duration of the block."""
    # A proxy in the developer's environment must not intercept requests to loopback.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = FakePushService()
    # A short poll: shutdown() waits for the loop to notice, 0.5 s per test by default.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class CannedAdapter(BaseAdapter):
    """requests' transport, replaced: keeps each request and answers ``status`` (or raises)."""

    def __init__(self, status: int = 201, error: Exception | None = None) -> None:
        super().__init__()
        self.status = status
        self.error = error
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        response.url = request.url or ""
        response.request = request
        response._content = b""
        return response

    def close(self) -> None:
        """Nothing to release."""


def canned_session(adapter: CannedAdapter) -> PushSession:
    """The channel's own session class with the canned transport for every URL."""
    session = PushSession()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
