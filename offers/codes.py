"""Redemption codes: short, unambiguous to read aloud or type, and marked with the store.

``S001-7KQ2-M9XD``: the store id, then 8 characters of Crockford's base32 (no I, L, O, U), i.e.
40 random bits. A till refuses a code with another store's prefix before looking it up.
"""

from __future__ import annotations

import secrets

# Crockford base32: digits and letters a person cannot confuse with each other.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 8 characters = 40 bits: a guess hits one of 10,000 live codes with odds of 1 in 10^8, and the
# redemption API is rate-limited per till besides.
CODE_CHARS = 8
GROUP = 4


def new_code(store_id: str) -> str:
    """A fresh random code for this store."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    groups = [body[i : i + GROUP] for i in range(0, CODE_CHARS, GROUP)]
    return "-".join([store_id.upper(), *groups])


def normalize_code(text: str) -> str:
    """A code as typed or scanned, in its stored form: upper case, O→0, I/L→1, spaces dropped."""
    cleaned = text.strip().upper().replace(" ", "")
    store, sep, rest = cleaned.partition("-")
    if not sep:
        return cleaned
    return store + "-" + rest.replace("O", "0").replace("I", "1").replace("L", "1")


def store_of(code: str) -> str:
    """The store id a (normalized) code was issued by; "" when it has none."""
    store, sep, _ = code.partition("-")
    return store if sep else ""
