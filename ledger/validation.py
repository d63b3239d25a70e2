"""Checks of free text that commands accept (names, reasons, notes), and the
rule for customer ids.

Text is stored forever in events, so it is bounded and free of control
characters; a refusal names the field.

A customer id is a key: it names an account (``account_id_for`` is a uuid5
of it) and appears in URLs. A new one is normalised (Unicode NFKC, and the
dashes that NFKC leaves apart, such as the non-breaking hyphen, made "-"),
so that fullwidth ``SP-1``, ``SP-1`` with a non-breaking hyphen and
``SP-1`` are one account; it is then 1 to
64 printable characters without ``/`` or ``\\`` (``customer_id``). Accounts
opened before the rule keep their id as stored: a lookup
(``customer_id_lookups``) tries the id exactly as given first, then its
normal form.
"""

from __future__ import annotations

import unicodedata

from ledger.errors import InvalidInputError

MAX_TEXT = 2000
MAX_CUSTOMER_ID = 64
CUSTOMER_ID_RULE = (
    f"a customer id is 1 to {MAX_CUSTOMER_ID} printable characters (after Unicode NFKC "
    "normalisation), without '/', '\\', tabs, line breaks or other control characters"
)
#: Dashes NFKC keeps apart from "-" (hyphen, non-breaking hyphen, figure dash,
#: en and em dashes, horizontal bar, minus sign).
_DASHES = {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"}


def normal_customer_id(value: str) -> str:
    """``value`` in its normal form: NFKC, dashes made "-", outer spaces stripped."""
    return unicodedata.normalize("NFKC", value).translate(_DASHES).strip()


def customer_id(value: object) -> str:
    """A new customer id in its normal form; ``InvalidInputError`` naming
    ``customer_id`` and the rule otherwise."""
    if not isinstance(value, str):
        raise InvalidInputError("customer_id", f"customer_id must be a string: {CUSTOMER_ID_RULE}")
    normal = normal_customer_id(value)
    if not normal:
        raise InvalidInputError("customer_id", "customer_id is required and may not be blank")
    if len(normal) > MAX_CUSTOMER_ID:
        raise InvalidInputError(
            "customer_id",
            f"customer_id is longer than {MAX_CUSTOMER_ID} characters: {CUSTOMER_ID_RULE}",
        )
    if not normal.isprintable() or "/" in normal or "\\" in normal:
        raise InvalidInputError(
            "customer_id", f"customer_id has a character it may not have: {CUSTOMER_ID_RULE}"
        )
    return normal


def customer_id_lookups(value: str) -> tuple[str, ...]:
    """The ids to look ``value`` up by, in order: ``value`` as given (an
    account opened before the rule keeps its id exactly), then its normal
    form when that differs."""
    normal = normal_customer_id(value)
    return (value,) if normal == value or not normal else (value, normal)


def required_text(field: str, value: str, *, max_length: int = MAX_TEXT) -> str:
    """A non-blank string of at most ``max_length`` characters, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field, f"{field} is required and may not be blank")
    return optional_text(field, value, max_length=max_length)


def optional_text(field: str, value: str | None, *, max_length: int = MAX_TEXT) -> str:
    """Like ``required_text`` but ``None`` or blank gives ``""``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(field, f"{field} must be a string")
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInputError(field, f"{field} is longer than {max_length} characters")
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 0x7F for c in value):
        raise InvalidInputError(field, f"{field} contains control characters")
    return value
