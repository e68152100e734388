"""The console's offers: list, create, edit, pause and resume, preview and backtest.

Managers only. The form speaks the manager's units (``offers_forms``); the rules are the engine's
own (``offers.model.validate_offer``), so an offer the console accepts is one ``instore offers
add`` would accept, with the same sentence when it is refused. Every save and status change is
written to the audit log with the offer before and after, in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import pgettext
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from instore.clock import utcnow
from instore.db import atomic
from offers.audience import AUDIENCE_CONSENTS, InvalidAudience, validate_audience
from offers.model import (
    STATUSES,
    InvalidOffer,
    Offer,
    get_offer,
    list_offers,
    save_offer,
    validate_offer,
)
from offers.offer_files import offer_to_dict, resolve_zone_names, zone_names
from offers.redemption import issued_and_redeemed_counts
from portal.database import get_db
from portal.forms import ActionForm
from portal.manage.access import record, require_role
from portal.manage.offers_forms import (
    LOCAL_INPUT_FORMAT,
    MAX_AUDIENCE_CHARS,
    TRIGGER_LABELS,
    OfferForm,
    add_error,
    field_for_message,
    form_values,
    offer_data,
    weekday_fields,
)
from portal.manage.offers_preview import (
    ANY_MEMBER,
    OUTCOME_LABELS,
    last_week_backtest,
    preview_card,
    sample_member,
    sample_members,
)

bp = Blueprint("manage_offers", __name__, url_prefix="/manage/offers")
require_role(bp, "manager")

# A new offer runs from now for this long unless the manager says otherwise: a month-long
# promotion is the common case, and a default end means no offer runs forever by accident.
DEFAULT_VALIDITY = timedelta(days=30)
# What each attribute of an audience expression means, shown beside the audience field. Keys are
# offers.audience.AUDIENCE_ATTRIBUTES (a test keeps the two in step).
ATTRIBUTE_HINTS: dict[str, Any] = {
    "tier": _l('loyalty tier as text: "member", "silver" or "gold"'),
    "interests": _l('the interests a member chose, e.g. "running" in interests'),
    "visits": _l("how many visits, a number, e.g. visits >= 3"),
    "is_new": _l("yes on a member's first visit"),
    "consents": _l('what they allowed, e.g. consents["marketing"]'),
    "days_since_last_visit": _l(
        "days since the visit before this one; empty on a first visit, so test is_new first"
    ),
}
# Which status each list button moves an offer to, and its label.
STATUS_ACTIONS: dict[str, tuple[str, Any]] = {
    "draft": ("live", _l("Go live")),
    "live": ("paused", _l("Pause")),
    "paused": ("live", _l("Resume")),
}


def status_words() -> dict[str, str]:
    """Each status as one word, for the list's badges and the save and status messages (with a
    context: the shopper's page has its own "live", a connection's state)."""
    return {
        "draft": pgettext("offer status", "draft"),
        "live": pgettext("offer status", "live"),
        "paused": pgettext("offer status", "paused"),
    }


def _timezone() -> str:
    """The store's time zone: the form's times are wall-clock times there."""
    return str(current_app.config["INSTORE"]["store"]["timezone"])


def _stored_or_404(offer_id: int) -> Offer:
    """The stored offer, or a 404 page for an id that is not one."""
    offer = get_offer(get_db(), offer_id)
    if offer is None:
        abort(404)
    return offer


def _prepare(form: OfferForm) -> None:
    """The choices that come from the database: zones by name, members to preview for."""
    db = get_db()
    names = sorted(zone_names(db).values(), key=str.casefold)
    form.zones.choices = [SelectChoice(name, name) for name in names]
    form.preview_member.choices = [SelectChoice(str(m.id), m.label) for m in sample_members(db)]


def _render(form: OfferForm, offer_id: int | None, status: int = 200, **extra: Any) -> Any:
    """The offer page: the form (with its messages), and a preview or backtest when asked."""
    return (
        render_template(
            "manage/offers_form.html",
            form=form,
            offer_id=offer_id,
            weekdays=weekday_fields(form),
            attribute_hints=ATTRIBUTE_HINTS,
            consents=AUDIENCE_CONSENTS,
            outcome_labels=OUTCOME_LABELS,
            currency=current_app.config["INSTORE"]["store"]["currency"],
            timezone=_timezone(),
            **extra,
        ),
        status,
    )


def checked_offer(form: OfferForm, offer_id: int | None, status: str | None = None) -> Offer | None:
    """The form's offer as the engine checks it, or None with the problems put on the form."""
    if not form.validate():  # the CSRF token and the fields' length limits
        return None
    data = offer_data(form, _timezone())
    if data is None:
        return None
    if status is not None:
        data["status"] = status
    if offer_id is not None:
        data["id"] = offer_id
    db = get_db()
    try:
        return validate_offer(resolve_zone_names(data, db), db)
    except InvalidOffer as error:
        message = str(error)
        add_error(form, field_for_message(message), message)
        return None


@bp.route("/", strict_slashes=False)
def index() -> str:
    """Every offer, highest priority first, with its sends, redemptions and a status button."""
    db = get_db()
    return render_template(
        "manage/offers.html",
        offers=list_offers(db),
        names=zone_names(db),
        counts=issued_and_redeemed_counts(db),
        actions=STATUS_ACTIONS,
        statuses=status_words(),
        triggers=TRIGGER_LABELS,
        action_form=ActionForm(),
    )


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    """A new offer, valid from now for a month, sent on entering a zone, saved as a draft."""
    if request.method == "POST":
        return _submitted(None, None)
    zone = ZoneInfo(_timezone())
    now = utcnow().astimezone(zone).replace(second=0)
    form = OfferForm(
        data={
            "status": "draft",
            "benefit_kind": "percent_off",
            "trigger_kind": "zone_enter",
            "valid_from": now.strftime(LOCAL_INPUT_FORMAT),
            "valid_to": (now + DEFAULT_VALIDITY).strftime(LOCAL_INPUT_FORMAT),
            "priority": "0",
            "holdout_percent": "0",
            "preview_member": ANY_MEMBER,
        }
    )
    _prepare(form)
    return _render(form, None)


@bp.route("/<int:offer_id>", methods=["GET", "POST"])
def edit(offer_id: int) -> Any:
    """One stored offer in the form; 404 for an id that is not an offer."""
    offer = _stored_or_404(offer_id)
    if request.method == "POST":
        return _submitted(offer_id, offer)
    values = form_values(offer, zone_names(get_db()), _timezone())
    form = OfferForm(data={**values, "preview_member": ANY_MEMBER})
    _prepare(form)
    return _render(form, offer_id)


def _submitted(offer_id: int | None, before: Offer | None) -> Any:
    """Save, save and go live, preview or backtest the posted form; 400 with messages if bad."""
    form = OfferForm()
    _prepare(form)
    action = request.form.get("action", "save")
    offer = checked_offer(form, offer_id, "live" if action == "save_live" else None)
    if offer is None:
        return _render(form, offer_id, 400)
    db = get_db()
    if action in ("preview", "backtest"):
        # The backtest's page shows the card too: it is the same offer, so why not see it.
        card = preview_card(db, offer, sample_member(db, form.preview_member.data))
        report = last_week_backtest(db, offer).to_json() if action == "backtest" else None
        return _render(form, offer_id, preview=card, backtest=report)
    _save(offer, before)
    status = status_words().get(offer.status, offer.status)
    flash(_("Offer “%(name)s” saved; it is %(status)s.", name=offer.name, status=status))
    return redirect(url_for(".index"))


def _save(offer: Offer, before: Offer | None, action: str | None = None) -> int:
    """Store the offer and its audit entry (before and after) in one transaction.

    ``action`` names the change in the log; by default "offer.create" or "offer.update".
    """
    db = get_db()
    names = zone_names(db)
    with atomic(db, "offer_save"):
        offer_id = save_offer(db, offer)
        saved = get_offer(db, offer_id)
        assert saved is not None
        record(
            action or ("offer.update" if before else "offer.create"),
            f"offer:{offer_id}",
            None if before is None else offer_to_dict(before, names),
            offer_to_dict(saved, names),
        )
    return offer_id


@bp.route("/<int:offer_id>/status", methods=["POST"])
def change_status(offer_id: int) -> Any:
    """Go live, pause or resume from the list; audited like a save."""
    offer = _stored_or_404(offer_id)
    status = request.form.get("status", "")
    if status not in STATUSES:
        abort(400)
    if status != offer.status:
        _save(replace(offer, status=status), offer, "offer.status")
    word = status_words().get(status, status)
    flash(_("Offer “%(name)s” is now %(status)s.", name=offer.name, status=word))
    return redirect(url_for(".index"))


@bp.route("/preview.json", methods=["POST"])
def preview_json() -> Response | tuple[Response, int]:
    """offers.js's live preview: the card for the posted form, or the problems to fix first."""
    form = OfferForm()
    _prepare(form)
    offer = checked_offer(form, request.form.get("offer_id", type=int))
    if offer is None:
        errors = [str(e) for e in form.form_errors]
        for name, field in form._fields.items():
            errors += [f"{field.label.text}: {e}" for e in field.errors if name != "csrf_token"]
        # 200: the check itself worked; its answer is "not yet" (a 400 here would fill the
        # browser's console with errors while the manager is still typing).
        return jsonify(ok=False, errors=errors)
    db = get_db()
    card = preview_card(db, offer, sample_member(db, form.preview_member.data))
    return jsonify(ok=True, card=card.to_json())


@bp.route("/audience.json", methods=["POST"])
def audience_json() -> Response | tuple[Response, int]:
    """Check an audience expression as it is typed: ok, or the engine's sentence about it."""
    payload = request.get_json(silent=True)
    expression = payload.get("audience") if isinstance(payload, dict) else None
    if not isinstance(expression, str):
        return jsonify(ok=False, message=_('Send the expression as {"audience": "…"}.')), 400
    if len(expression) > MAX_AUDIENCE_CHARS:
        limit = _("Keep the audience under %(n)d characters.", n=MAX_AUDIENCE_CHARS)
        return jsonify(ok=False, message=limit)
    try:
        validate_audience(expression)
    except InvalidAudience as error:
        return jsonify(ok=False, message=str(error))  # 200, like the preview's "not yet"
    return jsonify(ok=True, message=_("Looks good.") if expression.strip() else _("Every member."))
