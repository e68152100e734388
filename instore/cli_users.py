"""``instore user …``: console accounts from the box's shell, for the first manager and repairs.

Someone has to create the first manager before anyone can sign in to the console; after that,
managers add staff from the console's staff page. Both go through ``instore.staff``, and each
change here is written to the audit log as done by ``shell``.
"""

from __future__ import annotations

import sys

import click
from email_validator import EmailNotValidError, validate_email

from instore import audit, hookimpl, members, staff
from instore.cli_support import Context, fail, pass_ctx

MIN_PASSWORD = 8  # the portal's own minimum (NIST SP 800-63B)
MAX_PASSWORD = 256


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        fail(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return password


@click.group()
def user() -> None:
    """Console accounts (staff, manager, admin): add, list, change role."""


@user.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(staff.CONSOLE_ROLES),
    default="staff",
    show_default=True,
    help="staff: live store, moderation, support; manager: + zones, offers, analytics, staff; "
    "admin: + box settings.",
)
@click.option("--name", "display_name", help="Name shown in the console (default: from EMAIL).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@pass_ctx
def user_add(
    ctx: Context, email: str, role: str, display_name: str | None, password_stdin: bool
) -> None:
    """Create a console account, e.g. the first manager: instore user add EMAIL --role manager."""
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        fail(f"{email!r} is not an email address: {exc}")
    db = ctx.db()
    if members.find_by_identifier(db, email) is not None:
        fail(f"{email} already has an account; change its role: instore user role {email} {role}")
    password = _read_password(password_stdin)
    name = display_name or email.split("@", 1)[0]
    try:
        member = staff.create_account(
            db,
            email=email,
            display_name=name,
            password=password,
            role=role,
            actor_id=None,
            actor_name=audit.SHELL_ACTOR,
            actor_role=None,
        )
    except members.AlreadyRegistered:
        fail(f"{email} already has an account; change its role: instore user role {email} {role}")
    click.echo(f"created {role} {member.email} (member {member.id}); sign in at /manage")


@user.command("role")
@click.argument("identifier")
@click.argument("role", type=click.Choice(members.ROLES))
@pass_ctx
def user_role(ctx: Context, identifier: str, role: str) -> None:
    """Change an account's role (shopper takes console access away)."""
    db = ctx.db()
    member = members.find_by_identifier(db, identifier)
    if member is None:
        fail(f"no account {identifier!r} (give an email or a loyalty number)")
    if member.role == role:
        click.echo(f"{identifier} is already {role}")
        return
    try:
        staff.set_role(
            db, member, role, actor_id=None, actor_name=audit.SHELL_ACTOR, actor_role=None
        )
    except staff.RoleChangeRefused as exc:
        fail(str(exc))
    click.echo(f"{identifier}: {member.role} -> {role}")


@user.command("list")
@pass_ctx
def user_list(ctx: Context) -> None:
    """Console accounts, highest role first."""
    accounts = staff.console_accounts(ctx.db())
    if not accounts:
        click.echo(
            "no console accounts yet; create one with: instore user add EMAIL --role manager"
        )
        return
    for account in accounts:
        click.echo(
            f"{account.role:8} {account.email or account.loyalty_number}  {account.display_name}"
        )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore user …``"""
    cli.add_command(user)
