"""Loading the store's catalogue from a CSV file: the shell command and the console upload.

A store exports its products from the till system or a spreadsheet, so the import is forgiving
where spreadsheets differ (header case, a byte-order mark, semicolons instead of commas, a
decimal comma) and strict where a mistake would be stored: every row is checked first and every
problem is reported with its line number and what to change; only a file without problems is
stored, in one transaction. The SKU is the key, so importing the same file again changes
nothing, and a corrected file can simply be imported again.

Columns: ``sku``, ``name``, ``category`` (required); ``price`` (in the store's currency, e.g.
12.50), ``zone`` (a zone's name on the floor plan), ``description``, ``image`` (optional). An
optional column left out of the file keeps what each product had; a column present but empty
clears it. Images are file names inside a folder given to the shell command; each is re-encoded
like a member's upload. Without that folder (the console) the image column is ignored, with a
warning, and products keep their pictures.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlite_utils

from community import images
from instore.clock import to_iso, utcnow
from instore.db import atomic

# A big store's catalogue has a few thousand lines; more than this is a wrong file (a sales
# export), and checking it would hold the console's request for too long.
MAX_IMPORT_ROWS = 20_000
# 20,000 rows of a few hundred characters each; the console raises its upload limit to this.
MAX_IMPORT_BYTES = 5 * 1024 * 1024
# Longest values kept: what a product card and a board item can show.
MAX_SKU = 64
MAX_NAME = 120
MAX_CATEGORY = 40
MAX_DESCRIPTION = 2000
MAX_IMAGE_NAME = 255
# The largest price accepted, in cents: a typo (a barcode in the price column) is caught.
MAX_PRICE_CENTS = 100_000_000
# How many problems the console lists before "and N more"; the shell prints them all.
PROBLEMS_SHOWN = 200

REQUIRED_COLUMNS: tuple[str, ...] = ("sku", "name", "category")
OPTIONAL_COLUMNS: tuple[str, ...] = ("price", "zone", "description", "image")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Spreadsheets in stores with a decimal comma save CSV with semicolons; some tools use tabs.
DELIMITERS = ",;\t"

_CATEGORY = re.compile(r"[^\W_](?:[\w '&-]*[^\W_])?")
_PRICE = re.compile(r"(\d+)(?:[.,](\d{1,2}))?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file; ``line`` is None for the file as a whole."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class CatalogueRejected(ValueError):
    """The file was not imported; ``problems`` says what to fix, line by line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems[:3]))


@dataclass
class ImportResult:
    """What an import did, for the summary line and the audit log."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    warnings: list[Problem] = field(default_factory=list)
    # Pictures no product shows any more, for the caller to remove once its transaction commits
    # (``import_catalogue`` removes them itself when the transaction was its own).
    stale_pictures: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
        }


@dataclass
class _Row:
    """A checked row: only the columns the file has are in ``values``."""

    line: int
    sku: str
    values: dict[str, Any]
    image_source: Path | None = None  # the picture to import when the image column names one


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogueRejected(
            [Problem(None, "The file is not UTF-8 text. Save it as “CSV UTF-8” and try again.")]
        ) from None
    return text


def _delimiter(header_line: str) -> str:
    """The separator the header uses most: comma, semicolon or tab."""
    return max(DELIMITERS, key=header_line.count)


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of every non-blank record, header included."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    previous_end = 0
    for fields in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if any(value.strip() for value in fields):
            yield start, fields


def _header(line: int, fields: list[str]) -> tuple[list[str], list[Problem], list[Problem]]:
    """The column names in file order, plus problems and warnings about the header."""
    names = [name.strip().lower() for name in fields]
    problems, warnings = [], []
    for name in REQUIRED_COLUMNS:
        if name not in names:
            problems.append(
                Problem(
                    line,
                    f"the header has no “{name}” column. The first line must name the columns: "
                    f"{', '.join(REQUIRED_COLUMNS)} (required) and {', '.join(OPTIONAL_COLUMNS)}.",
                )
            )
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        problems.append(Problem(line, f"the column “{name}” appears twice; keep one."))
    unknown = [name for name in names if name and name not in COLUMNS]
    if unknown:
        warnings.append(Problem(line, f"ignored unknown columns: {', '.join(unknown)}."))
    return names, problems, warnings


def parse_price(text: str) -> int | None:
    """A price as typed ("12.50", "12,5", "12") in cents; None when empty; ValueError if not one."""
    text = text.strip()
    if not text:
        return None
    match = _PRICE.fullmatch(text)
    if not match:
        raise ValueError(text)
    try:
        cents = int(Decimal(f"{match[1]}.{match[2] or '0'}") * 100)
    except InvalidOperation:
        raise ValueError(text) from None
    if cents > MAX_PRICE_CENTS:
        raise ValueError(text)
    return cents


def _text(
    line: int, column: str, value: str, limit: int, problems: list[Problem], required: bool
) -> str:
    value = value.strip()
    if required and not value:
        problems.append(Problem(line, f"the {column} is empty; every product needs one."))
    elif len(value) > limit:
        problems.append(
            Problem(line, f"the {column} is {len(value)} characters; keep it under {limit + 1}.")
        )
    elif _CONTROL.search(value if column != "description" else value.replace("\n", "")):
        problems.append(Problem(line, f"the {column} contains control characters; remove them."))
    return value


def _image_source(line: int, name: str, images_dir: Path, problems: list[Problem]) -> Path | None:
    """The picture file a row names, if it is a file inside ``images_dir``."""
    if len(name) > MAX_IMAGE_NAME or "/" in name or "\\" in name or name in (".", ".."):
        problems.append(
            Problem(line, f"the image “{name[:60]}” must be a file name inside the images folder.")
        )
        return None
    path = images_dir / name
    if not path.is_file():
        problems.append(
            Problem(line, f"the image “{name}” is not in {images_dir}; check the file name.")
        )
        return None
    return path


def _check_row(
    line: int,
    record: dict[str, str],
    zones: dict[str, str],
    images_dir: Path | None,
    problems: list[Problem],
    warnings: list[Problem],
) -> _Row:
    """One data row checked; its problems and warnings appended to the lists given."""
    values: dict[str, Any] = {}
    sku = _text(line, "sku", record["sku"], MAX_SKU, problems, required=True)
    values["name"] = _text(line, "name", record["name"], MAX_NAME, problems, required=True)
    category = " ".join(record["category"].split()).lower()
    category = _text(line, "category", category, MAX_CATEGORY, problems, required=True)
    if category and len(category) <= MAX_CATEGORY and not _CATEGORY.fullmatch(category):
        problems.append(
            Problem(line, f"the category “{category}” may hold only letters, digits and spaces.")
        )
    values["category"] = category
    if "price" in record:
        try:
            values["price_cents"] = parse_price(record["price"])
        except ValueError:
            problems.append(
                Problem(
                    line,
                    f"the price “{record['price'].strip()[:40]}” is not a price; write it like "
                    "12.50 (no currency sign), or leave it empty.",
                )
            )
    if "zone" in record:
        zone = record["zone"].strip()
        if zone and zone.lower() not in zones:
            warnings.append(
                Problem(line, f"there is no zone “{zone}” on the floor plan; stored as written.")
            )
        values["zone"] = zones.get(zone.lower(), zone) or None
    if "description" in record:
        values["description"] = _text(
            line, "description", record["description"], MAX_DESCRIPTION, problems, required=False
        )
    row = _Row(line, sku, values)
    if "image" in record and images_dir is not None:
        name = record["image"].strip()
        if name:
            row.image_source = _image_source(line, name, images_dir, problems)
        else:
            values["image_path"] = None
    return row


def parse_catalogue(
    db: sqlite_utils.Database, data: bytes, images_dir: Path | None
) -> tuple[list[_Row], list[Problem]]:
    """Every row checked; raises ``CatalogueRejected`` listing all problems. Returns warnings."""
    if len(data) > MAX_IMPORT_BYTES:
        raise CatalogueRejected(
            [
                Problem(
                    None,
                    f"The file is larger than {MAX_IMPORT_BYTES // 1_048_576} MB. "
                    "Split it into smaller files.",
                )
            ]
        )
    records = _records(_decode(data))
    first = next(records, None)
    if first is None:
        raise CatalogueRejected([Problem(None, "The file is empty. Export the products as CSV.")])
    names, problems, warnings = _header(*first)
    if problems:
        raise CatalogueRejected(problems)
    if "image" in names and images_dir is None:
        warnings.append(
            Problem(
                first[0],
                "pictures were not imported: import them from the shell with "
                "“instore products import FILE --images FOLDER”.",
            )
        )
    zones = {str(name).lower(): str(name) for (name,) in db.conn.execute("SELECT name FROM zones")}
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for line, fields in records:
        if len(rows) >= MAX_IMPORT_ROWS:
            raise CatalogueRejected(
                [
                    Problem(
                        line,
                        f"the file has more than {MAX_IMPORT_ROWS:,} products. "
                        "Split it into smaller files.",
                    )
                ]
            )
        if len(fields) > len(names):
            problems.append(
                Problem(
                    line,
                    f"the row has {len(fields)} fields but the header names {len(names)}; "
                    "put quotes around values that contain the separator.",
                )
            )
            rows.append(_Row(line, "", {}))
            continue
        fields = fields + [""] * (len(names) - len(fields))
        record = {name: value for name, value in zip(names, fields, strict=True) if name in COLUMNS}
        row = _check_row(line, record, zones, images_dir, problems, warnings)
        if row.sku in seen:
            problems.append(
                Problem(line, f"the sku “{row.sku}” is also on line {seen[row.sku]}; keep one.")
            )
        elif row.sku:
            seen[row.sku] = line
        rows.append(row)
    if not rows:
        problems.append(Problem(None, "The file has a header but no products."))
    if problems:
        raise CatalogueRejected(problems)
    return rows, warnings


def _existing(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    cursor = db.conn.execute(
        """SELECT id, sku, name, category, price_cents, zone, description, image_path, active
           FROM products"""
    )
    columns = [d[0] for d in cursor.description]
    return {row[1]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def _same_picture(uploads_dir: Path, stored: str | None, encoded: bytes) -> bool:
    if not stored:
        return False
    path = uploads_dir / stored
    return path.is_file() and path.read_bytes() == encoded


def _pictures(
    rows: list[_Row], existing: dict[str, dict[str, Any]], uploads_dir: Path, written: list[str]
) -> None:
    """Re-encode each named picture; store the new or changed ones (noted in ``written``).

    A picture that encodes to the bytes the product already shows keeps its file, so importing
    the same folder again stores nothing. Problems are collected, then raised together.
    """
    problems = []
    for row in rows:
        if row.image_source is None:
            continue
        try:
            source = row.image_source.read_bytes()
            encoded, _ = images.reencode(source, images.PHOTO_SIDE)
        except images.ImageRefused as exc:
            problems.append(Problem(row.line, f"the image “{row.image_source.name}”: {exc}"))
            continue
        except OSError as exc:
            problems.append(Problem(row.line, f"cannot read “{row.image_source.name}”: {exc}"))
            continue
        stored = existing.get(row.sku, {}).get("image_path")
        if _same_picture(uploads_dir, stored, encoded):
            row.values["image_path"] = stored
            continue
        path = images.store_upload(uploads_dir, "products", source, images.PHOTO_SIDE)
        written.append(path)
        row.values["image_path"] = path
    if problems:
        raise CatalogueRejected(problems)


def _upsert(
    db: sqlite_utils.Database,
    rows: list[_Row],
    existing: dict[str, dict[str, Any]],
    deactivate_missing: bool,
    stamp: str,
    result: ImportResult,
) -> list[str]:
    """Write the rows; returns the picture paths no product uses any more."""
    replaced: list[str] = []
    for row in rows:
        before = existing.get(row.sku)
        if before is None:
            values = {"description": "", **row.values}
            db.conn.execute(
                """INSERT INTO products (sku, name, category, price_cents, zone, description,
                                         image_path, active, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)""",
                (
                    row.sku,
                    values["name"],
                    values["category"],
                    values.get("price_cents"),
                    values.get("zone"),
                    values["description"],
                    values.get("image_path"),
                    stamp,
                ),
            )
            result.added += 1
            continue
        after = {**before, **row.values, "active": 1}
        if after == before:
            result.unchanged += 1
            continue
        db.conn.execute(
            """UPDATE products SET name = ?, category = ?, price_cents = ?, zone = ?,
                                   description = ?, image_path = ?, active = 1, updated_at = ?
               WHERE id = ?""",
            (
                after["name"],
                after["category"],
                after["price_cents"],
                after["zone"],
                after["description"],
                after["image_path"],
                stamp,
                before["id"],
            ),
        )
        if before["image_path"] and before["image_path"] != after["image_path"]:
            replaced.append(before["image_path"])
        result.updated += 1
    if deactivate_missing:
        listed = {row.sku for row in rows}
        for sku, before in existing.items():
            if before["active"] and sku not in listed:
                db.conn.execute(
                    "UPDATE products SET active = 0, updated_at = ? WHERE id = ?",
                    (stamp, before["id"]),
                )
                result.deactivated += 1
    return replaced


def import_catalogue(
    db: sqlite_utils.Database,
    data: bytes,
    uploads_dir: Path | None = None,
    *,
    images_dir: Path | None = None,
    deactivate_missing: bool = False,
    now: datetime | None = None,
) -> ImportResult:
    """Check and store a catalogue CSV, all or nothing; raises ``CatalogueRejected``.

    Runs as one transaction, or a savepoint inside the caller's (the console writes its audit
    entry in the same one). ``deactivate_missing`` makes active products the file does not list
    inactive: gone from search and from the interests members choose, kept for boards.
    """
    if images_dir is not None and uploads_dir is None:
        raise TypeError("importing pictures needs the uploads directory")
    rows, warnings = parse_catalogue(db, data, images_dir)
    result = ImportResult(warnings=warnings)
    written: list[str] = []
    own_transaction = not db.conn.in_transaction
    try:
        with atomic(db, "catalogue_import"):
            existing = _existing(db)
            if uploads_dir is not None:
                _pictures(rows, existing, uploads_dir, written)
            result.stale_pictures = _upsert(
                db, rows, existing, deactivate_missing, to_iso(now or utcnow()), result
            )
    except BaseException:
        if uploads_dir is not None:
            remove_pictures(uploads_dir, written)  # nothing stored: no new pictures either
        raise
    if own_transaction and uploads_dir is not None:
        remove_pictures(uploads_dir, result.stale_pictures)
    return result


def remove_pictures(uploads_dir: Path, paths: list[str]) -> None:
    """Delete replaced product pictures, once the import that replaced them has committed."""
    for path in paths:
        images.remove_upload(uploads_dir, path)


# The demo store's catalogue: its zones are the demo floor plan's, its categories include the
# demo members' interests (offers.demo), so the profile page and the personal price agree.
DEMO_CATALOGUE = Path(__file__).with_name("demo_catalogue.csv")


def seed_demo_catalogue(db: sqlite_utils.Database) -> int:
    """Import the demo catalogue into a store that has no products yet; returns products added."""
    if db.conn.execute("SELECT 1 FROM products LIMIT 1").fetchone():
        return 0
    return import_catalogue(db, DEMO_CATALOGUE.read_bytes()).added
