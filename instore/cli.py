"""The ``instore`` command. Each command's docstring is its ``--help``.

Mistakes a person can fix (bad config, bad MAC, unknown session) exit with status 2 and one line
saying what to fix; they never print a traceback.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from instore import __version__
from instore.cli_support import Context, fail, pass_ctx
from instore.config import ConfigError, load_config, shown_value
from instore.db import DatabaseError, connect, open_database, schema_versions, upgrade
from instore.logs import setup_logging
from instore.nudge import send_nudge
from instore.supervise import run_children

DEMO_DATABASE = "var/demo/instore.db"
GUNICORN_CONF = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="INSTORE_CONFIG",
    help="TOML config file (default: $INSTORE_CONFIG, else /etc/instore/instore.toml if present).",
)
@click.version_option(__version__, prog_name="instore")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """instore: captive portal, presence, offers and community for one store's edge box."""
    ctx.obj = Context(config_path)


@main.group()
def db() -> None:
    """Database schema: upgrade and status."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply pending schema migrations (also done automatically when a service starts)."""
    try:
        database = connect(ctx.config.database_path, ctx.config["database"]["busy_timeout_ms"])
        applied = upgrade(database)
    except DatabaseError as exc:
        fail(str(exc))
    for step in applied:
        click.echo(f"applied {step.package} {step.version}: {step.description}")
    if not applied:
        click.echo("schema is up to date")


@db.command("status")
@pass_ctx
def db_status(ctx: Context) -> None:
    """Show the database file and each package's schema version."""
    database = ctx.db()
    click.echo(f"database: {ctx.config.database_path}")
    for package, version in sorted(schema_versions(database).items()):
        click.echo(f"{package}: schema version {version}")


@main.command("config")
@pass_ctx
def config_show(ctx: Context) -> None:
    """Check the configuration and print the settings in force (secrets hidden)."""
    cfg = ctx.config
    click.echo(
        f"# source: {cfg.source}" + (f" + {', '.join(cfg.overrides)}" if cfg.overrides else "")
    )
    for section, values in cfg.as_dict().items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {shown_value(key, value)!r}")


@main.command()
@click.option("--all", "include_ended", is_flag=True, help="Include ended and revoked sessions.")
@pass_ctx
def clients(ctx: Context, include_ended: bool) -> None:
    """List authorized WiFi clients (live sessions)."""
    from instore import sessions

    rows = sessions.list_sessions(ctx.db(), include_ended=include_ended)
    if not rows:
        click.echo("no live sessions" if not include_ended else "no sessions")
        return
    header = f"{'MAC':<17}  {'IP':<15}  {'MEMBER':<20}  {'STARTED':<20}  {'EXPIRES':<20}  STATE"
    click.echo(header)
    for row in rows:
        state = f"revoked ({row['revoked_reason']})" if row["revoked_at"] else "live"
        click.echo(
            f"{row['mac']:<17}  {row['ip']:<15}  {(row['display_name'] or '-')[:20]:<20}  "
            f"{row['started_at']:<20}  {row['expires_at']:<20}  {state}"
        )


@main.command()
@click.argument("mac")
@pass_ctx
def deauth(ctx: Context, mac: str) -> None:
    """Revoke every live session of MAC; the gatekeeper then closes the network for it."""
    from instore import sessions

    try:
        ended = sessions.revoke_mac(ctx.db(), mac, "revoked by operator")
    except sessions.InvalidClient as exc:
        fail(str(exc))
    if not ended:
        fail(f"no live session for {sessions.normalize_mac(mac)} (see `instore clients`)")
    send_nudge(ctx.config["gateway"]["nudge_socket"])
    click.echo(f"revoked {len(ended)} session(s) for {sessions.normalize_mac(mac)}")


def _gunicorn_command(conf: Path) -> list[str]:
    if not conf.exists():
        fail(f"gunicorn config {conf} not found; pass --gunicorn-config PATH")
    return [sys.executable, "-m", "gunicorn", "-c", str(conf)]


@main.command()
@click.option(
    "--gunicorn-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=GUNICORN_CONF,
    show_default=True,
    help="gunicorn settings file.",
)
@pass_ctx
def portal(ctx: Context, gunicorn_config: Path) -> None:
    """Run the shopper-facing portal under gunicorn (bind, workers, threads from [portal])."""
    ctx.db()  # migrate once here, not racing in every worker, and fail early on a bad database
    if ctx.config_path:
        os.environ["INSTORE_CONFIG"] = str(Path(ctx.config_path).resolve())
    command = _gunicorn_command(gunicorn_config)
    os.execv(command[0], command)  # noqa: S606 - replace this process: systemd supervises gunicorn


@main.command()
@click.option(
    "--bind", default="127.0.0.1:8080", show_default=True, help="Where the portal listens."
)
@click.option("--reset", is_flag=True, help="Start from an empty demo database.")
def demo(bind: str, reset: bool) -> None:
    """Run the whole product on a simulated store: no root, no radios, embedded SQLite."""
    from instore.demo import seed_demo

    os.environ.setdefault("INSTORE_DATABASE_PATH", DEMO_DATABASE)
    os.environ["INSTORE_PORTAL_BIND"] = bind
    os.environ.setdefault("INSTORE_PORTAL_PUBLIC_URL", f"http://{bind}")
    # No root and no radios: the in-memory gateway and MACs derived from IPs.
    os.environ["INSTORE_GATEWAY_BACKEND"] = "memory"
    os.environ["INSTORE_HARDWARE_CLIENT_LOOKUP"] = "demo"
    os.environ["INSTORE_PORTAL_DEMO_CONTROLS"] = "true"
    # A demo visitor should see more than one offer in their first minutes.
    os.environ.setdefault("INSTORE_OFFERS_GLOBAL_COOLDOWN_SECONDS", "60")
    os.environ.setdefault("INSTORE_OFFERS_FRIEND_COOLDOWN_SECONDS", "300")
    os.environ.setdefault(
        "INSTORE_GATEWAY_NUDGE_SOCKET", str(Path(DEMO_DATABASE).parent / "gk.sock")
    )
    try:
        config = load_config(None)
    except ConfigError as exc:
        fail(f"bad configuration: {exc}")
    setup_logging(config["logging"]["level"])
    if reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{config.database_path}{suffix}").unlink(missing_ok=True)
    new_store = not Path(config.database_path).exists()
    database = open_database(config.database_path)
    accounts = seed_demo(database, config["portal"]["terms_version"])
    from presence.floorplan_demo import seed_demo_floorplan

    seed_demo_floorplan(database)
    from offers.demo import seed_demo_offers

    seed_demo_offers(database, config["portal"]["terms_version"])
    from community.demo import seed_demo_community

    seed_demo_community(database)
    if new_store:
        # Two weeks of past visits, so the console's analytics show data at first sight. Only
        # on a new store: a restarted demo already has its history, and its own since.
        from offers.demo_history import DEMO_HISTORY_DAYS, seed_demo_history
        from presence.reports import catch_up_dwell

        began = time.perf_counter()
        history = seed_demo_history(database, config)
        catch_up_dwell(database)
        click.echo(
            f"seeded {DEMO_HISTORY_DAYS} days of history ({history.visits:,} visits) "
            f"in {time.perf_counter() - began:.1f} s"
        )
    click.echo(f"\ninstore demo: {config['store']['name']} at http://{bind}\n")
    click.echo(f"  {'ROLE':<9} {'SIGN IN WITH':<20} {'PASSWORD':<18} LOYALTY NUMBER")
    for account, loyalty in accounts:
        click.echo(f"  {account.role:<9} {account.email:<20} {account.password:<18} {loyalty}")
    click.echo(
        f"\n  Phone view: http://{bind}/signin   (or sign up as a new member)\n"
        f"  Console:    http://{bind}/manage   (the manager or staff account above)\n"
        f"  Database:   {config.database_path}\n  Stop with Ctrl-C.\n"
    )
    instore = [sys.executable, "-m", "instore"]
    sys.exit(
        run_children(
            {
                "portal": _gunicorn_command(GUNICORN_CONF),
                "gatekeeper": [*instore, "gatekeeper"],
                "presence": [*instore, "presence", "run", "--source", "sim"],
                "offers": [*instore, "offers", "run"],
            }
        )
    )


def _register_plugin_commands() -> None:
    """Packages add their own command groups (``instore presence …``) through a hook."""
    from instore.plugins import pm

    pm.hook.register_commands(cli=main)


_register_plugin_commands()
