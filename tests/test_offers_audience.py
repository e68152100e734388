"""Audience expressions: refused on save with a sentence, matched against member attributes."""

from __future__ import annotations

from typing import Any

import pytest

from offers.audience import InvalidAudience, compile_audience, matches, validate_audience


def member(**changes: Any) -> dict[str, Any]:
    """A returning gold member who likes running and agreed to marketing."""
    attributes: dict[str, Any] = {
        "tier": "gold",
        "interests": ["running", "outdoor"],
        "visits": 7,
        "is_new": False,
        "consents": {"location": True, "marketing": True, "friend_visibility": False},
        "days_since_last_visit": 12,
    }
    attributes.update(changes)
    return attributes


@pytest.mark.parametrize(
    "expression",
    [
        'tier == "gold"',
        '"running" in interests and visits >= 3',
        "is_new or days_since_last_visit > 30",
        'consents["marketing"] and not consents["friend_visibility"]',
        'tier in ["silver", "gold"]',
        'tier =~ "g.*"',
    ],
)
def test_valid_expressions_compile(expression: str) -> None:
    assert validate_audience(f"  {expression} ") == expression


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('tierr == "gold"', "unknown attribute 'tierr' at position 1 (did you mean 'tier'?)"),
        ("visits > 2 and vists < 9", "unknown attribute 'vists' at position 16"),
        ('consents["markting"]', "unknown consent 'markting' at position 11"),
        ("consents.marketing", 'read consents with brackets, e.g. consents["marketing"]'),
        ('visits > "five"', "data type mismatch"),
        ('tier == "gold" and', "the expression ends too early"),
        ('tier ==== "gold"', "syntax error at position 8 near '=='"),
        ("visits", "must be a yes/no condition, but it gives a float"),
        ('tier =~ "(g"', "invalid regular expression"),
    ],
)
def test_invalid_expressions_are_explained(expression: str, message: str) -> None:
    with pytest.raises(InvalidAudience) as caught:
        validate_audience(expression)
    assert str(caught.value).startswith("audience: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "changes", "expected"),
    [
        ("", {}, True),  # no audience: everyone
        ('tier == "gold"', {}, True),
        ('tier == "gold"', {"tier": "silver"}, False),
        ('"running" in interests', {}, True),
        ('"yoga" in interests', {}, False),
        ("visits >= 5 and not is_new", {}, True),
        ("visits >= 5 and not is_new", {"visits": 2}, False),
        ('consents["marketing"]', {}, True),
        ('consents["marketing"]', {"consents": {"marketing": False}}, False),
        # A consent never asked is absent: not in audience rather than an error.
        ('consents["location"]', {"consents": {}}, False),
        # A new member has no last visit; the comparison cannot be made, so not in audience.
        ("days_since_last_visit > 30", {"is_new": True, "days_since_last_visit": None}, False),
        (
            "is_new or days_since_last_visit > 30",
            {"is_new": True, "days_since_last_visit": None},
            True,
        ),
    ],
)
def test_matching(expression: str, changes: dict[str, Any], expected: bool) -> None:
    assert matches(expression, member(**changes)) is expected


def test_compiled_rules_are_cached() -> None:
    assert compile_audience('tier == "silver"') is compile_audience('tier == "silver"')
