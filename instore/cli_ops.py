"""``instore doctor``, ``instore status`` and ``instore flags``: keeping a box healthy."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Sequence

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def doctor(ctx: Context, as_json: bool) -> None:
    """Check the box and say what to fix: config, database, firewall, LAN, radios, clock, disk,
    services.

    Each line has a verdict: ok; warn (works, but look at it, or could not be checked); FAIL
    (cannot work as configured), with what to do. Exits 1 when any line is FAIL, else 0. Run it
    as root (`sudo instore doctor`) to include the firewall.
    """
    from hardware.doctor import render_table, run_checks
    from hardware.doctor_checks import FAIL
    from hardware.doctor_checks import as_json as results_json

    results = run_checks(ctx.config_path)
    if as_json:
        click.echo(json.dumps(results_json(results), indent=2))
    else:
        click.echo(render_table(results))
    sys.exit(1 if any(r.verdict == FAIL for r in results) else 0)


def _consumer_kinds() -> dict[str, Sequence[str]]:
    """The outbox consumers that read only some kinds, so their lag counts only those."""
    from offers.worker import CONSUMER, EVENT_KINDS
    from presence.reports import DWELL_CONSUMER
    from presence.track import ZONE_ENTER, ZONE_EXIT

    return {CONSUMER: EVENT_KINDS, DWELL_CONSUMER: (ZONE_ENTER, ZONE_EXIT)}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show every service: its systemd state, its last sign of life in the database, how far
    each outbox consumer is behind, the last event, the last uplink publish, sensors, and phones
    online. Reads only; safe while everything runs."""
    from instore.status import collect_status, open_read_only, render_status

    config = ctx.config
    try:
        database = open_read_only(config.database_path, config["database"]["busy_timeout_ms"])
        report = collect_status(database, _consumer_kinds())
    except sqlite3.Error as exc:
        fail(f"cannot read the database: {exc} (see `instore doctor`)")
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(render_status(report))


@click.group()
def flags() -> None:
    """Feature flags: turn a channel, a source or a feature on, off, or on for some members.

    Parts of the product read flags named after what they run when such a flag is set:
    channel.NAME (offers delivery channels, e.g. channel.webpush) and source.NAME (presence
    sources, e.g. source.ble). A percentage picks a stable share of members.
    """


@flags.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the flags as JSON.")
@pass_ctx
def flags_list(ctx: Context, as_json: bool) -> None:
    """List the flags that are set."""
    from instore.flags import list_flags

    rows = list_flags(ctx.db())
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": f.name,
                        "setting": f.setting,
                        "percent": f.percent,
                        "updated_at": f.updated_at,
                    }
                    for f in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no flags set")
        return
    click.echo(f"{'NAME':<32} {'SETTING':<8} UPDATED")
    for flag in rows:
        click.echo(f"{flag.name:<32} {flag.setting:<8} {flag.updated_at}")


@flags.command("set")
@click.argument("name")
@click.argument("setting")
@pass_ctx
def flags_set(ctx: Context, name: str, setting: str) -> None:
    """Set flag NAME to on, off, or a percentage of members (0-100, e.g. 30 or 30%).

    Every service sees the change within seconds; members keep their bucket, so raising a
    percentage only adds members.
    """
    from instore.flags import InvalidFlag, parse_setting, set_flag

    try:
        flag = set_flag(ctx.db(), name, parse_setting(setting))
    except InvalidFlag as exc:
        fail(str(exc))
    click.echo(f"{flag.name} = {flag.setting}")


@flags.command("unset")
@click.argument("name")
@pass_ctx
def flags_unset(ctx: Context, name: str) -> None:
    """Remove flag NAME; what consults it goes back to its default."""
    from instore.flags import unset_flag

    if not unset_flag(ctx.db(), name):
        fail(f"no flag {name!r} is set (see `instore flags list`)")
    click.echo(f"{name} unset")


@flags.command("check")
@click.argument("name")
@click.option("--member", "member_id", type=int, help="Member id (default: an anonymous one).")
@pass_ctx
def flags_check(ctx: Context, name: str, member_id: int | None) -> None:
    """Say whether flag NAME is on for a member, e.g. to answer "why did Ana get it?"."""
    from instore.flags import get_flag, is_enabled

    database = ctx.db()
    flag = get_flag(database, name)
    if flag is None:
        fail(f"no flag {name!r} is set; what consults it uses its default")
    who = f"member {member_id}" if member_id is not None else "an anonymous visitor"
    answer = "on" if is_enabled(database, name, member_id) else "off"
    click.echo(f"{name} ({flag.setting}) is {answer} for {who}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore doctor``, ``instore status`` and the ``instore flags`` group."""
    cli.add_command(doctor)
    cli.add_command(status)
    cli.add_command(flags)
