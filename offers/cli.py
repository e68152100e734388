"""``instore offers …``: questions a manager or IT can ask of the offers engine."""

from __future__ import annotations

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx


@click.group()
def offers() -> None:
    """Offers: what was sent to whom, and why others were not."""


@offers.command("why")
@click.argument("member")
@click.argument("offer_id", type=int)
@pass_ctx
def offers_why(ctx: Context, member: str, offer_id: int) -> None:
    """Explain the latest decision about OFFER_ID for MEMBER (email, loyalty number or id)."""
    from instore import members
    from offers.decide import UnknownSubject, why

    db = ctx.db()
    found = members.find_by_identifier(db, member)
    if found is None and member.isdigit():
        found = members.get_member(db, int(member))
    if found is None:
        fail(f"no member {member!r} (give an email, a loyalty number or a member id)")
    try:
        click.echo(why(db, found.id, offer_id, ctx.config["store"]["timezone"]))
    except UnknownSubject as exc:
        fail(str(exc))


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore offers …``"""
    cli.add_command(offers)
