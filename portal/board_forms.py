"""The forms of the board pages. Flask-WTF adds the CSRF token; limits match ``community``'s."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from community.board_comments import MAX_COMMENT
from community.boards import MAX_DESCRIPTION, MAX_NOTE, MAX_TITLE
from community.schema_social import BOARD_AUDIENCES

AUDIENCE_LABELS = {
    "private": _l("Only me"),
    "friends": _l("My friends"),
    "public": _l("Every member"),
}
# Choosing no catalogue product: the item is the member's own photo.
NO_PRODUCT = "none"


class BoardForm(FlaskForm):
    """A board's title, description and audience (new and edit)."""

    title = StringField(
        _l("Title"),
        validators=[
            DataRequired(_l("Give your board a title.")),
            Length(
                max=MAX_TITLE, message=_l("Keep the title under %(max)d characters.", max=MAX_TITLE)
            ),
        ],
    )
    description = TextAreaField(
        _l("What is it about? (optional)"),
        validators=[
            Length(
                max=MAX_DESCRIPTION,
                message=_l("Keep the description under %(max)d characters.", max=MAX_DESCRIPTION),
            )
        ],
    )
    audience = RadioField(
        _l("Who can see it"),
        choices=[SelectChoice(choice, AUDIENCE_LABELS[choice]) for choice in BOARD_AUDIENCES],
        default="private",
        validators=[InputRequired(_l("Choose who can see your board."))],
    )


class ItemForm(FlaskForm):
    """A product picked from the search results and/or a photo, with a note.

    ``product`` is not checked against the listed results: the page's search may have changed
    since, and the catalogue itself says whether the product exists.
    """

    product = RadioField(_l("Product"), validate_choice=False)
    note = TextAreaField(
        _l("Your note (optional)"),
        validators=[
            Length(
                max=MAX_NOTE, message=_l("Keep the note under %(max)d characters.", max=MAX_NOTE)
            )
        ],
    )
    photo = FileField(_l("Your photo (optional)"))


class CommentForm(FlaskForm):
    """A comment, or a reply when ``parent_id`` names the comment answered."""

    body = TextAreaField(
        _l("Your comment"),
        validators=[
            DataRequired(_l("Write your comment.")),
            Length(
                max=MAX_COMMENT,
                message=_l("Keep your comment under %(max)d characters.", max=MAX_COMMENT),
            ),
        ],
    )
    parent_id = HiddenField()
