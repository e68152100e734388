"""``instore backup FILE`` and ``instore restore FILE``: the database, safely on a running box."""

from __future__ import annotations

from pathlib import Path

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx

MEGABYTE = 1024 * 1024


def _schema(versions: dict[str, int]) -> str:
    return ", ".join(f"{package} {version}" for package, version in sorted(versions.items()))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Overwrite FILE if it exists (in one rename, never half)."
)
@pass_ctx
def backup(ctx: Context, file: Path, replace: bool) -> None:
    """Copy the database to FILE, consistent even while the services write to it.

    Uses SQLite's online backup API: FILE is the database as it was at one instant, checked with
    an integrity check before it gets its name, readable by its owner only (it holds member
    data). FILE must not exist unless --replace is given. Uploaded pictures and the keys under
    the database's directory are not in FILE: back that directory up with your file backups.
    """
    from instore.backup import BackupError, backup_database

    cfg = ctx.config
    try:
        result = backup_database(
            cfg.database_path, file, cfg["database"]["busy_timeout_ms"], replace=replace
        )
    except BackupError as exc:
        fail(str(exc))
    click.echo(
        f"backed up {cfg.database_path} to {result.path}: {result.size / MEGABYTE:.1f} MB, "
        f"schema {_schema(result.versions)}, in {result.seconds:.2f} s"
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Restore even though processes have the database open; restart them right after.",
)
@pass_ctx
def restore(ctx: Context, file: Path, force: bool) -> None:
    """Replace the database with the backup FILE; the replaced one is kept as *.before-restore.

    Stop the services first (systemctl stop 'instore-*'): restore refuses while any process has
    the database open. FILE must be an instore database that passes an integrity check and is
    not from a newer instore than this one; an older one is migrated when the services start.
    """
    from instore.backup import BackupError, restore_database
    from instore.health import latest_versions

    cfg = ctx.config
    try:
        result = restore_database(
            file,
            cfg.database_path,
            latest_versions(),
            cfg["database"]["busy_timeout_ms"],
            force=force,
        )
    except BackupError as exc:
        fail(str(exc))
    click.echo(f"restored {cfg.database_path} from {file} (schema {_schema(result.versions)})")
    if result.saved:
        click.echo(f"the database it replaced is kept as {result.saved}")
    if result.behind:
        click.echo("the services will bring its schema up to date when they start")
    if force:
        click.echo("now restart the services: systemctl restart 'instore-*'")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore backup`` and ``instore restore``"""
    cli.add_command(backup)
    cli.add_command(restore)
