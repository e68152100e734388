"""What an uploaded floor-plan picture is, read from its bytes: PNG, JPEG or SVG, and its size.

A manager uploads whatever their drawing program exported, named whatever it was named, so the
type comes from the bytes, never from the file name or the browser's guess. The pixel size is read
from the header (PNG's IHDR chunk, JPEG's start-of-frame marker, SVG's width/height or viewBox)
without decoding the picture: the edge box needs no imaging library, and a decompression bomb is
refused on its declared size before anything is drawn. SVG is XML, so it is parsed with defusedxml
and any DOCTYPE or entity is refused (billion laughs, external entities); a script or an event
handler in it is refused too, although the picture is also served under a CSP that blocks them.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

# A plan exported from a drawing program is well under this; a phone photo of a paper plan fits.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Larger sides are a print-resolution scan: the browser would hold hundreds of MB to draw it.
MAX_IMAGE_PX = 10_000

PNG, JPEG, SVG = "image/png", "image/jpeg", "image/svg+xml"
IMAGE_TYPES: tuple[str, ...] = (PNG, JPEG, SVG)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (Huffman table), C8 (reserved) and CC
# (arithmetic coding table) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and RST0..7 (SOI/EOI are handled where they occur).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SVG_NS = "{http://www.w3.org/2000/svg}"
# CSS absolute units in user units (px) at the CSS 96 px per inch.
_SVG_UNITS: dict[str, float] = {
    "": 1.0,
    "px": 1.0,
    "pt": 96 / 72,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 96 / 25.4,
}
_SVG_LENGTH = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*")


class InvalidPlanImage(ValueError):
    """A picture the floor plan cannot use; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the bytes are and how many pixels (SVG: user units) wide and high."""

    mime: str
    width_px: int
    height_px: int


def inspect_image(data: bytes) -> ImageInfo:
    """The picture's type and size; raises ``InvalidPlanImage`` for anything else."""
    if not data:
        raise InvalidPlanImage("The file is empty. Choose the floor plan picture again.")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidPlanImage(
            f"The picture is {len(data) / 1_048_576:.1f} MB; the largest allowed is "
            f"{MAX_IMAGE_BYTES // 1_048_576} MB. Export it smaller or as SVG."
        )
    if data.startswith(_PNG_SIGNATURE):
        info = ImageInfo(PNG, *_png_size(data))
    elif data.startswith(b"\xff\xd8\xff"):
        info = ImageInfo(JPEG, *_jpeg_size(data))
    elif _looks_like_xml(data):
        info = ImageInfo(SVG, *_svg_size(data))
    else:
        raise InvalidPlanImage(
            "That file is not a PNG, JPEG or SVG picture. Export the floor plan in one of those."
        )
    if info.width_px > MAX_IMAGE_PX or info.height_px > MAX_IMAGE_PX:
        raise InvalidPlanImage(
            f"The picture is {info.width_px} x {info.height_px} pixels; the largest allowed side "
            f"is {MAX_IMAGE_PX} pixels. Export it at a lower resolution."
        )
    return info


def _png_size(data: bytes) -> tuple[int, int]:
    # The first chunk must be IHDR: length (4), type (4), then width and height, big-endian.
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise InvalidPlanImage("This PNG file is damaged (no header). Export it again.")
    width, height = struct.unpack(">II", data[16:24])
    return _positive(width, height, "PNG")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the marker segments up to the first start-of-frame."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill bytes may pad between segments
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if length < 7 or position + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return _positive(width, height, "JPEG")
        if length < 2:
            break
        position += 2 + length
    raise InvalidPlanImage("This JPEG file is damaged (no frame size). Export it again.")


def _positive(width: int, height: int, kind: str) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise InvalidPlanImage(f"This {kind} file says it has no pixels. Export it again.")
    return width, height


def _looks_like_xml(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype"))


def _svg_size(data: bytes) -> tuple[int, int]:
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True)
    except DefusedXmlException:
        raise InvalidPlanImage(
            "This SVG has a DOCTYPE or entities, which are not accepted. "
            "Save it as plain SVG (most programs call it 'Plain' or 'Optimized SVG')."
        ) from None
    except ParseError:
        raise InvalidPlanImage("This SVG is not well-formed XML. Export it again.") from None
    if root.tag not in (f"{_SVG_NS}svg", "svg"):
        raise InvalidPlanImage("This XML file is not an SVG picture.")
    for element in root.iter():
        tag = str(element.tag).rsplit("}", 1)[-1].lower()
        handlers = [name for name in element.attrib if name.lower().startswith("on")]
        if tag == "script" or handlers:
            raise InvalidPlanImage(
                "This SVG contains a script. A floor plan must be a drawing only; "
                "export it again without scripts."
            )
    width = _svg_length(root.get("width"))
    height = _svg_length(root.get("height"))
    if width is None or height is None:
        box = _svg_view_box(root.get("viewBox"))
        if box is None:
            raise InvalidPlanImage(
                "This SVG has neither a width and height nor a viewBox, so its size is unknown. "
                "Set its page size in the drawing program and export it again."
            )
        # Only one of width/height given: the other follows the viewBox's proportions.
        if width is not None:
            width, height = width, width * box[1] / box[0]
        elif height is not None:
            width, height = height * box[0] / box[1], height
        else:
            width, height = box
    return max(1, round(width)), max(1, round(height))


def _svg_length(text: str | None) -> float | None:
    """A width or height in user units; None when absent, relative (%, em) or not a length."""
    if text is None:
        return None
    match = _SVG_LENGTH.fullmatch(text)
    if match is None or match.group(2) not in _SVG_UNITS:
        return None
    value = float(match.group(1)) * _SVG_UNITS[match.group(2)]
    return value if math.isfinite(value) and value > 0 else None


def _svg_view_box(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        parts = [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        return None
    if len(parts) != 4 or not all(map(math.isfinite, parts)) or parts[2] <= 0 or parts[3] <= 0:
        return None
    return parts[2], parts[3]
