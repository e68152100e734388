"""``instore offers till …`` and ``instore offers lift``: tills' API keys, and what offers did.

``register(group)`` adds these to the ``instore offers`` group (``offers/cli.py`` calls it), so
this module stays the one place that knows about tills on the command line.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import click

from instore.cli_support import Context, fail, pass_ctx
from instore.clock import from_iso


def _local(stored: str, timezone: str) -> str:
    """A stored UTC time in the store's zone, to the minute."""
    return f"{from_iso(stored).astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def _points(share: float | None) -> str:
    """A difference of shares in percentage points, signed."""
    return "-" if share is None else f"{share * 100:+.1f} pts"


@click.group("till")
def till() -> None:
    """Tills: the checkouts allowed to redeem codes, each with its own API key."""


@till.command("add")
@click.argument("name")
@pass_ctx
def till_add(ctx: Context, name: str) -> None:
    """Add a till called NAME and print its API key (shown this once only).

    The till sends the key as "Authorization: Bearer KEY" to /api/redemptions and /api/purchases.
    """
    from offers.tills import InvalidTill, create_till

    try:
        added, key = create_till(ctx.db(), name)
    except InvalidTill as exc:
        fail(str(exc))
    click.echo(f"Till {added.name!r} added. Its API key:")
    click.echo("")
    click.echo(f"    {key}")
    click.echo("")
    click.echo(
        "Copy it into the till's settings now: it is stored only as a hash and will not be "
        "shown again. If it is lost, revoke the till and add a new one."
    )


@till.command("list")
@pass_ctx
def till_list(ctx: Context) -> None:
    """List the tills, active and revoked, with when each was added (store time)."""
    from offers.tills import list_tills

    tills = list_tills(ctx.db())
    if not tills:
        click.echo("no tills yet; add one with: instore offers till add NAME")
        return
    timezone = ctx.config["store"]["timezone"]
    width = max(len("name"), *(len(t.name) for t in tills))
    click.echo(f"{'name':<{width}}  {'added':<16}  status")
    for entry in tills:
        status = "active"
        if entry.revoked_at is not None:
            status = f"revoked {_local(entry.revoked_at, timezone)}"
        click.echo(f"{entry.name:<{width}}  {_local(entry.created_at, timezone):<16}  {status}")


@till.command("revoke")
@click.argument("name")
@pass_ctx
def till_revoke(ctx: Context, name: str) -> None:
    """Revoke the till called NAME: its key stops working at once.

    The till's past redemptions and purchases are kept.
    """
    from offers.tills import InvalidTill, get_till, revoke_till

    db = ctx.db()
    before = get_till(db, name)
    try:
        revoked = revoke_till(db, name)
    except InvalidTill as exc:
        fail(str(exc))
    assert revoked.revoked_at is not None
    when = _local(revoked.revoked_at, ctx.config["store"]["timezone"])
    if before is not None and not before.active:
        click.echo(f"Till {revoked.name!r} was already revoked on {when}.")
    else:
        click.echo(f"Till {revoked.name!r} revoked: its key no longer works.")


@click.command("lift")
@click.option("--offer", "offer_id", type=int, help="Only this offer (its id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def lift(ctx: Context, offer_id: int | None, as_json: bool) -> None:
    """Show how much more the members sent an offer bought than those held out of it.

    A member converts by buying the offer's product (a redeemed code or a loyalty purchase)
    within [offers] attribution_hours of the decision. Without a holdout there is nothing to
    compare with, and while either group is small the numbers mean nothing yet; the note says so.
    """
    from instore.clock import utcnow
    from offers.attribution import UnknownOffer, all_lifts, offer_lift

    db = ctx.db()
    window = int(ctx.config["offers"]["attribution_hours"])
    if window < 1:
        fail("offers.attribution_hours must be at least 1 to measure lift")
    now = utcnow()
    if offer_id is None:
        lifts = all_lifts(db, window, now)
    else:
        try:
            lifts = [offer_lift(db, offer_id, window, now)]
        except UnknownOffer as exc:
            fail(f"{exc} (see the offers' ids in the manage pages)")
    if as_json:
        click.echo(json.dumps([entry.to_json() for entry in lifts], indent=2))
        return
    if not lifts:
        click.echo("no offer has been sent or held out yet, so there is no lift to show")
        return
    click.echo(f"window: {window} h after each member's decision")
    for entry in lifts:
        click.echo("")
        click.echo(f"offer {entry.offer_id}: {entry.offer_title} (product: {entry.product})")
        click.echo(f"  {'group':<9}{'members':>9}{'bought':>9}{'rate':>9}")
        for label, group in (("sent", entry.treated), ("held out", entry.control)):
            click.echo(
                f"  {label:<9}{group.members:>9}{group.conversions:>9}{_percent(group.rate):>9}"
            )
        relative = "-" if entry.relative_lift is None else f"{entry.relative_lift * 100:+.0f} %"
        line = f"  lift: {_points(entry.absolute_lift)} (relative {relative})"
        interval = entry.interval95
        if interval is not None:
            line += f", 95 % interval {_points(interval[0])} to {_points(interval[1])}"
        click.echo(line)
        if entry.pending:
            click.echo(f"  {entry.pending} member(s) still inside their window")
        if entry.note:
            click.echo(f"  note: {entry.note}")


def register(group: click.Group) -> None:
    """Add ``till add|list|revoke`` and ``lift`` to the ``instore offers`` group."""
    group.add_command(till)
    group.add_command(lift)
