"""The Spanish catalogue: complete (every entry translated, none fuzzy, same placeholders) and up
to date (every string the code marks for translation is in it, so adding a string without
translating it fails here with the list of what is missing)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

import portal

try:  # Babel >= 2.15
    from babel.messages.frontend import parse_mapping_cfg
except ImportError:  # pragma: no cover - older Babel
    from babel.messages.frontend import parse_mapping as parse_mapping_cfg

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
ES_PO = Path(portal.__file__).parent / "translations" / "es" / "LC_MESSAGES" / "messages.po"
# The Makefile's extract-messages target adds this keyword for flask_babel.lazy_gettext.
EXTRA_KEYWORDS = {"_l": None}

# printf-style conversions as Python's % operator reads them, named or not; "%%" is a literal.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z%]")


def placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in PLACEHOLDER.finditer(text) if m.group(0) != "%%")


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _read_catalogue() -> Catalog:
    with ES_PO.open("rb") as handle:
        return read_po(handle, locale="es")


def test_catalogue_is_complete() -> None:
    catalog = _read_catalogue()
    assert not catalog.fuzzy, f"{ES_PO}: the header is marked fuzzy; pybabel compile skips it"
    problems: list[str] = []
    count = 0
    for message in catalog:
        if not message.id:
            continue  # the header
        count += 1
        ids, strings = _texts(message.id), _texts(message.string)
        label = repr(ids[0])
        if message.fuzzy:
            problems.append(f"fuzzy: {label}")
        if not strings or any(not s.strip() for s in strings):
            problems.append(f"untranslated: {label}")
            continue
        expected = placeholders(ids[0])
        for string in strings:
            if sorted(set(placeholders(string))) != sorted(set(expected)):
                problems.append(f"placeholders differ: {label} -> {string!r}")
            # Jinja's newstyle gettext always applies %, even without arguments, so a stray "%"
            # in a translation breaks the page; so does a placeholder the code does not pass.
            values = {m.group("name"): 1 for m in PLACEHOLDER.finditer(ids[0]) if m.group("name")}
            try:
                ids[0] % values
            except (KeyError, TypeError, ValueError):
                continue  # the source string itself is not a %-template (Python code, no args)
            try:
                string % values
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"does not format ({error}): {label} -> {string!r}")
    assert count > 0, f"{ES_PO} has no messages"
    assert not problems, f"{ES_PO}:\n" + "\n".join(problems)


def extracted_messages() -> Iterator[tuple[str, str | None, str]]:
    """(msgid, context, where) for every string the code marks, as ``make extract-messages``
    finds them: babel.cfg's method map plus the ``_l`` keyword."""
    with BABEL_CFG.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(BABEL_CFG))
    keywords: dict[str, Any] = {**DEFAULT_KEYWORDS, **EXTRA_KEYWORDS}
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            yield msgid, context, f"{filename}:{lineno}"


def test_catalogue_is_up_to_date_with_the_code() -> None:
    catalog = _read_catalogue()
    found = list(extracted_messages())
    assert len(found) > 50, "extraction found almost nothing; is babel.cfg right?"
    missing = sorted(
        {
            f"{where}: {msgid!r}"
            for msgid, context, where in found
            if not catalog.get(msgid, context)
        }
    )
    assert not missing, (
        f"{len(missing)} string(s) marked for translation are not in {ES_PO}. "
        "Run `make extract-messages`, translate them, then `make translations`:\n"
        + "\n".join(missing)
    )
