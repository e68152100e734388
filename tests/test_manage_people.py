"""Staff accounts and the audit log, from the console and from ``instore user`` at the shell."""

from __future__ import annotations

import csv
import io

import sqlite_utils
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from instore import audit, members
from instore.cli import main
from instore.config import Config
from tests.conftest import AuthActions, ConsoleActions


def user_cli(config: Config, *args: str, stdin: str | None = None) -> Result:
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    return CliRunner().invoke(main, ["user", *args], env=env, input=stdin)


def audit_rows(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    return [(e.actor_name, e.action, e.target) for e in audit.entries(db)]


def test_first_manager_from_the_shell_can_sign_in(
    config: Config, db: sqlite_utils.Database, client: FlaskClient
) -> None:
    result = user_cli(
        config,
        "add",
        "Boss@Example.com",
        "--role",
        "manager",
        "--password-stdin",
        stdin="s3cret-pass\n",
    )
    assert result.exit_code == 0, result.output
    assert "created manager boss@example.com" in result.output
    signin = client.post(
        "/manage/signin", data={"identifier": "boss@example.com", "password": "s3cret-pass"}
    )
    assert signin.status_code == 302
    assert client.get("/manage/staff").status_code == 200
    assert audit_rows(db) == [("shell", "staff.create", "member:1")]
    listed = user_cli(config, "list")
    assert "manager  boss@example.com" in listed.output


def test_user_cli_bad_input_exits_2_with_what_to_fix(
    config: Config, db: sqlite_utils.Database
) -> None:
    not_email = user_cli(config, "add", "boss", "--password-stdin", stdin="s3cret-pass\n")
    assert not_email.exit_code == 2 and "not an email address" in not_email.output
    short = user_cli(config, "add", "b@example.com", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "8 to 256 characters" in short.output
    user_cli(config, "add", "b@example.com", "--password-stdin", stdin="s3cret-pass\n")
    again = user_cli(config, "add", "b@example.com", "--password-stdin", stdin="s3cret-pass\n")
    assert again.exit_code == 2 and "instore user role b@example.com" in again.output
    unknown = user_cli(config, "role", "zoe@example.com", "staff")
    assert unknown.exit_code == 2 and "no account" in unknown.output
    bad_role = user_cli(config, "role", "b@example.com", "owner")
    assert bad_role.exit_code == 2
    assert len(list(db.query("SELECT id FROM members"))) == 1


def test_role_cli_promotes_a_shopper_and_is_audited(
    config: Config, db: sqlite_utils.Database, auth: AuthActions
) -> None:
    auth.create()
    result = user_cli(config, "role", "ana@example.com", "staff")
    assert result.exit_code == 0 and "shopper -> staff" in result.output
    entry = audit.entries(db)[0]
    assert entry.action == "staff.role" and entry.changes() == [("role", "shopper", "staff")]


def test_manager_adds_staff_who_can_then_sign_in(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    manager = console.signin("manager")
    response = client.post(
        "/manage/staff/add",
        data={
            "add-email": "Sam@Example.com",
            "add-display_name": "Sam",
            "add-role": "staff",
            "add-password": "first-pass-1",
        },
    )
    assert response.status_code == 302
    sam = members.find_by_identifier(db, "sam@example.com")
    assert sam is not None and sam.role == "staff"
    assert audit_rows(db) == [(manager.display_name, "staff.create", f"member:{sam.id}")]
    page = client.get("/manage/staff").get_data(as_text=True)
    assert "sam@example.com" in page


def test_add_staff_bad_inputs_return_the_form_with_messages(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("manager")
    good = {
        "add-email": "sam@example.com",
        "add-display_name": "Sam",
        "add-role": "staff",
        "add-password": "first-pass-1",
    }
    cases = {
        "add-email": ("not-an-email", "valid email address"),
        "add-display_name": ("", "Enter their name"),
        "add-password": ("short", "between 8 and 256"),
        "add-role": ("admin", "Not a valid choice"),  # a manager cannot make admins
    }
    for key, (value, message) in cases.items():
        response = client.post("/manage/staff/add", data={**good, key: value})
        assert response.status_code == 400, key
        assert message in response.get_data(as_text=True), key
    console.create("staff", "taken@example.com")
    taken = client.post("/manage/staff/add", data={**good, "add-email": "taken@example.com"})
    assert taken.status_code == 400
    assert "already has an account" in taken.get_data(as_text=True)
    assert members.find_by_identifier(db, "sam@example.com") is None


def test_role_rules_no_self_change_and_admin_only_by_admin(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    manager = console.signin("manager")
    admin = console.create("admin")
    me = client.post(
        "/manage/staff/role", data={"role-identifier": manager.email, "role-role": "staff"}
    )
    assert me.status_code == 400 and "your own role" in me.get_data(as_text=True)
    other = client.post(
        "/manage/staff/role", data={"role-identifier": admin.email, "role-role": "staff"}
    )
    assert other.status_code == 400 and "only an admin" in other.get_data(as_text=True)
    nobody = client.post(
        "/manage/staff/role", data={"role-identifier": "x@example.com", "role-role": "staff"}
    )
    assert nobody.status_code == 400 and "no account" in nobody.get_data(as_text=True)
    assert members.get_member(db, admin.id).role == "admin"  # type: ignore[union-attr]
    assert audit.entries(db) == []


def test_audit_log_filters_pages_and_exports_csv(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    manager = console.signin("manager")
    for n in range(3):
        audit.record(
            db,
            manager.id,
            manager.display_name,
            "offer.update",
            f"offer:{n}",
            {"a": n},
            {"a": n + 1},
        )
    audit.record(db, None, "shell", "staff.create", "member:9", None, {"role": "<b>staff</b>"})
    page = client.get("/manage/audit")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "offer:2" in text and "member:9" in text
    assert "<b>staff</b>" not in text and "&lt;b&gt;staff&lt;/b&gt;" in text
    mine = client.get(f"/manage/audit?actor={manager.id}").get_data(as_text=True)
    assert "offer:1" in mine and "member:9" not in mine
    bad = client.get("/manage/audit?from=yesterday")
    assert bad.status_code == 400 and "must be a date" in bad.get_data(as_text=True)
    backwards = client.get("/manage/audit?from=2026-03-02&to=2026-03-01")
    assert backwards.status_code == 400 and "after the end date" in backwards.get_data(as_text=True)
    exported = client.get("/manage/audit.csv")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [r["target"] for r in rows] == ["member:9", "offer:2", "offer:1", "offer:0"]
    assert rows[1]["before"] == '{"a": 2}' and rows[1]["after"] == '{"a": 3}'
    assert client.get("/manage/audit.csv?to=bad").status_code == 400


def test_audit_log_is_for_managers(client: FlaskClient, console: ConsoleActions) -> None:
    console.signin("staff")
    assert client.get("/manage/audit").status_code == 403
    assert client.get("/manage/audit.csv").status_code == 403
