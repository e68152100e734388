"""The store's product catalogue: the reads every community page uses.

Boards pin products, reviews rate them and the interests members choose are its categories, so
one small read API lives here and the import (``community.catalogue_import``) is kept apart.
Products are never deleted, only made inactive: a board or review that points at one still shows
what it was, while search and the category list offer only what the store sells now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

# The most rows a search returns when the caller does not say; a page shows this many.
DEFAULT_SEARCH_LIMIT = 50

# SQLite caps bound parameters per statement (999 on old builds); ids are asked in chunks under it.
ID_CHUNK = 500

_COLUMNS = "id, sku, name, category, price_cents, zone, description, image_path, active"


@dataclass(frozen=True)
class Product:
    """One catalogue row as the pages show it (``price_cents`` in the store's currency)."""

    id: int
    sku: str
    name: str
    category: str
    price_cents: int | None
    zone: str | None
    description: str
    image_path: str | None
    active: bool


def _product(row: tuple[Any, ...]) -> Product:
    return Product(
        id=row[0],
        sku=row[1],
        name=row[2],
        category=row[3],
        price_cents=row[4],
        zone=row[5],
        description=row[6],
        image_path=row[7],
        active=bool(row[8]),
    )


def get_product(db: sqlite_utils.Database, product_id: int) -> Product | None:
    """The product, active or not (a board may still hold a withdrawn one); None if unknown."""
    sql = f"SELECT {_COLUMNS} FROM products WHERE id = ?"  # noqa: S608 - fixed column list
    row = db.conn.execute(sql, (product_id,)).fetchone()
    return _product(row) if row else None


def _like_pattern(query: str) -> str:
    """``query`` as a LIKE pattern matching it anywhere, its own % and _ taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filters(query: str, category: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (fixed text, values bound) shared by the search and its count."""
    clauses = ["active = 1"]
    params: list[Any] = []
    query = query.strip()
    if query:
        pattern = _like_pattern(query)
        clauses.append("(name LIKE ? ESCAPE '\\' OR sku LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    if category:
        clauses.append("category = ?")
        params.append(category.strip().lower())
    return " AND ".join(clauses), params


def search_products(
    db: sqlite_utils.Database,
    query: str = "",
    category: str | None = None,
    limit: int = DEFAULT_SEARCH_LIMIT,
    offset: int = 0,
) -> list[Product]:
    """Active products whose name or SKU contains ``query`` (any case), by name.

    An empty query matches everything; ``category`` (any case) narrows to one category.
    """
    where, params = _filters(query, category)
    sql = f"SELECT {_COLUMNS} FROM products WHERE {where}"  # noqa: S608 - fixed fragments
    sql += " ORDER BY name COLLATE NOCASE, id LIMIT ? OFFSET ?"
    params += [max(0, limit), max(0, offset)]
    return [_product(row) for row in db.conn.execute(sql, params).fetchall()]


def count_products(db: sqlite_utils.Database, query: str = "", category: str | None = None) -> int:
    """How many active products ``search_products`` would find without a limit (for paging)."""
    where, params = _filters(query, category)
    sql = f"SELECT COUNT(*) FROM products WHERE {where}"  # noqa: S608 - fixed fragments
    return int(db.conn.execute(sql, params).fetchone()[0])


def categories(db: sqlite_utils.Database) -> list[str]:
    """The distinct (lower-case) categories of active products, sorted: the interests offered."""
    rows = db.conn.execute(
        "SELECT DISTINCT lower(category) FROM products WHERE active = 1 ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def products_by_ids(db: sqlite_utils.Database, ids: Iterable[int]) -> dict[int, Product]:
    """The products with these ids (active or not), keyed by id; unknown ids are left out."""
    wanted = sorted({int(i) for i in ids})
    found: dict[int, Product] = {}
    for start in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        sql = f"SELECT {_COLUMNS} FROM products WHERE id IN ({marks})"  # noqa: S608 - placeholders
        for row in db.conn.execute(sql, chunk).fetchall():
            product = _product(row)
            found[product.id] = product
    return found
