"""One member as moderators see them, and the measures against them: silence, suspend, ban, lift.

Routes on the ``manage_moderation`` blueprint. The page shows what the member wrote, the reports
on it and by them, every decision about them and their sanctions. Suspending or banning also
revokes their WiFi sessions; the gatekeeper is nudged after the change commits so the firewall
drops their phone at once rather than at its next full check.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange, Optional

from community import moderation_queue, sanctions
from instore import members
from instore.clock import utcnow
from instore.db import atomic
from portal.account import nudge_gatekeeper
from portal.database import get_db
from portal.manage.access import actor, record
from portal.manage.moderation import bp, reason_field
from portal.moderation import Labels, tell_member

_DAYS_MESSAGE = _l("Give the number of days, 1 to 365.")


class SilenceForm(FlaskForm):
    days = IntegerField(
        _l("Days read-only"),
        validators=[
            InputRequired(_DAYS_MESSAGE),
            NumberRange(min=1, max=sanctions.MAX_DAYS, message=_DAYS_MESSAGE),
        ],
    )
    reason = reason_field()


class SuspendForm(FlaskForm):
    days = IntegerField(
        _l("Days suspended (empty: until lifted)"),
        validators=[Optional(), NumberRange(min=1, max=sanctions.MAX_DAYS, message=_DAYS_MESSAGE)],
    )
    reason = reason_field()


class BanForm(FlaskForm):
    reason = reason_field()


class LiftForm(FlaskForm):
    reason = reason_field(_l("Reason (for the records)"))


def _member_or_404(member_id: int) -> members.Member:
    member = members.get_member(get_db(), member_id)
    if member is None:
        abort(404)
    return member


def _member_page(
    member: members.Member,
    failed: dict[str, FlaskForm] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    db = get_db()
    now = utcnow()
    history = sanctions.sanctions_of(db, member.id)
    forms: dict[str, FlaskForm] = {
        "silence": SilenceForm(prefix="silence"),
        "suspend": SuspendForm(prefix="suspend"),
        "ban": BanForm(prefix="ban"),
    }
    liftable = [
        s for s in history if s.lifted_at is None and (s.kind == "warning" or s.in_force(now))
    ]
    forms.update({f"lift-{s.id}": LiftForm(prefix=f"lift-{s.id}") for s in liftable})
    forms.update(failed or {})
    return (
        render_template(
            "manage/moderation_member.html",
            member=member,
            items=moderation_queue.items_by(db, member.id),
            flags_on=moderation_queue.flags_on_items_of(db, member.id),
            flags_by=moderation_queue.flags_by(db, member.id),
            actions=sanctions.actions_about(db, member.id),
            sanctions=history,
            liftable={s.id for s in liftable},
            bans=sanctions.bans_of(db, member.id),
            forms=forms,
            error=error,
            labels=Labels,
            now=now,
        ),
        status,
    )


@bp.route("/member/<int:member_id>")
def member(member_id: int) -> tuple[str, int]:
    """Everything moderation knows about one member, with the measures a moderator may take."""
    return _member_page(_member_or_404(member_id))


def _apply(
    found: members.Member,
    name: str,
    form: FlaskForm,
    change: Any,
    said: str,
) -> Response | tuple[str, int]:
    """Validate ``form``, run ``change()`` with its audit entry in one transaction, then go back."""
    if not form.validate_on_submit():
        return _member_page(found, {name: form}, status=400)
    try:
        with atomic(get_db(), f"moderation_{name.replace('-', '_')}"):
            change()
    except sanctions.SanctionError as exc:
        return _member_page(found, {name: form}, str(exc), 400)
    flash(said)
    return redirect(url_for("manage_moderation.member", member_id=found.id))


@bp.post("/member/<int:member_id>/silence")
def silence(member_id: int) -> Response | tuple[str, int]:
    """Read-only for N days: screening refuses their posts meanwhile."""
    found = _member_or_404(member_id)
    form = SilenceForm(prefix="silence")

    def change() -> None:
        reason = (form.reason.data or "").strip()
        days = form.days.data
        action_id = sanctions.silence(get_db(), actor().id, found.id, days, reason, utcnow())
        record(
            "moderation.silence",
            f"member {found.id}",
            after={"days": days, "reason": reason, "action_id": action_id},
        )
        tell_member(
            found.id,
            lambda: _("A moderator made your account read-only for %(days)d days.", days=days),
            reason,
        )

    return _apply(found, "silence", form, change, _("Member silenced."))


@bp.post("/member/<int:member_id>/suspend")
def suspend(member_id: int) -> Response | tuple[str, int]:
    """Cannot sign in for N days or until lifted; their WiFi sessions end now."""
    found = _member_or_404(member_id)
    form = SuspendForm(prefix="suspend")

    def change() -> None:
        reason = (form.reason.data or "").strip()
        days = form.days.data
        done = sanctions.suspend(get_db(), actor().id, found.id, days, reason, utcnow())
        record(
            "moderation.suspend",
            f"member {found.id}",
            after={
                "days": days,
                "reason": reason,
                "action_id": done.action_id,
                "revoked_sessions": done.revoked_sessions,
            },
        )

    response = _apply(found, "suspend", form, change, _("Member suspended and taken off the WiFi."))
    if isinstance(response, Response):
        nudge_gatekeeper()  # after the commit: the gatekeeper reads the sessions table
    return response


@bp.post("/member/<int:member_id>/ban")
def ban(member_id: int) -> Response | tuple[str, int]:
    """Expel the member; their email and loyalty number cannot sign up again."""
    found = _member_or_404(member_id)
    form = BanForm(prefix="ban")

    def change() -> None:
        reason = (form.reason.data or "").strip()
        done = sanctions.ban(get_db(), actor().id, found.id, reason, utcnow())
        record(
            "moderation.ban",
            f"member {found.id}",
            after={
                "reason": reason,
                "action_id": done.action_id,
                "revoked_sessions": done.revoked_sessions,
            },
        )

    response = _apply(found, "ban", form, change, _("Member banned and taken off the WiFi."))
    if isinstance(response, Response):
        nudge_gatekeeper()
    return response


@bp.post("/member/<int:member_id>/sanction/<int:sanction_id>/lift")
def lift(member_id: int, sanction_id: int) -> Response | tuple[str, int]:
    """End a warning, silence, suspension or ban early."""
    found = _member_or_404(member_id)
    sanction = sanctions.get_sanction(get_db(), sanction_id)
    if sanction is None or sanction.member_id != found.id:
        abort(404)
    name = f"lift-{sanction_id}"
    form = LiftForm(prefix=name)

    def change() -> None:
        reason = (form.reason.data or "").strip()
        action_id = sanctions.lift(get_db(), actor().id, sanction_id, reason, utcnow())
        record(
            "moderation.lift",
            f"member {found.id}",
            before={"sanction_id": sanction_id, "kind": sanction.kind, "ends_at": sanction.ends_at},
            after={"lifted": True, "reason": reason, "action_id": action_id},
        )

    return _apply(found, name, form, change, _("Lifted."))
