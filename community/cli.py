"""``instore products …``: the store's catalogue from the shell.

The catalogue comes from the till system or a spreadsheet as CSV (see
``community.catalogue_import`` for the columns); ``import`` checks every line before storing
anything, so a rejected file can be fixed and imported again. Bad input exits 2 with every
problem and its line number on stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx
from instore.member_data import UPLOADS_DIRNAME

# Wide enough for a product name on an 80-column console with the other columns beside it.
NAME_WIDTH = 40


@click.group()
def products() -> None:
    """The product catalogue: import it from CSV, list it.

    \b
    The CSV's first line names the columns:
      sku,name,category,price,zone,description,image
    sku, name and category are required. Import again after a change: products are matched by
    sku, so nothing is duplicated.
    """


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--images",
    "images_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder holding the pictures the image column names.",
)
@click.option(
    "--deactivate-missing",
    is_flag=True,
    help="Withdraw active products the file does not list (kept for boards, hidden from search).",
)
@pass_ctx
def products_import(
    ctx: Context, file: Path, images_dir: Path | None, deactivate_missing: bool
) -> None:
    """Add and update products from a CSV FILE, all or nothing.

    Every line is checked first; if any has a problem, each is listed with its line number and
    nothing is stored. Pictures are re-encoded (metadata removed) and kept with the uploads.
    """
    from community.catalogue_import import MAX_IMPORT_BYTES, CatalogueRejected, import_catalogue

    if file.stat().st_size > MAX_IMPORT_BYTES:
        fail(f"{file}: larger than {MAX_IMPORT_BYTES // 1_048_576} MB; split it into smaller files")
    db = ctx.db()
    uploads = ctx.config.var_dir / UPLOADS_DIRNAME
    try:
        result = import_catalogue(
            db,
            file.read_bytes(),
            uploads,
            images_dir=images_dir,
            deactivate_missing=deactivate_missing,
        )
    except CatalogueRejected as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        count = len(exc.problems)
        fail(
            f"{file}: not imported ({count} problem{'s' if count > 1 else ''}); nothing was stored"
        )
    for warning in result.warnings:
        click.echo(f"{file}: warning: {warning}", err=True)
    click.echo(
        f"added {result.added}, updated {result.updated}, unchanged {result.unchanged}, "
        f"deactivated {result.deactivated}"
    )


@products.command("list")
@click.option("--search", "query", default="", help="Only names or SKUs containing this.")
@click.option("--category", help="Only this category.")
@pass_ctx
def products_list(ctx: Context, query: str, category: str | None) -> None:
    """Active products by name: SKU, category, price, zone and name."""
    from community.catalogue import count_products, search_products

    db = ctx.db()
    total = count_products(db, query, category)
    if not total:
        click.echo("no products; import some with: instore products import FILE.csv")
        return
    found = search_products(db, query, category, limit=total)
    rows = [("SKU", "CATEGORY", "PRICE", "ZONE", "NAME")]
    for product in found:
        price = "" if product.price_cents is None else f"{product.price_cents / 100:,.2f}"
        rows.append(
            (product.sku, product.category, price, product.zone or "", product.name[:NAME_WIDTH])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``instore products``."""
    cli.add_command(products)
