"""``instore backup FILE`` and ``instore restore FILE``: the database (and, in a ``.tar``, the
uploads and keys beside it), safely on a running box."""

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

    Uses SQLite's online backup API: the copy is the database as it was at one instant, checked
    with an integrity check before it gets its name, readable by its owner only (it holds member
    data). FILE must not exist unless --replace is given.

    A FILE ending in .tar also holds everything else a new box needs: the uploads folder
    (avatars, board photos, product pictures) and the key files beside the database (portal
    sessions, Web Push, BLE tokens, flags). Keep it as safe as the keys it holds.
    """
    from instore.backup import BackupError, backup_database
    from instore.backup_archive import ARCHIVE_SUFFIX, backup_archive

    cfg = ctx.config
    timeout = cfg["database"]["busy_timeout_ms"]
    try:
        if file.name.endswith(ARCHIVE_SUFFIX):
            archive = backup_archive(cfg.database_path, file, timeout, replace=replace)
            result = archive.database
        else:
            result = backup_database(cfg.database_path, file, timeout, replace=replace)
    except BackupError as exc:
        fail(str(exc))
    if not file.name.endswith(ARCHIVE_SUFFIX):
        click.echo(
            f"backed up {cfg.database_path} to {result.path}: {result.size / MEGABYTE:.1f} MB, "
            f"schema {_schema(result.versions)}, in {result.seconds:.2f} s"
        )
        return
    click.echo(
        f"backed up {cfg.var_dir} to {result.path}: {result.size / MEGABYTE:.1f} MB "
        f"in {result.seconds:.2f} s"
    )
    click.echo(
        f"  database: {archive.database_size / MEGABYTE:.1f} MB, schema {_schema(result.versions)}"
    )
    click.echo(f"  uploads: {archive.uploads} files, {archive.upload_bytes / MEGABYTE:.1f} MB")
    click.echo(f"  keys: {', '.join(archive.keys) or 'none yet'}")
    if archive.skipped:
        click.echo(f"  left out: {archive.skipped} links or special files under uploads/")


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

    A .tar backup also puts back the uploads folder and the key files it holds, each replaced
    one kept as *.before-restore. It is refused whole if it holds anything a backup never writes
    (links, devices, paths leading out of the backup).
    """
    from instore.backup import BackupError, restore_database
    from instore.backup_archive import is_archive, restore_archive
    from instore.health import latest_versions
    from instore.member_data import UPLOADS_DIRNAME

    cfg = ctx.config
    timeout = cfg["database"]["busy_timeout_ms"]
    archive = None
    try:
        if is_archive(file):
            archive = restore_archive(
                file, cfg.database_path, latest_versions(), timeout, force=force
            )
            result = archive.database
        else:
            result = restore_database(
                file, cfg.database_path, latest_versions(), timeout, force=force
            )
    except BackupError as exc:
        fail(str(exc))
    click.echo(f"restored {cfg.database_path} from {file} (schema {_schema(result.versions)})")
    if result.saved:
        click.echo(f"the database it replaced is kept as {result.saved}")
    if archive is not None:
        uploads = cfg.var_dir / UPLOADS_DIRNAME
        click.echo(f"restored {archive.uploads} uploaded files into {uploads}")
        if archive.saved_uploads:
            click.echo(f"the uploads it replaced are kept as {archive.saved_uploads}")
        click.echo(f"restored keys: {', '.join(archive.keys) or 'none (the backup held none)'}")
        for saved in archive.saved_keys:
            click.echo(f"the key it replaced is kept as {saved}")
    if result.behind:
        click.echo("the services will bring its schema up to date when they start")
    if force:
        click.echo("now restart the services: systemctl restart 'instore-*'")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore backup`` and ``instore restore``"""
    cli.add_command(backup)
    cli.add_command(restore)
