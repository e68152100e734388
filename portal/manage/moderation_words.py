"""The store's watched words in the console: list, add with an action, remove; each change audited.

Routes on the ``manage_moderation`` blueprint. Screening reads the table on every post, so a word
added here applies to the next post.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from community import watched_words
from community.schema_social import WATCHED_WORD_ACTIONS
from instore.clock import utcnow
from instore.db import atomic
from portal.database import get_db
from portal.manage.access import actor, record
from portal.manage.moderation import bp

WORD_ACTION_LABELS: dict[str, Any] = {
    "block": _l("Block: refuse the post"),
    "censor": _l("Censor: hide the word"),
    "require_approval": _l("Hold the post for approval"),
    "flag": _l("Show the post, and queue it for review"),
}


class WordForm(FlaskForm):
    word = StringField(
        _l("Word or phrase"),
        validators=[
            DataRequired(_l("Write the word or phrase to watch for.")),
            Length(max=watched_words.MAX_WORD, message=_l("Keep the word under 60 characters.")),
        ],
    )
    action = SelectField(
        _l("What happens to a post with it"),
        choices=[
            SelectChoice(action, WORD_ACTION_LABELS[action]) for action in WATCHED_WORD_ACTIONS
        ],
        validators=[InputRequired(_l("Choose what happens to a post with this word."))],
    )


def _words_page(
    form: FlaskForm | None = None, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    return (
        render_template(
            "manage/moderation_words.html",
            words=watched_words.list_words(get_db()),
            form=form or WordForm(),
            error=error,
            action_labels=WORD_ACTION_LABELS,
        ),
        status,
    )


@bp.route("/words")
def words() -> tuple[str, int]:
    return _words_page()


@bp.post("/words")
def add_word() -> Response | tuple[str, int]:
    form = WordForm()
    if not form.validate_on_submit():
        return _words_page(form, status=400)
    db = get_db()
    try:
        with atomic(db, "moderation_word_add"):
            word = watched_words.normalize_word(form.word.data or "")
            action = form.action.data or ""
            word_id = watched_words.add_word(db, word, action, actor().id, utcnow())
            record(
                "moderation.word_add",
                f"watched word {word_id}",
                after={"word": word, "action": action},
            )
    except watched_words.WatchedWordError as exc:
        return _words_page(form, str(exc), 400)
    flash(_("Watched word added."))
    return redirect(url_for("manage_moderation.words"))


@bp.post("/words/<int:word_id>/delete")
def remove_word(word_id: int) -> Response | tuple[str, int]:
    db = get_db()
    if watched_words.get_word(db, word_id) is None:
        abort(404)
    if not FlaskForm().validate_on_submit():
        return _words_page(status=400)
    with atomic(db, "moderation_word_remove"):
        removed = watched_words.remove_word(db, word_id)
        if removed is None:
            abort(404)
        record(
            "moderation.word_remove",
            f"watched word {word_id}",
            before={"word": removed.word, "action": removed.action},
        )
    flash(_("Watched word removed."))
    return redirect(url_for("manage_moderation.words"))
