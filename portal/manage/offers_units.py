"""A manager's units on the offer form: money as "79.90", durations as "4h", variants as lines.

Each ``parse_*`` raises ``ValueError`` for text that is not of its shape (the form turns that into a
sentence under the field); each ``format_*`` is its reverse, so a stored offer shows back as the
manager would have typed it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _

# Prices up to 9,999,999.99: a shop's product, not a typo of ten more digits.
_MONEY = re.compile(r"(\d{1,7})(?:[.,](\d{1,2}))?", re.ASCII)
WHOLE_NUMBER = re.compile(r"[-+]?\d{1,9}", re.ASCII)
# "90", "90s", "15m", "4h", "7d", "1d 12h": a number alone is seconds.
_DURATION_PART = re.compile(r"(\d{1,9})\s*([dhms]?)", re.ASCII)
_DURATION = re.compile(r"\s*(?:\d{1,9}\s*[dhms]?\s*)+", re.ASCII)
_UNIT_SECONDS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1, "": 1}
# A variant line: name | title | body | weight (the last three may be left out).
VARIANT_SEPARATOR = "|"


def parse_money(text: str) -> int:
    """Cents from "79.90", "79,90" or "79"; ValueError if it is not such an amount."""
    match = _MONEY.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    units, fraction = match.groups()
    return int(units) * 100 + int((fraction or "0").ljust(2, "0"))


def parse_duration(text: str) -> int:
    """Seconds from "90", "90s", "15m", "4h", "7d" or "1d 12h"; ValueError otherwise."""
    if not _DURATION.fullmatch(text):
        raise ValueError(text)
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(seconds: int | None) -> str:
    """The shortest "1d 12h" form of a number of seconds, as the form shows it back."""
    if not seconds:
        return "" if seconds is None else "0"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


def format_money(cents: int | None) -> str:
    """Cents as the form shows them back: 7990 → "79.90"."""
    return "" if cents is None else f"{Decimal(cents) / 100:.2f}"


def parse_whole(text: str) -> int:
    if not WHOLE_NUMBER.fullmatch(text):
        raise ValueError(text)
    return int(text)


def parse_variants(text: str) -> list[dict[str, Any]]:
    """One variant per line, "name | title | body | weight"; ValueError names the bad line."""
    variants = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(VARIANT_SEPARATOR)]
        if len(parts) > 4:
            raise ValueError(
                _(
                    "Line %(n)d has more than 4 parts; write name | title | body | weight "
                    "(no | inside a title or body).",
                    n=number,
                )
            )
        parts += [""] * (4 - len(parts))
        name, title, body, weight = parts
        if not name:
            # Checked here: the engine's "name must not be empty" would read as the offer's name.
            raise ValueError(_("Line %(n)d: a variant needs a name first.", n=number))
        variant: dict[str, Any] = {"name": name}
        if title:
            variant["title"] = title
        if body:
            variant["body"] = body
        if weight:
            if not WHOLE_NUMBER.fullmatch(weight):
                raise ValueError(
                    _("Line %(n)d: the weight %(w)r is not a whole number.", n=number, w=weight)
                )
            variant["weight"] = int(weight)
        variants.append(variant)
    return variants


def format_variants(variants: tuple[Mapping[str, Any], ...]) -> str:
    """Variants back as lines of the variants box."""
    return "\n".join(
        " | ".join(
            [
                str(v["name"]),
                str(v.get("title", "")),
                str(v.get("body", "")),
                str(v.get("weight", 1)),
            ]
        )
        for v in variants
    )
