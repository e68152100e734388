"""``instore offers run``: the offers worker as a command (a systemd unit on a box, a child of
``instore demo`` on a laptop)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx


@click.command("run")
@click.option("--once", is_flag=True, help="Handle what is waiting, deliver it, and exit.")
@pass_ctx
def offers_run(ctx: Context, once: bool) -> None:
    """Decide offers and friend notes for presence and sign-in events as they happen.

    Follows the events outbox (zone enter/dwell, store enter, portal sign-in), writes a decision
    for every offer considered and a notification for every one sent, then hands notifications
    to the delivery channels (Web Push and plug-ins). Shoppers' store pages stream the
    notifications live. Stop with SIGTERM or Ctrl-C; it resumes where it stopped.
    """
    from instore.plugins import pm
    from offers.friends import parse_friend_quiet_hours
    from offers.schedule import InvalidSchedule
    from offers.worker import Deliverer, OffersWorker, WorkerSettings, start_deliverer

    config = ctx.config
    settings = WorkerSettings.from_config(config)
    try:  # checked once here, not found out at the first friend who walks in
        parse_friend_quiet_hours(settings.friend_quiet_hours)
    except InvalidSchedule as exc:
        fail(f"bad configuration: offers.friend_quiet_hours: {exc}")
    channels = [channel for found in pm.hook.delivery_channels(config=config) for channel in found]
    worker = OffersWorker(ctx.db(), settings)
    if once:
        deliverer = Deliverer(ctx.db(), channels, settings.poll_seconds)
        deliverer.start_at_end()
        handled = 0
        while batch := worker.run_once():
            handled += batch
        delivered = deliverer.deliver_once()
        click.echo(f"handled {handled} events, made {delivered} deliveries")
        return
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    names = ", ".join(channel.name for channel in channels) or "none"
    click.echo(f"offers worker: following the outbox; delivery channels: {names}")
    thread = start_deliverer(ctx.db, channels, settings.poll_seconds, stopping.is_set)
    worker.run(stopping.is_set)
    if thread is not None:
        thread.join(timeout=5)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore offers run``, added to the ``offers`` group."""
    from offers.cli import offers

    offers.add_command(offers_run)
