"""``instore gatekeeper …``: the one command allowed to change the firewall."""

from __future__ import annotations

import signal
import sys

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx
from instore.db import connect


@click.group(invoke_without_command=True)
@click.option(
    "--once", is_flag=True, help="Reconcile once and exit: 0 in sync, 1 changed, 2 failed."
)
@click.option("--backend", help="Gateway backend (default: [gateway] backend).")
@click.pass_context
def gatekeeper(click_ctx: click.Context, once: bool, backend: str | None) -> None:
    """Keep the firewall equal to the signed-in sessions (needs CAP_NET_ADMIN for nftables).

    Reconciles on a nudge from the portal, whenever the database changes, when a session ends,
    and with a full check of the firewall every [gateway] reconcile_seconds, which repairs a
    flushed or edited table.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from hardware.gatekeeper import Gatekeeper
    from hardware.gateway import GatewayError
    from instore.nudge import NudgeListener
    from instore.plugins import pm

    ctx: Context = click_ctx.obj
    cfg = ctx.config
    name = backend or cfg["gateway"]["backend"]
    gateway = pm.hook.gateway_backend(name=name, config=cfg)
    if gateway is None:
        fail(f"unknown gateway backend {name!r} (built in: memory, nftables)")
    keeper = Gatekeeper(
        ctx.db(),
        gateway,
        name,
        cfg["portal"]["idle_minutes"],
        open_reader=lambda: connect(cfg.database_path, cfg["database"]["busy_timeout_ms"]),
    )
    if once:
        keeper.start()
        try:
            result = keeper.reconcile(full=True)
        except GatewayError as exc:
            fail(str(exc))
        click.echo(
            f"added {len(result.added)}, removed {len(result.removed)}, "
            f"drift fixed {result.drift_fixed}, authorized {result.authorized}"
        )
        sys.exit(1 if result.changed else 0)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    listener = NudgeListener(cfg["gateway"]["nudge_socket"])
    try:
        keeper.run(listener, cfg["gateway"]["reconcile_seconds"], lambda: bool(stopping))
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


@gatekeeper.command("status")
@pass_ctx
def gatekeeper_status(ctx: Context) -> None:
    """Show whether the firewall table is present, who is authorized, and the last reconcile."""
    from hardware.gatekeeper import status, wanted_clients
    from hardware.gateway import GatewayError
    from instore.plugins import pm

    cfg = ctx.config
    database = ctx.db()
    state = status(database)
    live = len(wanted_clients(database))
    click.echo(f"backend:          {cfg['gateway']['backend']}")
    if cfg["gateway"]["backend"] == "nftables":
        gateway = pm.hook.gateway_backend(name="nftables", config=cfg)
        try:
            present = gateway.table_present()
            click.echo(f"nftables table:   {'present' if present else 'MISSING'} (inet instore)")
            if present:
                click.echo(f"in the firewall:  {len(gateway.listing())} client(s)")
        except GatewayError as exc:
            click.echo(f"nftables table:   cannot read ({exc})")
    click.echo(f"live sessions:    {live}")
    if state is None:
        click.echo("gatekeeper:       has never run against this database")
        return
    click.echo(f"gatekeeper pid:   {state['pid']} (started {state['started_at']})")
    click.echo(f"authorized:       {state['authorized']} at the last reconcile")
    click.echo(f"last reconcile:   {state['last_reconcile_at'] or 'never'}")
    click.echo(f"last full check:  {state['last_full_check_at'] or 'never'}")
    click.echo(
        f"totals:           {state['added_total']} added, {state['removed_total']} removed, "
        f"{state['drift_fixed_total']} drift fixed"
    )
    if state["last_error"]:
        click.echo(f"last error:       {state['last_error']} ({state['last_error_at']})")


@gatekeeper.command("render")
@click.argument("what", type=click.Choice(["nftables", "dnsmasq"]))
@pass_ctx
def gatekeeper_render(ctx: Context, what: str) -> None:
    """Print the nftables ruleset or the dnsmasq snippet rendered from the config.

    The gatekeeper loads the nftables table itself; the dnsmasq snippet goes to
    /etc/dnsmasq.d/instore.conf (DHCP option 114, probe host names, walled-garden nftset=).
    """
    from hardware.dnsmasq import render_dnsmasq
    from hardware.gateway import GatewayError
    from hardware.nftables import render_ruleset

    try:
        text = render_ruleset(ctx.config, []) if what == "nftables" else render_dnsmasq(ctx.config)
    except GatewayError as exc:
        fail(str(exc))
    click.echo(text, nl=False)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore gatekeeper …``"""
    cli.add_command(gatekeeper)
