"""Tiny real pictures for the floor plan tests, built here rather than shipped as files."""

from __future__ import annotations

import base64
import struct
import zlib

# The well-known smallest JPEG: 1 x 1 pixel, progressive (an SOF2 frame marker), 134 bytes.
JPEG_1X1 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////"
    "////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQAB"
    "PxA="
)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, *, noise: bool = False) -> bytes:
    """A valid RGB PNG of ``width`` x ``height``; ``noise`` makes it incompressible (big)."""
    if noise:
        import random

        rng = random.Random(7)  # noqa: S311 - filler pixels, not a secret
        rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))
    else:
        rows = (b"\0" + b"\xf0\xf0\xf0" * width) * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int, sof: int = 0xC0) -> bytes:
    """The segments of a baseline JPEG up to its frame header, with fill bytes before SOF."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    frame = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + b"\xff\xff" + bytes([0xFF, sof]) + frame + b"\xff\xd9"


def svg(
    width: str | None = "800", height: str | None = "600", view_box: str | None = None
) -> bytes:
    attrs = ['xmlns="http://www.w3.org/2000/svg"']
    for name, value in (("width", width), ("height", height), ("viewBox", view_box)):
        if value is not None:
            attrs.append(f'{name}="{value}"')
    return f'<svg {" ".join(attrs)}><rect width="10" height="10" fill="#ccc"/></svg>'.encode()
