"""``instore offers …``: managing offers from the shell, and questions about what the engine did.

Offers are kept as files (one TOML or JSON offer per file, see ``offers.offer_files``) and loaded
with ``add``/``update``; ``backtest`` shows what a draft would have done on recorded days before it
goes live; ``why`` explains one decision. Bad input exits 2 with a sentence saying what to fix.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx
from offers.cli_tills import register as register_till_commands
from offers.model import STATUSES, InvalidOffer, Offer

# Widest bar of the text histograms, in characters: fits an 80-column terminal with its labels.
HISTOGRAM_WIDTH = 40
# Long report lines wrap here: an SSH session or serial console on the box is 80 columns.
REPORT_WIDTH = 80


@click.group()
def offers() -> None:
    """Offers: add and change them from offer files, try a draft on past days, and ask why.

    \b
    A typical first offer:
      instore offers add spring-runners.toml          # saved as a draft
      instore offers backtest spring-runners.toml --from 2025-03-03 --to 2025-03-09
      instore offers status 7 live
    """


def _load_file(db: Any, path: Path, **overrides: Any) -> Offer:
    """The checked offer in ``path`` (zone names resolved), or exit 2 naming the file."""
    from offers.offer_files import load_offer_file

    try:
        return load_offer_file(path, db, **overrides)
    except InvalidOffer as exc:
        fail(f"{path}: {exc}")


def _stored(db: Any, offer_id: int) -> Offer:
    from offers.model import get_offer

    offer = get_offer(db, offer_id)
    if offer is None:
        fail(f"there is no offer with id {offer_id} (see instore offers list)")
    return offer


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def _money(cents: int) -> str:
    """Cents as the store's currency units: 123456 -> "1,234.56"."""
    return f"{cents / 100:,.2f}"


@offers.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--live", is_flag=True, help="Make it live at once (default: the file's status).")
@pass_ctx
def offers_add(ctx: Context, file: Path, live: bool) -> None:
    """Save the offer in an offer FILE (.toml or .json); prints its id.

    The file is checked first; a problem is reported with the field to fix. The offer is a draft
    unless the file says otherwise or --live is given: try it first with
    "instore offers backtest". Zones may be given by name (zones = ["Shoes"]).
    """
    from offers.model import save_offer
    from offers.offer_files import read_offer_file

    db = ctx.db()
    try:
        stated_id = read_offer_file(file).get("id")
    except InvalidOffer as exc:
        fail(f"{file}: {exc}")
    if stated_id is not None:
        fail(
            f"{file}: add makes a new offer, but the file says id = {stated_id}; to change that "
            f"offer use: instore offers update {stated_id} {file}"
        )
    offer = _load_file(db, file, **({"status": "live"} if live else {}))
    offer_id = save_offer(db, offer)
    click.echo(f"added offer {offer_id} ({offer.name!r}) as {offer.status}", err=True)
    click.echo(offer_id)


@offers.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only offers with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print the offers as a JSON list.")
@pass_ctx
def offers_list(ctx: Context, status: str | None, as_json: bool) -> None:
    """List offers: status, priority, trigger, zones and dates.

    Highest priority first; times are in the store's time zone.
    """
    from offers.model import list_offers
    from offers.offer_files import offer_to_dict, zone_names

    db = ctx.db()
    found, names = list_offers(db, status), zone_names(db)
    if as_json:
        click.echo(json.dumps([offer_to_dict(offer, names) for offer in found], indent=2))
        return
    if not found:
        click.echo(f"no {status} offers yet" if status else "no offers yet")
        return
    zone = ZoneInfo(ctx.config["store"]["timezone"])
    rows = [("ID", "STATUS", "PRIO", "TRIGGER", "ZONES", f"VALID ({zone.key})", "NAME")]
    for offer in found:
        where = ", ".join(names.get(z, f"zone {z}") for z in offer.zones) or "anywhere"
        valid = f"{_local(offer.valid_from, zone)} → {_local(offer.valid_to, zone)}"
        rows.append(
            (
                str(offer.id),
                offer.status,
                str(offer.priority),
                offer.trigger_kind,
                where,
                valid,
                offer.name,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@offers.command("show")
@click.argument("offer_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print every field as JSON.")
@pass_ctx
def offers_show(ctx: Context, offer_id: int, as_json: bool) -> None:
    """Show one offer: what, where, when, who, trigger and limits."""
    from offers.decide import describe_duration
    from offers.offer_files import offer_to_dict, zone_names
    from offers.pricing import published_sale_price_cents

    db = ctx.db()
    offer, names = _stored(db, offer_id), zone_names(db)
    if as_json:
        click.echo(json.dumps(offer_to_dict(offer, names), indent=2))
        return
    zone = ZoneInfo(ctx.config["store"]["timezone"])
    cap = (
        f"{offer.per_member_cap} per member per {describe_duration(offer.cap_window_seconds)}"
        if offer.per_member_cap and offer.cap_window_seconds
        else "none"
    )
    lines = [
        ("title", offer.title),
        ("body", offer.body or "-"),
        ("product", f"{offer.product} ({', '.join(offer.product_tags) or 'no tags'})"),
        (
            "benefit",
            f"{offer.benefit_kind} {offer.benefit_value}"
            + (f" of {offer.benefit_quantity}" if offer.benefit_quantity else "")
            + f"; base price {_money(offer.base_price_cents)}, "
            f"sale price {_money(published_sale_price_cents(offer))}",
        ),
        ("trigger", f"{offer.trigger_kind} {offer.trigger_params or ''}".strip()),
        ("zones", ", ".join(names.get(z, f"zone {z}") for z in offer.zones) or "anywhere"),
        (
            "valid",
            f"{_local(offer.valid_from, zone)} → {_local(offer.valid_to, zone)} ({zone.key})",
        ),
        (
            "store hours",
            ", ".join(f"{day} {a}-{b}" for day, (a, b) in (offer.store_hours or {}).items())
            or "any time",
        ),
        ("quiet hours", "-".join(offer.quiet_hours) if offer.quiet_hours else "none"),
        ("audience", offer.audience or "every member"),
        ("cap", cap),
        (
            "cooldown",
            describe_duration(offer.cooldown_seconds) if offer.cooldown_seconds else "none",
        ),
        ("max issued", str(offer.max_issued or "no limit")),
        ("priority", f"{offer.priority}{' (exclusive)' if offer.exclusive else ''}"),
        ("holdout", f"{offer.holdout_percent} %"),
        (
            "variants",
            ", ".join(f"{v['name']} (weight {v['weight']})" for v in offer.variants) or "none",
        ),
    ]
    click.echo(f"offer {offer.id}: {offer.name} ({offer.status})")
    for label, value in lines:
        click.echo(f"  {label:<12} {value}")


@offers.command("status")
@click.argument("offer_id", type=int)
@click.argument("status", type=click.Choice(STATUSES))
@pass_ctx
def offers_status(ctx: Context, offer_id: int, status: str) -> None:
    """Make an offer live, pause it, or set it back to draft.

    Only live offers are sent; a paused offer keeps its caps and budget counts for later.
    """
    from offers.model import save_offer

    db = ctx.db()
    offer = _stored(db, offer_id)
    save_offer(db, replace(offer, status=status))
    click.echo(f"offer {offer_id} ({offer.name!r}) is now {status} (was {offer.status})")


@offers.command("update")
@click.argument("offer_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def offers_update(ctx: Context, offer_id: int, file: Path) -> None:
    """Replace an offer with the one in FILE (keeps its status).

    The status stays unless FILE sets one. Past decisions stay with the offer, so its caps,
    cooldowns and budget keep counting them.
    """
    from offers.model import save_offer
    from offers.offer_files import read_offer_file

    db = ctx.db()
    current = _stored(db, offer_id)
    try:
        data = read_offer_file(file)
    except InvalidOffer as exc:
        fail(f"{file}: {exc}")
    if data.get("id", offer_id) != offer_id:
        fail(f"{file}: the file is offer {data['id']}, not offer {offer_id}")
    offer = _load_file(db, file, id=offer_id, status=data.get("status", current.status))
    save_offer(db, offer)
    click.echo(f"offer {offer_id} ({offer.name!r}) updated; it is {offer.status}")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date like 2025-03-01 (store-local, YYYY-MM-DD)")


@offers.command("backtest")
@click.argument("offer")
@click.option("--from", "first", required=True, metavar="DATE", help="First day (YYYY-MM-DD).")
@click.option("--to", "last", required=True, metavar="DATE", help="Last day, included.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as a JSON object.")
@click.option(
    "--redemption-rate",
    type=click.FloatRange(0, 1),
    help="Share of sends expected to be redeemed, e.g. 0.08 (default: the store's own, or 0.10).",
)
@pass_ctx
def offers_backtest(
    ctx: Context, offer: str, first: str, last: str, as_json: bool, redemption_rate: float | None
) -> None:
    """Try an offer on past days: who it would have reached, and the cost.

    Shows what OFFER would have done on the days --from … --to, had it been live. OFFER is an
    offer file (checked as "add" would) or the id of a saved offer. The shop-floor events
    recorded on those store-local days are replayed through the real decision engine, each
    at its own time, with every consent, schedule, quiet hours, audience, cap, cooldown, holdout
    and budget rule. Nothing is sent and the real decision log is not touched.

    Prints who would have been reached, how often, why the rest got nothing, when the sends would
    have happened, and what the discounts would cost.
    """
    from offers.backtest import BacktestError, backtest

    db = ctx.db()
    first_day, last_day = _day(first, "--from"), _day(last, "--to")
    if Path(offer).exists() or not offer.isdigit():
        if not Path(offer).is_file():
            fail(f"{offer}: no such offer file (give a .toml/.json file or an offer id)")
        draft = _load_file(db, Path(offer))
    else:
        draft = _stored(db, int(offer))
    config = ctx.config
    try:
        report = backtest(
            db,
            draft,
            first_day,
            last_day,
            config["store"]["timezone"],
            config["offers"]["global_cooldown_seconds"],
            redemption_rate=redemption_rate,
        )
    except BacktestError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from offers.offer_files import zone_names

        click.echo(format_report(report, zone_names(db)))


def _histogram(labelled: list[tuple[str, int]]) -> list[str]:
    """One line per label: a bar scaled to the largest count, then the count."""
    top = max((count for _, count in labelled), default=0)
    lines = []
    for label, count in labelled:
        bar = "█" * (round(count * HISTOGRAM_WIDTH / top) if top else 0)
        lines.append(f"  {label}  {bar + ' ' if bar else ''}{count}")
    return lines


def _redemption_limits(offer: Offer) -> list[str]:
    limits = []
    if offer.max_redeemed is not None:
        limits.append(f"max_redeemed {offer.max_redeemed}")
    if offer.max_discount_cents is not None:
        limits.append(f"max_discount {_money(offer.max_discount_cents)}")
    return limits


def format_report(report: Any, names: Mapping[int, str] | None = None) -> str:
    """A backtest report (``offers.backtest.BacktestReport``) as text for a store manager."""
    from offers.backtest import OUTCOMES, WEEKDAY_LABELS

    offer = report.offer
    names = names or {}
    where = ", ".join(names.get(z, f"zone {z}") for z in offer.zones) or "anywhere"
    wrap = textwrap.TextWrapper(width=REPORT_WIDTH, subsequent_indent="    ")
    lines = [
        f"Backtest of {offer.name!r} ({offer.trigger_kind}, {where}), as if live",
        f"  {report.first_day} to {report.last_day} ({report.store_timezone}), "
        f"replayed in {report.seconds:.1f} s",
        *wrap.wrap(
            f"  {report.events_read} events read: {report.not_members} not members (anonymous "
            f"devices, skipped), {report.not_triggered} outside the trigger (other zones, short "
            f"dwells), {report.evaluated} evaluated"
        ),
        "",
        f"Members reached   {report.members_reached}",
        f"Sends             {report.sends}",
    ]
    spread = report.per_member()
    if spread is not None:
        lines.append(
            f"Sends per member  min {spread['min']}, median {spread['median']:g}, "
            f"max {spread['max']}"
        )
    lines += ["", "Outcomes (one per evaluated event)"]
    lines += [f"  {outcome:<16} {report.outcomes[outcome]}" for outcome in OUTCOMES]
    hours = [h for h, n in enumerate(report.sends_by_hour) if n]
    if hours:
        lines += ["", "Sends by hour (store time)"]
        lines += _histogram(
            [(f"{h:02d}h", report.sends_by_hour[h]) for h in range(min(hours), max(hours) + 1)]
        )
        lines += ["", "Sends by weekday"]
        lines += _histogram(list(zip(WEEKDAY_LABELS, report.sends_by_weekday, strict=True)))
    limit = f" (max_issued {offer.max_issued})" if offer.max_issued else ""
    rate = f"{report.redemption_rate:.0%}"
    lines += [
        "",
        "Budget (money in the store's currency)",
        f"  {'issued':<34}{report.sends}{limit}",
        f"  {'discount if every send redeemed':<34}{_money(report.discount_if_all_redeemed_cents)}",
        f"  {'expected at ' + rate + ' redemption':<34}{report.expected_redemptions:.1f} "
        f"redemptions, {_money(report.expected_discount_cents)} discount",
        *(
            [f"  {'limits (not enforced in a replay)':<34}{', '.join(limits)}"]
            if (limits := _redemption_limits(offer))
            else []
        ),
        *wrap.wrap(f"  rate: {report.redemption_rate_source}"),
        "",
        "Assumptions",
    ]
    for note in report.assumptions:
        lines += wrap.wrap(f"  - {note}")
    return "\n".join(lines)


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


# ``till add|list|revoke`` and ``lift`` (offers/cli_tills.py) join this group.
register_till_commands(offers)
