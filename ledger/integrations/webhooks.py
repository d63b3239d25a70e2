"""The registry of webhooks: who wants which feed items at which URL, how far
each has been delivered, and the log of every delivery attempt.

Where they are kept, and why not as events: a webhook is integration
configuration, not a fact about credits. Its secret must stay readable (it
signs every delivery, so it cannot be hashed), and events are kept forever,
exported and chained into the audit trail: a secret there could never be
rotated out of a backup or an export. So the registry lives in the read
side's store (same database as the events, like the read models), in three
tables of its own:

- ``wh_webhooks``: one row per webhook, never deleted (``DELETE`` sets
  ``status = 'disabled'``); it also holds the webhook's delivery cursor
  ``(position, part)`` (``ledger.integrations.feed``) and its retry state;
- ``wh_secrets``: the secret alone, keyed by webhook id, read only to sign
  (never selected with the rest, never logged, shown once at creation);
- ``wh_deliveries``: every attempt (position, type, status code or error,
  at most 1 KiB of the answer, next retry), keyed ``(webhook_id, seq)``.

Invariants owned here:
- the cursor moves only by compare-and-set (``WHERE position = old AND part
  = old AND status = 'active'``), in the same transaction as the attempt's
  log row: each item is recorded as delivered exactly once, whatever number
  of workers overlap, and a disabled webhook's cursor never moves;
- a URL is ``http`` or ``https``, with a host that resolves; types are feed
  types: anything else is ``InvalidInputError`` naming the field, and
  nothing is stored.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from ledger.errors import ConflictError, InvalidInputError, NotFoundError
from ledger.integrations.feed import FEED_TYPES, Cursor, unknown_types
from ledger.persistence.store import (
    STORE_ERRORS,
    ColumnTypes,
    Cur,
    Store,
    Writer,
    as_time,
    as_uuid,
)
from ledger.validation import required_text
from ledger.values import Actor

WEBHOOKS = "wh_webhooks"
SECRETS = "wh_secrets"
DELIVERIES = "wh_deliveries"
#: Active webhooks at most (each has a delivery thread of its own).
MAX_WEBHOOKS = 100
MAX_URL_LENGTH = 2000
RESPONSE_LIMIT_BYTES = 1024
SECRET_PREFIX = "whsec_"

ACTIVE, DISABLED, FAILED = "active", "disabled", "failed"
DELIVERED, RETRYING, GIVEN_UP = "delivered", "retrying", "given_up"

_COLUMNS = (
    "webhook_id, url, types, status, created_at, created_by, disabled_at, "
    "position, part, attempts, next_attempt_at, failing_since, last_error, seq"
)
_DELIVERY_COLUMNS = (
    "webhook_id, seq, position, part, type, at, outcome, status_code, error, "
    "response_body, duration_ms, next_retry_at"
)


class UnknownWebhookError(NotFoundError):
    def __init__(self, webhook_id: UUID) -> None:
        super().__init__(f"no webhook {webhook_id}", webhook_id=webhook_id)


class TooManyWebhooksError(ConflictError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} webhooks may be active; disable one first", limit=limit)


@dataclass(frozen=True)
class Webhook:
    webhook_id: UUID
    url: str
    types: tuple[str, ...]
    status: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    position: int
    part: int
    attempts: int
    next_attempt_at: datetime | None
    failing_since: datetime | None
    last_error: str | None

    @property
    def cursor(self) -> Cursor:
        return (self.position, self.part)


@dataclass(frozen=True)
class Registered:
    webhook: Webhook
    secret: str


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt of one item, as the log keeps it."""

    webhook_id: UUID
    seq: int
    position: int
    part: int
    type: str
    at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    next_retry_at: datetime | None


class _Changed(Exception):
    """The webhook's row changed since it was read: roll the record back."""


@dataclass(frozen=True)
class Tried:
    """One attempt at the item at ``cursor``, made at ``at``."""

    cursor: Cursor
    type: str
    result: Result
    at: datetime


@dataclass(frozen=True)
class Result:
    """What one POST of one item came to (before it is recorded)."""

    ok: bool
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int


def statements(t: ColumnTypes) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {WEBHOOKS} ("
        f"webhook_id {t.uuid} PRIMARY KEY, url TEXT NOT NULL, types TEXT NOT NULL, "
        f"status TEXT NOT NULL, created_at {t.time} NOT NULL, created_by TEXT NOT NULL, "
        f"disabled_at {t.time}, position {t.bigint} NOT NULL, part INTEGER NOT NULL, "
        f"attempts INTEGER NOT NULL, next_attempt_at {t.time}, failing_since {t.time}, "
        f"last_error TEXT, seq {t.bigint} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {SECRETS} ("
        f"webhook_id {t.uuid} PRIMARY KEY, secret TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {DELIVERIES} ("
        f"webhook_id {t.uuid} NOT NULL, seq {t.bigint} NOT NULL, position {t.bigint} NOT NULL, "
        f"part INTEGER NOT NULL, type TEXT NOT NULL, at {t.time} NOT NULL, "
        f"outcome TEXT NOT NULL, status_code INTEGER, error TEXT, response_body TEXT, "
        f"duration_ms INTEGER NOT NULL, next_retry_at {t.time}, "
        "PRIMARY KEY (webhook_id, seq))",
    ]


def validate_url(url: str) -> str:
    """An ``http(s)`` URL whose host resolves; ``InvalidInputError`` naming ``url``."""
    url = required_text("url", url, max_length=MAX_URL_LENGTH)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInputError("url", "the URL must start with http:// or https://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidInputError("url", "the URL has an invalid port") from None
    if not host:
        raise InvalidInputError("url", "the URL has no host")
    try:
        socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise InvalidInputError("url", f"the host {host!r} does not resolve") from None
    return url


def validate_types(types: Sequence[str]) -> tuple[str, ...]:
    if not types:
        raise InvalidInputError("types", f"name at least one type; known: {', '.join(FEED_TYPES)}")
    unknown = unknown_types(types)
    if unknown:
        raise InvalidInputError(
            "types", f"unknown type {', '.join(unknown)}; known: {', '.join(FEED_TYPES)}"
        )
    return tuple(dict.fromkeys(types))


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookRegistry:
    """The webhooks of one ledger, in the read side's store."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self.clock = clock
        self._writer: Writer | None = None
        self._write_lock = threading.Lock()
        store.create(statements(store.types))

    # --- management -------------------------------------------------------------

    def register(self, url: str, types: Sequence[str], *, actor: Actor) -> Registered:
        """A new active webhook, starting after the newest stored event.
        Raises ``InvalidInputError`` (url, types), ``TooManyWebhooksError``."""
        url = validate_url(url)
        chosen = validate_types(types)
        webhook_id = uuid4()
        secret = SECRET_PREFIX + secrets.token_hex(32)
        s = self.store
        with self._transaction() as cur:
            row = cur.run(f"SELECT count(*) FROM {WEBHOOKS} WHERE status = %s", (ACTIVE,)).one()
            if row is not None and int(row[0]) >= MAX_WEBHOOKS:
                raise TooManyWebhooksError(MAX_WEBHOOKS)
            start = cur.run(f"SELECT coalesce(max({s.id_column}), 0) FROM {s.events_table}").one()
            cur.run(
                f"INSERT INTO {WEBHOOKS} ({_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, NULL, %s, %s, 0, NULL, NULL, NULL, 0)",
                (
                    s.uuid(webhook_id),
                    url,
                    ",".join(chosen),
                    ACTIVE,
                    s.time(self.clock()),
                    str(actor),
                    int(start[0]) if start else 0,
                    1_000,
                ),
            )
            cur.run(
                f"INSERT INTO {SECRETS} (webhook_id, secret) VALUES (%s, %s)",
                (s.uuid(webhook_id), secret),
            )
        return Registered(self.get(webhook_id), secret)

    def all(self) -> list[Webhook]:
        with self.store.reading() as cur:
            rows = cur.run(f"SELECT {_COLUMNS} FROM {WEBHOOKS} ORDER BY created_at").all()
        return [_webhook(r) for r in rows]

    def get(self, webhook_id: UUID) -> Webhook:
        with self.store.reading(snapshot=False) as cur:
            row = cur.run(
                f"SELECT {_COLUMNS} FROM {WEBHOOKS} WHERE webhook_id = %s",
                (self.store.uuid(webhook_id),),
            ).one()
        if row is None:
            raise UnknownWebhookError(webhook_id)
        return _webhook(row)

    def disable(self, webhook_id: UUID) -> Webhook:
        """Stop deliveries; the record and its log stay."""
        self.get(webhook_id)
        with self._transaction() as cur:
            cur.run(
                f"UPDATE {WEBHOOKS} SET status = %s, disabled_at = %s "
                "WHERE webhook_id = %s AND status <> %s",
                (DISABLED, self.store.time(self.clock()), self.store.uuid(webhook_id), DISABLED),
            )
        return self.get(webhook_id)

    def replay(self, webhook_id: UUID, from_position: int) -> Webhook:
        """Deliver again every subscribed item from ``from_position`` on; a
        webhook that had given up is active again (a disabled one stays so)."""
        if from_position < 1:
            raise InvalidInputError("from", "the position to replay from is 1 or more")
        webhook = self.get(webhook_id)
        if webhook.status == DISABLED:
            raise WebhookDisabledError(webhook_id)
        with self._transaction() as cur:
            cur.run(
                f"UPDATE {WEBHOOKS} SET status = %s, position = %s, part = %s, attempts = 0, "
                "next_attempt_at = NULL, failing_since = NULL WHERE webhook_id = %s",
                (ACTIVE, from_position - 1, 1_000, self.store.uuid(webhook_id)),
            )
        return self.get(webhook_id)

    def deliveries(
        self, webhook_id: UUID, *, limit: int = 50, before_seq: int | None = None
    ) -> list[Attempt]:
        """The attempts, newest first."""
        self.get(webhook_id)
        params: list[Any] = [self.store.uuid(webhook_id)]
        where = "webhook_id = %s"
        if before_seq is not None:
            where += " AND seq < %s"
            params.append(before_seq)
        params.append(limit)
        with self.store.reading() as cur:
            rows = cur.run(
                f"SELECT {_DELIVERY_COLUMNS} FROM {DELIVERIES} WHERE {where} "
                "ORDER BY seq DESC LIMIT %s",
                params,
            ).all()
        return [_attempt(r) for r in rows]

    def failed(self) -> list[Webhook]:
        return [w for w in self.all() if w.status == FAILED]

    def secret(self, webhook_id: UUID) -> str:
        with self.store.reading(snapshot=False) as cur:
            row = cur.run(
                f"SELECT secret FROM {SECRETS} WHERE webhook_id = %s",
                (self.store.uuid(webhook_id),),
            ).one()
        if row is None:
            raise UnknownWebhookError(webhook_id)
        return str(row[0])

    # --- the delivery worker's writes ------------------------------------------

    def skip_to(self, webhook: Webhook, position: int) -> bool:
        """Move the cursor past events none of which was subscribed."""
        with self._transaction() as cur:
            return self._move(cur, webhook, (position, 1_000))

    def record(
        self,
        webhook: Webhook,
        attempts: Sequence[Tried],
        *,
        next_retry_at: datetime | None,
        give_up_after_s: float,
    ) -> bool:
        """Record attempts at consecutive items in one transaction: each one
        delivered moves the cursor to it; a failed one (last) schedules the
        retry, or gives up. ``False`` when the webhook changed meanwhile
        (disabled, replayed, or moved by another worker): nothing is written."""
        try:
            with self._transaction() as cur:
                current = webhook
                for tried in attempts:
                    if tried.result.ok:
                        if not self._move(cur, current, tried.cursor):
                            raise _Changed
                        current = replace(current, position=tried.cursor[0], part=tried.cursor[1])
                        self._log(cur, current, tried, DELIVERED, None)
                    else:
                        outcome = self._fail(cur, current, tried, next_retry_at, give_up_after_s)
                        self._log(cur, current, tried, outcome, next_retry_at)
        except _Changed:
            return False
        return True

    def _fail(
        self,
        cur: Cur,
        webhook: Webhook,
        tried: Tried,
        next_retry_at: datetime | None,
        give_up_after_s: float,
    ) -> str:
        s = self.store
        since = webhook.failing_since or tried.at
        given_up = (tried.at - since).total_seconds() >= give_up_after_s
        cur.run(
            f"UPDATE {WEBHOOKS} SET attempts = attempts + 1, next_attempt_at = %s, "
            "failing_since = %s, last_error = %s, status = %s, seq = seq + 1 "
            "WHERE webhook_id = %s AND position = %s AND part = %s AND status = %s",
            (
                s.time(None if given_up else next_retry_at),
                s.time(since),
                tried.result.error or f"HTTP {tried.result.status_code}",
                FAILED if given_up else ACTIVE,
                s.uuid(webhook.webhook_id),
                webhook.position,
                webhook.part,
                ACTIVE,
            ),
        )
        if cur.rowcount != 1:
            raise _Changed
        return GIVEN_UP if given_up else RETRYING

    def _log(
        self, cur: Cur, webhook: Webhook, tried: Tried, outcome: str, retry: datetime | None
    ) -> None:
        s = self.store
        seq = cur.run(
            f"SELECT seq FROM {WEBHOOKS} WHERE webhook_id = %s", (s.uuid(webhook.webhook_id),)
        ).one()
        result = tried.result
        cur.run(
            f"INSERT INTO {DELIVERIES} ({_DELIVERY_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                s.uuid(webhook.webhook_id),
                int(seq[0]) if seq else 0,
                tried.cursor[0],
                tried.cursor[1],
                tried.type,
                s.time(tried.at),
                outcome,
                result.status_code,
                result.error,
                result.response_body,
                result.duration_ms,
                s.time(retry if outcome == RETRYING else None),
            ),
        )

    def _move(self, cur: Cur, webhook: Webhook, cursor: Cursor) -> bool:
        cur.run(
            f"UPDATE {WEBHOOKS} SET position = %s, part = %s, attempts = 0, "
            "next_attempt_at = NULL, failing_since = NULL, last_error = NULL, seq = seq + 1 "
            "WHERE webhook_id = %s AND position = %s AND part = %s AND status = %s",
            (
                cursor[0],
                cursor[1],
                self.store.uuid(webhook.webhook_id),
                webhook.position,
                webhook.part,
                ACTIVE,
            ),
        )
        return cur.rowcount == 1

    @contextmanager
    def _transaction(self) -> Iterator[Cur]:
        """One write transaction on the registry's one writer connection
        (management writes are rare; the worker's are one per attempt)."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self.store.writer()
            try:
                with self._writer.transaction() as cur:
                    yield cur
            except STORE_ERRORS:
                with suppress(*STORE_ERRORS):
                    self._writer.close()
                self._writer = None
                raise

    def close(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                with suppress(*STORE_ERRORS):
                    self._writer.close()
                self._writer = None


class WebhookDisabledError(ConflictError):
    def __init__(self, webhook_id: UUID) -> None:
        super().__init__(f"webhook {webhook_id} is disabled", webhook_id=webhook_id)


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else as_time(value)


def _webhook(row: tuple[Any, ...]) -> Webhook:
    return Webhook(
        webhook_id=as_uuid(row[0]),
        url=str(row[1]),
        types=tuple(str(row[2]).split(",")),
        status=str(row[3]),
        created_at=as_time(row[4]),
        created_by=str(row[5]),
        disabled_at=_opt_time(row[6]),
        position=int(row[7]),
        part=int(row[8]),
        attempts=int(row[9]),
        next_attempt_at=_opt_time(row[10]),
        failing_since=_opt_time(row[11]),
        last_error=None if row[12] is None else str(row[12]),
    )


def _attempt(row: tuple[Any, ...]) -> Attempt:
    return Attempt(
        webhook_id=as_uuid(row[0]),
        seq=int(row[1]),
        position=int(row[2]),
        part=int(row[3]),
        type=str(row[4]),
        at=as_time(row[5]),
        outcome=str(row[6]),
        status_code=None if row[7] is None else int(row[7]),
        error=None if row[8] is None else str(row[8]),
        response_body=None if row[9] is None else str(row[9]),
        duration_ms=int(row[10]),
        next_retry_at=_opt_time(row[11]),
    )
