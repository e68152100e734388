"""Staff accounts and the audit log: who can use the console, and what they did with it.

Managers add staff and change roles here (the rules are ``instore.staff``'s, shared with
``instore user``); the audit log lists every console change with before and after, filterable by
date and person, and downloads as CSV for an auditor.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from instore import audit, members, staff
from portal.database import get_db
from portal.forms import MAX_NAME, MAX_PASSWORD, MIN_PASSWORD
from portal.manage.access import actor, require_role, role_name

bp = Blueprint("manage_people", __name__, url_prefix="/manage")
require_role(bp, "manager")

ROLE_LABELS = {
    "shopper": _l("No console access"),
    "staff": _l("Staff: live store, moderation, support"),
    "manager": _l("Manager: + floor plan, offers, analytics, staff"),
    "admin": _l("Admin: + box settings"),
}
# The longest audit range one CSV covers: a year is what an annual audit asks for.
MAX_EXPORT_DAYS = 366


def _check_email(form: FlaskForm, field: StringField) -> None:
    try:
        field.data = validate_email(field.data or "", check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationError(_l("Enter a valid email address, like sam@example.com.")) from None


class AddStaffForm(FlaskForm):
    email = StringField(
        _l("Email"),
        validators=[DataRequired(_l("Enter their email address.")), Length(max=254), _check_email],
    )
    display_name = StringField(
        _l("Name"),
        validators=[
            DataRequired(_l("Enter their name.")),
            Length(max=MAX_NAME, message=_l("Keep the name under 60 characters.")),
        ],
    )
    role = SelectField(_l("Role"), choices=[])
    password = PasswordField(
        _l("First password (they can change it later)"),
        validators=[
            DataRequired(_l("Choose a first password for them.")),
            Length(
                min=MIN_PASSWORD,
                max=MAX_PASSWORD,
                message=_l("Use between 8 and 256 characters for the password."),
            ),
        ],
    )


class RoleForm(FlaskForm):
    identifier = StringField(
        _l("Email or loyalty number"),
        validators=[DataRequired(_l("Enter their email or loyalty number.")), Length(max=254)],
    )
    role = SelectField(_l("Role"), choices=[])


def _choices(include_shopper: bool) -> list[tuple[str, str]]:
    roles = staff.grantable_roles(actor().role)
    return [
        (role, str(ROLE_LABELS[role])) for role in roles if include_shopper or role != "shopper"
    ]


def _staff_page(add: AddStaffForm, change: RoleForm, status: int = 200) -> tuple[str, int]:
    return (
        render_template(
            "manage/staff.html",
            accounts=staff.console_accounts(get_db()),
            add_form=add,
            role_form=change,
            me=actor(),
            role_labels=ROLE_LABELS,
        ),
        status,
    )


def _forms() -> tuple[AddStaffForm, RoleForm]:
    add, change = AddStaffForm(prefix="add"), RoleForm(prefix="role")
    add.role.choices = _choices(include_shopper=False)
    change.role.choices = _choices(include_shopper=True)
    return add, change


@bp.route("/staff", endpoint="staff")
def staff_page() -> tuple[str, int]:
    add, change = _forms()
    return _staff_page(add, change)


@bp.route("/staff/add", methods=["POST"])
def add_staff() -> Response | tuple[str, int]:
    add, change = _forms()
    if not add.validate_on_submit():
        return _staff_page(add, change, 400)
    me = actor()
    try:
        member = staff.create_account(
            get_db(),
            email=add.email.data or "",
            display_name=add.display_name.data or "",
            password=add.password.data or "",
            role=add.role.data or "staff",
            actor_id=me.id,
            actor_name=me.display_name,
            actor_role=me.role,
        )
    except members.AlreadyRegistered:
        add.email.errors = [
            _("That email already has an account. Give it a role with the form below instead.")
        ]
        return _staff_page(add, change, 400)
    except staff.RoleChangeRefused as exc:
        add.role.errors = [str(exc)]
        return _staff_page(add, change, 400)
    flash(_("%(name)s can now sign in to the console.", name=member.display_name))
    return redirect(url_for("manage_people.staff"))


@bp.route("/staff/role", methods=["POST"])
def change_role() -> Response | tuple[str, int]:
    add, change = _forms()
    if not change.validate_on_submit():
        return _staff_page(add, change, 400)
    db = get_db()
    target = members.find_by_identifier(db, change.identifier.data or "")
    if target is None:
        change.identifier.errors = [_("There is no account with that email or loyalty number.")]
        return _staff_page(add, change, 400)
    me = actor()
    try:
        staff.set_role(
            db,
            target,
            change.role.data or "",
            actor_id=me.id,
            actor_name=me.display_name,
            actor_role=me.role,
        )
    except staff.RoleChangeRefused as exc:
        change.role.errors = [str(exc)]
        return _staff_page(add, change, 400)
    role = role_name(change.role.data or "")
    flash(_("%(name)s's role is now %(role)s.", name=target.display_name, role=role))
    return redirect(url_for("manage_people.staff"))


def _local_day(text: str | None, field: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(_("%(field)s must be a date like 2026-03-31.", field=field))
        return None


def _range() -> tuple[datetime | None, datetime | None, list[str]]:
    """The from/to dates (store-local days, inclusive) as UTC instants, with any errors."""
    errors: list[str] = []
    zone = ZoneInfo(current_app.config["INSTORE"]["store"]["timezone"])
    start = _local_day(request.args.get("from"), _("From"), errors)
    end = _local_day(request.args.get("to"), _("To"), errors)
    if start and end and start > end:
        errors.append(_("The start date is after the end date."))
    since = datetime.combine(start, time(), zone) if start else None
    until = datetime.combine(end + timedelta(days=1), time(), zone) if end else None
    return since, until, errors


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.route("/audit", endpoint="audit")
def audit_page() -> tuple[str, int]:
    since, until, errors = _range()
    entries = (
        []
        if errors
        else audit.entries(
            get_db(),
            since=since,
            until=until,
            actor_id=_int_arg("actor"),
            before_id=_int_arg("before"),
        )
    )
    more = len(entries) == audit.PAGE_SIZE
    return (
        render_template(
            "manage/audit.html",
            entries=entries,
            errors=errors,
            accounts=staff.console_accounts(get_db()),
            args={k: v for k, v in request.args.items() if k in ("from", "to", "actor")},
            next_before=entries[-1].id if more else None,
        ),
        400 if errors else 200,
    )


@bp.route("/audit.csv")
def audit_csv() -> Response | tuple[str, int]:
    since, until, errors = _range()
    if not errors and since and until and (until - since).days > MAX_EXPORT_DAYS:
        errors.append(_("Export at most a year at a time."))
    if errors:
        return audit_page()[0], 400
    rows = audit.entries(get_db(), since=since, until=until, actor_id=_int_arg("actor"), limit=None)
    return Response(
        audit.to_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="instore-audit.csv"'},
    )
