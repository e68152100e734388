"""Who an offer is for: an audience expression over member attributes, in ``rule-engine``.

A manager writes ``tier == "gold" and "running" in interests``. The expression is compiled against
a typed context, so a misspelt attribute or a comparison of a number with text is refused when the
offer is saved, with a sentence naming the problem — not discovered by a shopper who silently never
gets the offer. Compiled rules are cached: the engine evaluates the same few hundred expressions
for every zone event.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import rule_engine

logger = logging.getLogger(__name__)

# The attributes an expression may use, with their types. ``days_since_last_visit`` is null for a
# member never seen before (test ``is_new`` first); consents are read as ``consents["marketing"]``
# (rule-engine deprecates ``consents.marketing`` on mappings and drops it in 6.0, so we refuse it).
AUDIENCE_ATTRIBUTES: dict[str, rule_engine.DataType] = {
    "tier": rule_engine.DataType.STRING,
    "interests": rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
    "visits": rule_engine.DataType.FLOAT,
    "is_new": rule_engine.DataType.BOOLEAN,
    "consents": rule_engine.DataType.MAPPING(
        rule_engine.DataType.STRING, rule_engine.DataType.BOOLEAN
    ),
    "days_since_last_visit": rule_engine.DataType.FLOAT,
}
# The consents an expression may read; the same kinds the portal records (minus the WiFi terms).
AUDIENCE_CONSENTS: tuple[str, ...] = ("location", "marketing", "friend_visibility")

# A member with every attribute present, evaluated once at validation: rule-engine only checks
# mapping keys (``consents["markting"]``) when it evaluates, and we want that refused on save too.
_SAMPLE_MEMBER: dict[str, Any] = {
    "tier": "member",
    "interests": ("sample",),
    "visits": 1,
    "is_new": False,
    "consents": {kind: True for kind in AUDIENCE_CONSENTS},
    "days_since_last_visit": 1,
}

# Enough distinct expressions for every live offer plus drafts being edited, with room to spare.
RULE_CACHE_SIZE = 2048

_CONTEXT = rule_engine.Context(
    type_resolver=rule_engine.type_resolver_from_dict(AUDIENCE_ATTRIBUTES)
)


class InvalidAudience(ValueError):
    """An audience expression that cannot be compiled or does not fit the member attributes."""


def _position_of(name: str, expression: str) -> str:
    match = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", expression)
    if match is None:
        match = re.search(rf"\b{re.escape(name)}\b", expression)
    return f" at position {match.start() + 1}" if match else ""


def _explain(error: Exception, expression: str) -> str:
    """A sentence for the manager from a rule-engine error."""
    if isinstance(error, rule_engine.errors.SymbolResolutionError):
        hint = f" (did you mean '{error.suggestion}'?)" if error.suggestion else ""
        known = ", ".join(sorted(AUDIENCE_ATTRIBUTES))
        return (
            f"unknown attribute '{error.symbol_name}'{_position_of(error.symbol_name, expression)}"
            f"{hint}; known attributes: {known}"
        )
    if isinstance(error, rule_engine.errors.AttributeResolutionError):
        name = str(error.attribute_name)
        return (
            f"unknown attribute '{name}'{_position_of(name, expression)}; "
            f"consents are {', '.join(AUDIENCE_CONSENTS)}"
        )
    if isinstance(error, rule_engine.errors.LookupError):
        name = str(error.item)
        return (
            f"unknown consent '{name}'{_position_of(name, expression)}; "
            f"consents are {', '.join(AUDIENCE_CONSENTS)}"
        )
    if isinstance(error, rule_engine.errors.RuleSyntaxError):
        token = error.token
        if token is None:
            return "the expression ends too early (is something missing after the last word?)"
        return f"syntax error at position {token.lexpos + 1} near {str(token.value)!r}"
    if isinstance(error, rule_engine.errors.RegexSyntaxError):
        return f"invalid regular expression: {error.message}"
    if isinstance(error, rule_engine.errors.EvaluationError):
        # rule-engine's own wording, e.g. "data type mismatch" for visits > "five".
        return f"{error.message} (check the types: tier is text, visits a number, is_new yes/no)"
    return str(error)


# ``consents.marketing``: refused on every rule-engine version (older ones accept it silently).
_BRACKETS_PLEASE = (
    'audience: read consents with brackets, e.g. consents["marketing"], not consents.marketing'
)
_DOT_ON_CONSENTS = re.compile(r"(?<![\w\"'])consents\s*\.")


@lru_cache(maxsize=RULE_CACHE_SIZE)
def compile_audience(expression: str) -> rule_engine.Rule:
    """The compiled, type-checked rule for an expression; raises InvalidAudience with a reason."""
    if _DOT_ON_CONSENTS.search(expression):
        raise InvalidAudience(_BRACKETS_PLEASE)
    try:
        rule = rule_engine.Rule(expression, context=_CONTEXT)
        result_type = rule.statement.expression.result_type
        if result_type not in (rule_engine.DataType.BOOLEAN, rule_engine.DataType.UNDEFINED):
            raise InvalidAudience(
                "audience: the audience must be a yes/no condition, but it gives a "
                f"{result_type.name.lower()} (compare it, e.g. visits > 3)"
            )
        with warnings.catch_warnings():
            # Turns the dot-on-mapping deprecation into an error we can explain (see above).
            warnings.simplefilter("error", DeprecationWarning)
            rule.evaluate(_SAMPLE_MEMBER)
    except DeprecationWarning:
        raise InvalidAudience(_BRACKETS_PLEASE) from None
    except rule_engine.errors.EngineError as error:
        raise InvalidAudience(f"audience: {_explain(error, expression)}") from None
    return rule


def validate_audience(expression: str) -> str:
    """The expression, stripped, if it is valid; "" means every member."""
    expression = expression.strip()
    if expression:
        compile_audience(expression)
    return expression


def matches(expression: str, attributes: Mapping[str, Any]) -> bool:
    """True when a member with these attributes is in the audience; "" matches everyone.

    A runtime error (e.g. ``days_since_last_visit > 30`` for a new member, where it is null) means
    "not in audience": the offer is withheld and logged rather than crashing the engine.
    """
    expression = expression.strip()
    if not expression:
        return True
    rule = compile_audience(expression)
    try:
        return bool(rule.matches(dict(attributes)))
    except rule_engine.errors.EngineError as error:
        logger.info("audience %r does not apply to %r: %s", expression, attributes, error)
        return False
