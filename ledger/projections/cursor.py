"""Keyset pages over the read models, continued by a tamper-evident cursor.

Invariants owned here:
- a page is read with ``WHERE key > last ORDER BY key LIMIT n + 1`` (or ``<``
  for newest-first lists), never with OFFSET: the 50th page costs what the
  first costs, and a page never repeats or skips a row that existed when the
  first page was read, because every list orders by a key that never changes
  for a row (an account's ``customer_id``, a request's or invoice's opening
  position, a movement's position) and is unique;
- a cursor is ``base64url(payload) "." base64url(HMAC-SHA256(payload))``; the
  payload names the list, a digest of its filters and the last row's key. A
  cursor the service did not sign, or one for another list or other filters,
  is ``InvalidCursorError`` (422 naming ``cursor``), never a guess;
- the secret is ``LEDGER_SECRET_KEY`` when set, else one generated at first
  start and kept in the read-model store (``rm_secrets``), so every API
  process on that store signs and accepts the same cursors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ledger.errors import InvalidInputError
from ledger.persistence.store import Cur

SECRETS_TABLE = "rm_secrets"
CURSOR_SECRET = "cursor"
# Longer than any cursor the service issues (a key is at most a 200-character id).
MAX_CURSOR_CHARS = 1200
MAC_BYTES = 16

T = TypeVar("T")
K = TypeVar("K", int, str)


class InvalidCursorError(InvalidInputError):
    """A cursor that this service did not issue for this list and these filters."""

    title = "Invalid cursor"

    def __init__(self, detail: str) -> None:
        super().__init__("cursor", detail)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` is ``None`` on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None


def secret_statements() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {SECRETS_TABLE} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
    ]


def stored_secret(cur: Cur) -> bytes:
    """The store's cursor secret, created by the first process that asks
    (``ON CONFLICT DO NOTHING``: concurrent first starts agree on one)."""
    cur.run(
        f"INSERT INTO {SECRETS_TABLE} (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
        (CURSOR_SECRET, secrets.token_hex(32)),
    )
    row = cur.run(f"SELECT value FROM {SECRETS_TABLE} WHERE name = %s", (CURSOR_SECRET,)).one()
    assert row is not None  # inserted just above, in this transaction
    return str(row[0]).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def filter_digest(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Cursors:
    """Signs and opens the cursors of every list, under one secret."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the cursor secret must not be empty")
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def issue(self, name: str, filters: Mapping[str, Any], key: int | str) -> str:
        payload = json.dumps(
            {"l": name, "f": filter_digest(filters), "k": key}, separators=(",", ":")
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(
        self, cursor: str | None, name: str, filters: Mapping[str, Any], kind: type[K]
    ) -> K | None:
        """The last key of the previous page (``None``: the first page)."""
        if cursor is None:
            return None
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise InvalidCursorError("the cursor was not issued by this service")
        body, mac = cursor.split(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError) as e:
            raise InvalidCursorError("the cursor was not issued by this service") from e
        if not hmac.compare_digest(signature, self._mac(payload)):
            raise InvalidCursorError("the cursor was not issued by this service")
        data = json.loads(payload)
        if data.get("l") != name:
            raise InvalidCursorError(f"the cursor belongs to another list, not {name}")
        if data.get("f") != filter_digest(filters):
            raise InvalidCursorError("the cursor was issued for other filters")
        key = data.get("k")
        if not isinstance(key, kind) or isinstance(key, bool):
            raise InvalidCursorError("the cursor was not issued by this service")
        return key

    def page(
        self,
        rows: Sequence[T],
        limit: int,
        name: str,
        filters: Mapping[str, Any],
        key: Callable[[T], int | str],
    ) -> Page[T]:
        """A page from up to ``limit + 1`` rows: the extra row only says there is more."""
        items = tuple(rows[:limit])
        if len(rows) <= limit or not items:
            return Page(items, None)
        return Page(items, self.issue(name, filters, key(items[-1])))


__all__ = ["Cursors", "InvalidCursorError", "Page", "filter_digest"]
