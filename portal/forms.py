"""The portal's forms. Flask-WTF adds the CSRF token to each; limits match the columns."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from instore.members import is_valid_loyalty_number, normalize_identifier

MAX_IDENTIFIER = 254  # the longest valid email address
MAX_NAME = 60  # fits a friend note on a lock screen
MIN_PASSWORD = 8  # NIST SP 800-63B minimum for a user-chosen secret
MAX_PASSWORD = 256  # argon2 cost does not depend on length, but a form field should end somewhere


class ContinueMixin:
    """Carries the page the shopper wanted before the portal stepped in (checked before use)."""

    continue_url = HiddenField(validators=[Length(max=2048)])


class SignInForm(ContinueMixin, FlaskForm):
    identifier = StringField(
        _l("Email or loyalty number"),
        validators=[
            DataRequired(_l("Enter your email or loyalty number.")),
            Length(max=MAX_IDENTIFIER, message=_l("That is too long for an email address.")),
        ],
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Enter your password.")),
            Length(max=MAX_PASSWORD, message=_l("That password is too long.")),
        ],
    )
    remember = BooleanField(_l("Stay signed in on this phone"), default=True)


def _check_identifier(form: FlaskForm, field: StringField) -> None:
    kind, value = normalize_identifier(field.data or "")
    if kind == "loyalty":
        if not is_valid_loyalty_number(value):
            raise ValidationError(
                _l("That loyalty number is not valid. It has 12 digits, as printed on your card.")
            )
        field.data = value
        return
    try:
        field.data = validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationError(_l("Enter a valid email address, like ana@example.com.")) from None


class SignUpForm(ContinueMixin, FlaskForm):
    identifier = StringField(
        _l("Email or loyalty card number"),
        validators=[
            DataRequired(_l("Enter your email or loyalty card number.")),
            Length(max=MAX_IDENTIFIER, message=_l("That is too long for an email address.")),
            _check_identifier,
        ],
    )
    display_name = StringField(
        _l("Your name, as friends will see it"),
        validators=[
            DataRequired(_l("Enter a name.")),
            Length(max=MAX_NAME, message=_l("Keep your name under 60 characters.")),
        ],
    )
    password = PasswordField(
        _l("Choose a password"),
        validators=[
            InputRequired(_l("Choose a password.")),
            Length(
                min=MIN_PASSWORD,
                max=MAX_PASSWORD,
                message=_l("Use between 8 and 256 characters for your password."),
            ),
        ],
    )


class PreferencesForm(FlaskForm):
    """The optional consents, each its own choice; changeable any time from the account page."""

    location = BooleanField(_l("Use where I am in the store to show me offers for that area"))
    marketing = BooleanField(_l("Send me news and deals from the store"))
    friend_visibility = BooleanField(
        _l("Let my friends see that I am in the store, and in which area")
    )


class ConsentsForm(ContinueMixin, PreferencesForm):
    """First visit or new terms: the WiFi terms (required) plus the optional choices."""

    wifi_terms = BooleanField(_l("I accept the WiFi terms of use (required to go online)"))

    def validate_wifi_terms(self, field: BooleanField) -> None:
        if not field.data:
            raise ValidationError(
                _l("You need to accept the WiFi terms to go online. Every other choice is yours.")
            )


class ActionForm(FlaskForm):
    """A button that changes something (sign out, connect): just the CSRF token."""
