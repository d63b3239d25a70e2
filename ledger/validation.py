"""Checks of free text that commands accept (names, reasons, notes).

Text is stored forever in events, so it is bounded and free of control
characters; a refusal names the field.
"""

from __future__ import annotations

from ledger.errors import InvalidInputError

MAX_TEXT = 2000


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
