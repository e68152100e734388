"""``instore uplink run`` and ``instore uplink status``: the chain uplink as a command.

A systemd unit on a chain's boxes (deploy/systemd/instore-uplink.service); the library is
``instore.uplink``.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx

# How many of headquarters' latest messages `instore uplink status` lists.
STATUS_MESSAGES = 5


@click.group()
def uplink() -> None:
    """Chain uplink: send this store's events to headquarters' MQTT broker, take its messages.

    \b
    Configure [uplink] in the config file (host, TLS files or username/password), then:
      instore uplink status      # settings, topics, events waiting, messages from headquarters
      instore uplink run         # what the instore-uplink unit runs
    """


@uplink.command("run")
@pass_ctx
def uplink_run(ctx: Context) -> None:
    """Publish the events outbox to the broker and apply headquarters' messages, until stopped.

    Each event goes to <prefix>/<store>/events/<kind> with QoS 1; the uplink's place in the
    outbox moves only when the broker has acknowledged an event, so an outage or a restart
    sends again what was not acknowledged and loses nothing. Offer catalogues and member
    updates arrive on <prefix>/<store>/inbox/offers and …/inbox/members and are applied once
    each. <prefix>/<store>/status is "online" while connected and "offline" after (the Last
    Will). Offline, events wait in the database. Stop with SIGTERM or Ctrl-C.
    """
    from instore.uplink import Uplink
    from instore.uplink_config import UplinkConfigError, UplinkSettings, check_files, make_client

    settings = UplinkSettings.from_config(ctx.config)
    if not settings.enabled:
        fail("the uplink is off: set [uplink] enabled = true and host in the config file")
    try:
        check_files(settings)
        make_client(settings)  # builds the TLS context: a bad certificate is found now
    except UplinkConfigError as exc:
        fail(f"bad configuration: {exc}")
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(
        f"uplink: store {settings.store_id} to {settings.broker}, "
        f"topics {settings.store_topic}/events/<kind>, inbox {settings.inbox_filter}"
    )
    Uplink(ctx.db(), settings).run(stopping.is_set)


@uplink.command("status")
@pass_ctx
def uplink_status(ctx: Context) -> None:
    """Show the uplink's settings, how many events wait, and headquarters' latest messages.

    Reads the database only; it does not contact the broker.
    """
    from instore import events
    from instore.uplink import CONSUMER, backlog
    from instore.uplink_config import UplinkSettings

    settings = UplinkSettings.from_config(ctx.config)
    db = ctx.db()
    click.echo(f"enabled: {'yes' if settings.enabled else 'no'}")
    click.echo(f"broker: {settings.broker if settings.host else '(not set)'}")
    click.echo(f"events topic: {settings.store_topic}/events/<kind>")
    click.echo(f"inbox topic: {settings.inbox_filter}")
    row = db.conn.execute(
        "SELECT updated_at FROM cursors WHERE consumer = ?", (CONSUMER,)
    ).fetchone()
    click.echo(f"acknowledged up to event: {events.cursor_position(db, CONSUMER)}")
    click.echo(f"last acknowledgement: {row[0] if row else 'never'}")
    click.echo(f"events waiting: {backlog(db)}")
    messages = db.conn.execute(
        "SELECT applied_at, topic, message_id, outcome, detail FROM uplink_applied"
        " ORDER BY applied_at DESC, rowid DESC LIMIT ?",
        (STATUS_MESSAGES,),
    ).fetchall()
    if not messages:
        click.echo("messages from headquarters: none yet")
        return
    click.echo("messages from headquarters (newest first):")
    for applied_at, topic, message_id, outcome, detail in messages:
        click.echo(
            f"  {applied_at}  {topic}  {message_id}  {outcome}" + (f": {detail}" if detail else "")
        )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore uplink run`` and ``instore uplink status``."""
    cli.add_command(uplink)
