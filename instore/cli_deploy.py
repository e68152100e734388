"""``instore deploy …``: the box's system files, rendered from the one config file."""

from __future__ import annotations

from pathlib import Path

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx

CHOICES = ("hostapd", "dnsmasq", "nftables", "all")


@click.group()
def deploy() -> None:
    """Render the access point, DHCP/DNS and firewall files from the instore config."""


@deploy.command("render")
@click.argument("what", type=click.Choice(CHOICES))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the files into this directory (hostapd.conf, dnsmasq.conf, instore.nft) "
    "instead of printing one; required for 'all'.",
)
@pass_ctx
def deploy_render(ctx: Context, what: str, out_dir: Path | None) -> None:
    """Print or write hostapd, dnsmasq or nftables configuration rendered from the config.

    hostapd.conf goes to /etc/hostapd/hostapd.conf (written mode 0600: it may hold the WiFi
    password), dnsmasq.conf to /etc/dnsmasq.d/instore.conf; the gatekeeper loads the nftables
    table itself, instore.nft is for reading. Nothing is written if any file cannot be rendered.
    """
    from instore.deploy_render import RENDERED, RenderError, render, render_to

    whats = list(RENDERED) if what == "all" else [what]
    try:
        if out_dir is None:
            if what == "all":
                fail("'all' writes several files: add --out DIR")
            click.echo(render(ctx.config, what), nl=False)
            return
        written = render_to(ctx.config, whats, out_dir)
    except RenderError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write into {out_dir}: {exc.strerror}")
    for path, installed_as in written:
        click.echo(f"wrote {path}  (on the box: {installed_as})")


@deploy.command("config-template")
def deploy_config_template() -> None:
    """Print the commented instore.toml that install.sh writes to a new box.

    Every setting is there with its default, commented out; the database, nudge socket, gateway
    and client lookup are set for a box. install.sh writes it only where no config exists.
    """
    from instore.deploy_render import RenderError, box_config

    try:
        click.echo(box_config(), nl=False)
    except RenderError as exc:
        fail(str(exc))


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore deploy …``"""
    cli.add_command(deploy)
