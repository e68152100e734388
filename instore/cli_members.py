"""``instore member …``: a member's data export and erasure from the box's shell.

For requests that reach the store by email or at the till rather than through the portal's
"download my data" and "delete my account" pages; both go through ``instore.member_data``.
"""

from __future__ import annotations

from pathlib import Path

import click
import sqlite_utils

from instore import hookimpl, member_data, members
from instore.cli_support import Context, fail, pass_ctx
from instore.nudge import send_nudge


def _member(db: sqlite_utils.Database, identifier: str) -> members.Member:
    member = members.find_by_identifier(db, identifier)
    if member is None:
        fail(f"no member {identifier!r} (give their email or loyalty number)")
    return member


@click.group()
def member() -> None:
    """A member's own data: export it, or erase it."""


@member.command("export")
@click.argument("identifier", metavar="EMAIL")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def member_export(ctx: Context, identifier: str, file: Path) -> None:
    """Write everything stored about a member to FILE: JSON, or a zip with uploads if FILE
    ends in .zip. EMAIL may also be a loyalty number."""
    db = ctx.db()
    found = _member(db, identifier)
    if file.suffix.lower() == ".zip":
        uploads = ctx.config.var_dir / member_data.UPLOADS_DIRNAME
        file.write_bytes(member_data.export_zip(db, found, uploads))
    else:
        file.write_text(member_data.export_json(db, found) + "\n", encoding="utf-8")
    click.echo(f"wrote member {found.id}'s data to {file}")


@member.command("erase")
@click.argument("identifier", metavar="EMAIL")
@click.option("--yes", is_flag=True, help="Confirm: this cannot be undone.")
@click.option(
    "--keep-posts",
    is_flag=True,
    help="Leave their comments, reviews and suggestions up, signed 'deleted member' "
    "(only when the member asked for that).",
)
@pass_ctx
def member_erase(ctx: Context, identifier: str, yes: bool, keep_posts: bool) -> None:
    """Erase a member's account and data (kept records are anonymised); revokes their WiFi."""
    db = ctx.db()
    found = _member(db, identifier)
    if not yes:
        fail(
            f"erasing {identifier} cannot be undone; export first if needed, "
            f"then run again with --yes"
        )
    report = member_data.erase_member(
        db, found, ctx.config.var_dir / member_data.UPLOADS_DIRNAME, keep_posts=keep_posts
    )
    if report.sessions_revoked:
        send_nudge(ctx.config["gateway"]["nudge_socket"])
    click.echo(
        f"erased member {found.id}: {sum(report.deleted.values())} rows deleted, "
        f"{sum(report.anonymised.values())} anonymised, "
        f"{len(report.sessions_revoked)} WiFi sessions revoked"
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore member …``"""
    cli.add_command(member)
