"""Pictures members upload (avatars, photos on boards) and the catalogue's product photos.

An upload is never stored as sent: Pillow decodes it (refusing anything that is not a PNG, JPEG,
GIF or WebP picture, or that decodes to more pixels than a phone photo has), drops its metadata
(a phone's JPEG carries the GPS position where it was taken), shrinks it to the size the pages
show, and writes a fresh JPEG or PNG. The file is named by a random token, so it cannot collide,
cannot lead out of the uploads directory, and a private board's photo cannot be guessed.
"""

from __future__ import annotations

import io
import secrets
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# What a phone sends: a 12-megapixel JPEG is 3-6 MB. More than this is refused before decoding.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# Decoding more pixels than a 50-megapixel camera's is refused (a small file can claim a huge
# picture and take the box's memory: a "decompression bomb").
MAX_PIXELS = 50_000_000
# The formats accepted as uploads; anything else (SVG, TIFF, PDF) is refused.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})
# Longest side of what is stored: avatars are shown at most 160 px (320 at 2x), photos 1280.
AVATAR_SIDE = 320
PHOTO_SIDE = 1280
# Good enough for photos on a phone screen, about a tenth of the camera's file.
JPEG_QUALITY = 82


class ImageRefused(ValueError):
    """The upload is not a picture this store keeps; the message says what to do instead."""


def reencode(data: bytes, max_side: int) -> tuple[bytes, str]:
    """The upload decoded, turned upright, shrunk to ``max_side`` and encoded again.

    Returns the bytes and the file extension ("jpg", or "png" for pictures with transparency).
    """
    if not data:
        raise ImageRefused("The file is empty. Choose a photo.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRefused("The photo is larger than 8 MB. Choose a smaller one.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ACCEPTED_FORMATS:
                    raise ImageRefused("Upload a PNG, JPEG, GIF or WebP picture.")
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageRefused("The picture has too many pixels. Choose a smaller one.")
                image.load()
                picture = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("The picture has too many pixels. Choose a smaller one.") from None
    except UnidentifiedImageError:
        raise ImageRefused("That file is not a picture. Upload a PNG, JPEG, GIF or WebP.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageRefused):
            raise
        raise ImageRefused("The picture is damaged. Try another one.") from None
    picture.thumbnail((max_side, max_side))
    transparent = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    out = io.BytesIO()
    if transparent:
        picture.convert("RGBA").save(out, "PNG", optimize=True)
        return out.getvalue(), "png"
    picture.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue(), "jpg"


def store_upload(uploads_dir: Path, folder: str, data: bytes, max_side: int) -> str:
    """Re-encode ``data`` and write it under ``uploads_dir/folder``; returns the relative path.

    The relative path is what tables keep (``member_profiles.avatar_path``,
    ``board_items.photo_path``): export zips it and erasure removes it.
    """
    encoded, extension = reencode(data, max_side)
    directory = uploads_dir / folder
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(16)}.{extension}"
    (directory / name).write_bytes(encoded)
    return f"{folder}/{name}"


def remove_upload(uploads_dir: Path, relative: str | None) -> None:
    """Delete a stored upload (a replaced avatar, a removed photo), if it is one of ours."""
    if not relative:
        return
    root = uploads_dir.resolve()
    path = (root / relative).resolve()
    if path.is_relative_to(root) and path.is_file():
        path.unlink()
