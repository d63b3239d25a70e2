"""Instants in query strings (``as_of``, ``since``, ``until``): ISO 8601 with an offset.

A ``+`` in a query string decodes to a space, so ``...T10:00:00 04:00`` is
read as ``...T10:00:00+04:00``; an instant without an offset is refused.
"""

from __future__ import annotations

import re
from datetime import datetime

from ledger.errors import InvalidInputError

_SPACED_OFFSET = re.compile(r" ([0-9]{2}(:?[0-9]{2})?)$")
MAX_LENGTH = 64


def instant(field: str, text: str | None) -> datetime | None:
    """The aware datetime in ``text``; ``InvalidInputError`` naming ``field``."""
    if text is None:
        return None
    value = _SPACED_OFFSET.sub(r"+\1", text.strip()) if len(text) <= MAX_LENGTH else ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidInputError(
            field, f"{field} must be an ISO 8601 time with an offset, e.g. 2026-03-01T12:00:00Z"
        )
    return parsed
