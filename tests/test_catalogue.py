"""The product catalogue: its reads, ``instore products import|list`` and the console page.

An import is all or nothing: every bad input must exit 2 (or answer 400 in the console) naming
the line and what to fix, with the products table and the uploads folder exactly as before.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from PIL import Image

from community import catalogue_import
from community.catalogue import (
    categories,
    count_products,
    get_product,
    products_by_ids,
    search_products,
)
from instore.cli import main
from instore.config import Config
from offers.demo import DEMO_INTERESTS
from portal.manage import catalogue as console_catalogue
from presence.floorplan_demo import ZONE_NAMES, seed_demo_floorplan
from tests.conftest import ConsoleActions

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')

GOOD_CSV = """sku,name,category,price,zone,description,image
TR-200,Trail shoe,Trail,80.00,shoes,Grippy soles,shoe.jpg
DN-501,Straight jeans,denim,"49,90",Denim,"Five pockets, rigid",jeans.png
KN-1,Jumper,knitwear,,,,
"""


def jpeg_bytes(size: tuple[int, int] = (40, 30), colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (20, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "blue").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def env(config: Config, db: sqlite_utils.Database) -> dict[str, str]:
    """The CLI pointed at this test's database, with the demo floor plan's zones."""
    seed_demo_floorplan(db)
    return {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "shoe.jpg").write_bytes(jpeg_bytes())
    (folder / "jeans.png").write_bytes(png_bytes())
    (folder / "notes.jpg").write_text("not a picture at all")
    return folder


def products_import(env: dict[str, str], csv_text: str, tmp_path: Path, *args: str) -> Result:
    path = tmp_path / "catalogue.csv"
    path.write_text(csv_text, encoding="utf-8")
    return CliRunner().invoke(main, ["products", "import", str(path), *args], env=env)


def snapshot(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    return db.conn.execute("SELECT * FROM products ORDER BY id").fetchall()


def stored_pictures(config: Config) -> list[str]:
    folder = config.var_dir / "uploads" / "products"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- the read API -------------------------------------------------------------------------------


def add(db: sqlite_utils.Database, sku: str, name: str, category: str, active: int = 1) -> int:
    cursor = db.conn.execute(
        "INSERT INTO products (sku, name, category, active, updated_at) VALUES (?, ?, ?, ?, 'x')",
        (sku, name, category, active),
    )
    return int(cursor.lastrowid or 0)


def test_reads_search_categories_and_ids(db: sqlite_utils.Database) -> None:
    apple = add(db, "A-1", "apple 50%", "fruit")
    pear = add(db, "P_2", "Pear", "fruit")
    cheese = add(db, "C-3", "Cheese", "dairy")
    gone = add(db, "G-4", "Gone", "old", active=0)
    assert [p.name for p in search_products(db)] == ["apple 50%", "Cheese", "Pear"]
    assert [p.id for p in search_products(db, "APPLE")] == [apple]
    assert [p.id for p in search_products(db, "50%")] == [apple]  # % is not a wildcard
    assert [p.id for p in search_products(db, "p_")] == [pear]  # nor is _
    assert [p.id for p in search_products(db, "c-3")] == [cheese]  # SKUs match too
    assert [p.id for p in search_products(db, category="FRUIT")] == [apple, pear]
    assert search_products(db, "gone") == []
    assert [p.id for p in search_products(db, limit=1, offset=1)] == [cheese]
    assert count_products(db, "", "fruit") == 2
    assert categories(db) == ["dairy", "fruit"]
    found = get_product(db, gone)
    assert found is not None and found.active is False and found.sku == "G-4"
    assert get_product(db, 999) is None
    assert set(products_by_ids(db, [apple, gone, 999])) == {apple, gone}


# -- instore products import ---------------------------------------------------------------------


def test_import_stores_products_and_pictures_then_changes_nothing(
    env: dict[str, str], db: sqlite_utils.Database, config: Config, pictures: Path, tmp_path: Path
) -> None:
    result = products_import(env, GOOD_CSV, tmp_path, "--images", str(pictures))
    assert result.exit_code == 0, result.output
    assert "added 3, updated 0, unchanged 0, deactivated 0" in result.output
    shoe = search_products(db, "TR-200")[0]
    assert (shoe.name, shoe.category, shoe.price_cents, shoe.zone) == (
        "Trail shoe",
        "trail",  # categories are lower-case: they are the interests members choose
        8000,
        "Shoes",  # the plan's spelling of the zone
    )
    jeans = search_products(db, "DN-501")[0]
    assert jeans.price_cents == 4990 and jeans.description == "Five pockets, rigid"
    jumper = search_products(db, "KN-1")[0]
    assert (jumper.price_cents, jumper.zone, jumper.image_path) == (None, None, None)
    assert shoe.image_path and shoe.image_path.startswith("products/")
    with Image.open(config.var_dir / "uploads" / shoe.image_path) as stored:
        assert stored.size == (40, 30)
    files = stored_pictures(config)
    assert len(files) == 2
    before = snapshot(db)

    again = products_import(env, GOOD_CSV, tmp_path, "--images", str(pictures))
    assert again.exit_code == 0, again.output
    assert "added 0, updated 0, unchanged 3, deactivated 0" in again.output
    assert snapshot(db) == before
    assert stored_pictures(config) == files


def test_import_updates_replaces_pictures_and_deactivates_missing(
    env: dict[str, str], db: sqlite_utils.Database, config: Config, pictures: Path, tmp_path: Path
) -> None:
    assert products_import(env, GOOD_CSV, tmp_path, "--images", str(pictures)).exit_code == 0
    old_picture = search_products(db, "TR-200")[0].image_path
    (pictures / "shoe.jpg").write_bytes(jpeg_bytes(colour="green"))
    changed = "sku,name,category,price,image\nTR-200,Trail shoe,trail,75,shoe.jpg\n"
    result = products_import(
        env, changed, tmp_path, "--images", str(pictures), "--deactivate-missing"
    )
    assert result.exit_code == 0, result.output
    assert "added 0, updated 1, unchanged 0, deactivated 2" in result.output
    shoe = search_products(db, "TR-200")[0]
    assert shoe.price_cents == 7500
    assert shoe.zone == "Shoes" and shoe.description == "Grippy soles"  # columns left out: kept
    assert shoe.image_path != old_picture
    assert not (config.var_dir / "uploads" / str(old_picture)).exists()
    assert [p.sku for p in search_products(db)] == ["TR-200"]
    assert categories(db) == ["trail"]
    # A withdrawn product listed again comes back.
    back = products_import(env, "sku,name,category\nKN-1,Jumper,knitwear\n", tmp_path)
    assert back.exit_code == 0 and "updated 1" in back.output
    assert categories(db) == ["knitwear", "trail"]


def test_unknown_zone_warns_and_semicolons_work(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    text = "\ufeffSKU;Name;Category;Price;Zone\nX-1;Scarf;accessories;12,50;Attic\n"
    result = products_import(env, text, tmp_path)
    assert result.exit_code == 0, result.output
    assert "line 2: there is no zone “Attic” on the floor plan" in result.output
    scarf = search_products(db, "X-1")[0]
    assert (scarf.price_cents, scarf.zone) == (1250, "Attic")


def test_images_column_without_images_folder_keeps_pictures(
    env: dict[str, str], db: sqlite_utils.Database, pictures: Path, tmp_path: Path
) -> None:
    assert products_import(env, GOOD_CSV, tmp_path, "--images", str(pictures)).exit_code == 0
    before = snapshot(db)
    result = products_import(env, GOOD_CSV, tmp_path)
    assert result.exit_code == 0
    assert "pictures were not imported" in result.output
    assert snapshot(db) == before


HEADER = "sku,name,category,price,zone,description,image\n"
BAD_INPUTS = {
    "missing column": ("sku,name,price\nA,B,1\n", "line 1", "no “category” column"),
    "bad price": (HEADER + "A,Shoe,shoes,12 EUR,,,\n", "line 2", "write it like 12.50"),
    "negative price": (HEADER + "A,Shoe,shoes,-3,,,\n", "line 2", "is not a price"),
    "duplicate sku": (
        HEADER + "A,Shoe,shoes,,,,\nB,Sock,socks,,,,\nA,Boot,shoes,,,,\n",
        "line 4",
        "also on line 2",
    ),
    "empty name": (HEADER + "A,,shoes,,,,\n", "line 2", "the name is empty"),
    "image not found": (HEADER + "A,Shoe,shoes,,,,missing.jpg\n", "line 2", "not in"),
    "image outside the folder": (HEADER + "A,Shoe,shoes,,,,../shoe.jpg\n", "line 2", "file name"),
    "not a picture": (HEADER + "A,Shoe,shoes,,,,notes.jpg\n", "line 2", "not a picture"),
    "too many fields": (HEADER + "A,Shoe,shoes,,,,,extra\n", "line 2", "put quotes"),
    "no rows": (HEADER, "", "no products"),
    "not utf-8": ("sku,name,category\nA,Caf\xe9,x\n", "", "not UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_and_stores_nothing(
    case: str,
    env: dict[str, str],
    db: sqlite_utils.Database,
    config: Config,
    pictures: Path,
    tmp_path: Path,
) -> None:
    # A good first row with a picture: it must not be stored either.
    assert products_import(env, GOOD_CSV, tmp_path, "--images", str(pictures)).exit_code == 0
    before, files = snapshot(db), stored_pictures(config)
    (pictures / "shoe.jpg").write_bytes(jpeg_bytes(colour="yellow"))  # would be a new file
    text, where, what = BAD_INPUTS[case]
    if case not in ("missing column", "not utf-8", "no rows"):
        text = text.replace(HEADER, HEADER + "TR-200,Trail shoe,trail,80,,,shoe.jpg\n", 1)
        where = where.replace("line 2", "line 3").replace("line 4", "line 5")
        what = what.replace("line 2", "line 3")
    path = tmp_path / "bad.csv"
    path.write_bytes(text.encode("latin-1" if case == "not utf-8" else "utf-8"))
    result = CliRunner().invoke(
        main, ["products", "import", str(path), "--images", str(pictures)], env=env
    )
    assert result.exit_code == 2, result.output
    assert what in result.output and where in result.output
    assert "nothing was stored" in result.output
    assert snapshot(db) == before
    assert stored_pictures(config) == files


def test_every_bad_row_is_reported(env: dict[str, str], tmp_path: Path) -> None:
    text = "sku,name,category,price\nA,Shoe,shoes,x\nB,,shoes,1\nC,Sock,socks,1.234\n"
    result = products_import(env, text, tmp_path)
    assert result.exit_code == 2
    for line in ("line 2:", "line 3:", "line 4:"):
        assert line in result.output


def test_too_many_rows_is_refused(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue_import, "MAX_IMPORT_ROWS", 3)
    rows = "".join(f"S{n},Sock {n},socks\n" for n in range(4))
    result = products_import(env, "sku,name,category\n" + rows, tmp_path)
    assert result.exit_code == 2
    assert "more than 3 products" in result.output and "line 5" in result.output
    assert snapshot(db) == []


def test_too_large_file_is_refused(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue_import, "MAX_IMPORT_BYTES", 100)
    result = products_import(env, GOOD_CSV * 3, tmp_path)
    assert result.exit_code == 2 and "split it into smaller files" in result.output


def test_list_prints_the_catalogue(env: dict[str, str], tmp_path: Path) -> None:
    empty = CliRunner().invoke(main, ["products", "list"], env=env)
    assert empty.exit_code == 0 and "no products" in empty.output
    products_import(env, GOOD_CSV, tmp_path)
    listed = CliRunner().invoke(main, ["products", "list", "--category", "denim"], env=env)
    assert listed.exit_code == 0
    assert "DN-501" in listed.output and "49.90" in listed.output
    assert "TR-200" not in listed.output


# -- the demo catalogue --------------------------------------------------------------------------


def test_demo_catalogue_matches_the_demo_zones_and_interests(db: sqlite_utils.Database) -> None:
    seed_demo_floorplan(db)
    data = catalogue_import.DEMO_CATALOGUE.read_bytes()
    rows, warnings = catalogue_import.parse_catalogue(db, data, None)
    assert warnings == [] and len(rows) >= 25
    assert catalogue_import.seed_demo_catalogue(db) == len(rows)
    assert catalogue_import.seed_demo_catalogue(db) == 0  # once
    offered = categories(db)
    assert 5 <= len(offered) <= 6
    for interests in DEMO_INTERESTS.values():
        assert set(interests) <= set(offered)
    assert {p.zone for p in search_products(db, limit=100)} <= set(ZONE_NAMES)


# -- the console page ----------------------------------------------------------------------------


def upload(client: FlaskClient, text: str | bytes, **form: str) -> Any:
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/manage/catalogue/import",
        data={"file": (io.BytesIO(data), "catalogue.csv"), **form},
        content_type="multipart/form-data",
    )


def audit_rows(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    return db.conn.execute(
        "SELECT action, after FROM audit_log WHERE action LIKE 'catalogue.%'"
    ).fetchall()


def test_console_import_lists_and_audits(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    seed_demo_floorplan(db)
    console.signin("manager")
    response = upload(client, GOOD_CSV)
    assert response.status_code == 302
    page = client.get("/manage/catalogue").get_data(as_text=True)
    assert "3 added, 0 updated, 0 unchanged, 0 withdrawn" in page
    assert "pictures were not imported" in page  # no pictures through the browser
    assert "Straight jeans" in page and "Jumper" in page
    ((action, after),) = audit_rows(db)
    assert action == "catalogue.import"
    assert json.loads(after)["added"] == 3
    filtered = client.get("/manage/catalogue?category=denim").get_data(as_text=True)
    assert "Straight jeans" in filtered and "Trail shoe" not in filtered
    searched = client.get("/manage/catalogue?q=trail").get_data(as_text=True)
    assert "Trail shoe" in searched and "Jumper" not in searched


def test_console_paging(
    client: FlaskClient,
    console: ConsoleActions,
    db: sqlite_utils.Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console_catalogue, "PAGE_SIZE", 2)
    for n in range(5):
        add(db, f"S{n}", f"Sock {n}", "socks")
    console.signin("manager")
    first = client.get("/manage/catalogue").get_data(as_text=True)
    assert "Sock 0" in first and "Sock 2" not in first and "Page 1 of 3" in first
    last = client.get("/manage/catalogue?page=3").get_data(as_text=True)
    assert "Sock 4" in last and "Sock 0" not in last
    assert client.get("/manage/catalogue?page=zzz").status_code == 200
    assert client.get("/manage/catalogue?page=99").status_code == 200


def test_console_bad_file_is_400_with_lines_and_stores_nothing(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("manager")
    response = upload(client, HEADER + "A,Shoe,shoes,abc,,,\nA,Boot,shoes,,,,\n")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nothing was imported" in page
    assert "line 2: the price" in page and "line 3: the sku “A” is also on line 2" in page
    assert snapshot(db) == [] and audit_rows(db) == []
    missing = client.post("/manage/catalogue/import", data={}, content_type="multipart/form-data")
    assert missing.status_code == 400 and "Choose a CSV file" in missing.get_data(as_text=True)


def test_console_upload_over_the_limit_is_refused(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("manager")
    big = b"sku,name,category\n" + b"x" * (catalogue_import.MAX_IMPORT_BYTES + 200_000)
    response = upload(client, big)
    assert response.status_code == 413
    assert "larger than 5 MB" in response.get_data(as_text=True)
    assert snapshot(db) == []


def test_console_catalogue_is_for_managers(client: FlaskClient, console: ConsoleActions) -> None:
    console.signin("staff")
    assert client.get("/manage/catalogue").status_code == 403
    assert upload(client, GOOD_CSV).status_code in (403, 413)


@pytest.mark.parametrize("payload", XSS)
def test_product_text_renders_inert(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, payload: str
) -> None:
    console.signin("manager")
    csv_text = 'sku,name,category,description\n"X1","' + payload.replace('"', '""') + '",xss,'
    csv_text += '"' + payload.replace('"', '""') + '"\n'
    assert upload(client, csv_text).status_code == 302
    page = client.get("/manage/catalogue").get_data(as_text=True)
    assert payload not in page
    assert "&lt;script&gt;" in page or "&#34;&gt;&lt;img" in page
