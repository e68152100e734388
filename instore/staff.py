"""Console accounts: who is staff, manager or admin, and the rules for changing that.

The rules live here, not in the console page, so ``instore user`` at the shell and the staff page
enforce the same ones: nobody changes their own role (a manager cannot lock themselves out or
promote themselves), and only an admin grants or takes away the admin role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from instore import audit, members
from instore.db import transaction

# Higher may do everything lower may; shoppers rank 0 and never reach the console.
ROLE_RANK: Mapping[str, int] = {"shopper": 0, "staff": 1, "manager": 2, "admin": 3}
CONSOLE_ROLES: tuple[str, ...] = ("staff", "manager", "admin")


class RoleChangeRefused(ValueError):
    """A role change the rules do not allow; the message says why."""


@dataclass(frozen=True, slots=True)
class StaffAccount:
    id: int
    display_name: str
    email: str | None
    loyalty_number: str
    role: str
    created_at: str


def rank(role: str) -> int:
    return ROLE_RANK.get(role, 0)


def console_accounts(db: sqlite_utils.Database) -> list[StaffAccount]:
    """Everyone who can open the console, highest role first."""
    rows = db.conn.execute(
        "SELECT id, display_name, email, loyalty_number, role, created_at FROM members"
        " WHERE role != 'shopper'"
        " ORDER BY CASE role WHEN 'admin' THEN 0 WHEN 'manager' THEN 1 ELSE 2 END, display_name"
    ).fetchall()
    return [StaffAccount(*row) for row in rows]


def grantable_roles(actor_role: str | None) -> tuple[str, ...]:
    """Roles ``actor_role`` may give or take (None is the shell, which may do anything)."""
    if actor_role is None or actor_role == "admin":
        return members.ROLES
    if actor_role == "manager":
        return ("shopper", "staff", "manager")
    return ()


def check_role_change(
    actor_id: int | None, actor_role: str | None, target: members.Member, new_role: str
) -> None:
    """Raise ``RoleChangeRefused`` unless ``actor`` may move ``target`` to ``new_role``."""
    if new_role not in members.ROLES:
        raise RoleChangeRefused(f"unknown role {new_role!r}; use one of {', '.join(members.ROLES)}")
    if actor_id is not None and actor_id == target.id:
        raise RoleChangeRefused("you cannot change your own role; ask another manager")
    allowed = grantable_roles(actor_role)
    if new_role not in allowed or target.role not in allowed:
        raise RoleChangeRefused("only an admin can give or take away the admin role")


def _state(member: members.Member) -> dict[str, Any]:
    return {"email": member.email, "display_name": member.display_name, "role": member.role}


def set_role(
    db: sqlite_utils.Database,
    target: members.Member,
    new_role: str,
    *,
    actor_id: int | None,
    actor_name: str,
    actor_role: str | None,
) -> members.Member:
    """Change ``target``'s role after the rules, with its audit entry, in one transaction."""
    check_role_change(actor_id, actor_role, target, new_role)
    with transaction(db):
        db.conn.execute("UPDATE members SET role = ? WHERE id = ?", (new_role, target.id))
        changed = members.get_member(db, target.id)
        assert changed is not None
        audit.record(
            db,
            actor_id,
            actor_name,
            "staff.role",
            f"member:{target.id}",
            _state(target),
            _state(changed),
        )
    return changed


def create_account(
    db: sqlite_utils.Database,
    *,
    email: str,
    display_name: str,
    password: str,
    role: str,
    actor_id: int | None,
    actor_name: str,
    actor_role: str | None,
) -> members.Member:
    """A new console account; raises ``members.AlreadyRegistered`` or ``RoleChangeRefused``."""
    if role not in CONSOLE_ROLES:
        raise RoleChangeRefused(
            f"a staff account needs one of the roles {', '.join(CONSOLE_ROLES)}"
        )
    if role not in grantable_roles(actor_role):
        raise RoleChangeRefused("only an admin can give the admin role")
    with transaction(db):
        member = members.create_member(
            db, display_name=display_name, password=password, email=email, role=role
        )
        audit.record(
            db, actor_id, actor_name, "staff.create", f"member:{member.id}", None, _state(member)
        )
    return member
