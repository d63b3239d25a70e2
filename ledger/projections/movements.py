"""The ``movements`` read model: the finance audit trail.

Invariants owned here:
- one row per credit movement (``CreditsPurchased``, ``CreditsCharged``,
  ``CreditsRefunded``, ``BalanceAdjusted``) and per hold event
  (``CreditsReserved``, ``CreditsReleased``), keyed by the event's global
  position, so store order is row order and a row is never written twice;
- a movement's signed amount, balance after and price list version (of the
  request charged or refunded, of the package bought; none for an
  adjustment or a custom package) are copied from the event;
- a hold's row (kind ``reservation`` or ``release``) moves nothing: amount
  0, the credits held in ``held``, the balance after is the account's
  balance then; so the sum of a customer's amounts is the customer's
  balance, and the last ``balance_after`` equals it too
  (``ledger.projections.reconcile`` checks both);
- the actor is ``str(Actor)`` (``role:name``), never a token.

Account events carry the account id, not the customer's: the model keeps
its own ``rm_movement_accounts`` map (filled from ``Opened``), so it can be
rebuilt alone.

Its queries (``page``, ``totals``) take an open read cursor: the facade
``ledger.projections.queries.ReadQueries`` opens it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.aggregates import CustomerAccount
from ledger.aggregates.account import HOLD_KINDS, MOVEMENT_KINDS, hold_reason
from ledger.persistence.store import (
    MAX_IN_LIST,
    ColumnTypes,
    Cur,
    SQLiteStore,
    Store,
    as_time,
    as_uuid,
)
from ledger.projections.base import Positioned, ReadModel, write_rows
from ledger.projections.rows import MovementRow
from ledger.views import TRAIL_COLUMNS

TABLE = "rm_movements"
ACCOUNTS = "rm_movement_accounts"
COLUMNS = (
    "position, customer_id, kind, amount, balance_after, request_id, invoice_id, actor, reason, "
    "at, price_list_version, held"
)
#: The table's columns as the rows are appended: the trail's and the account.
INSERTED = (*TRAIL_COLUMNS, "account_id")

A = CustomerAccount


class Movements(ReadModel):
    name = "movements"
    event_types = (A.Opened, *MOVEMENT_KINDS, *HOLD_KINDS)
    tables = (TABLE, ACCOUNTS)
    #: 2: the price list version and the holds.
    schema_version = 2

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # Account id -> customer id never changes (uuid5 of the customer id).
        self._customers: dict[UUID, str] = {}

    def create_statements(self, t: ColumnTypes) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {ACCOUNTS} ("
            f"account_id {t.uuid} PRIMARY KEY, customer_id TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"position {t.bigint} PRIMARY KEY, account_id {t.uuid} NOT NULL, "
            f"customer_id TEXT NOT NULL, kind TEXT NOT NULL, amount {t.bigint} NOT NULL, "
            f"balance_after {t.bigint} NOT NULL, request_id {t.uuid}, invoice_id {t.uuid}, "
            f"actor TEXT NOT NULL, reason TEXT, at {t.time} NOT NULL, "
            f"price_list_version {t.bigint}, held {t.bigint})",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_customer ON {TABLE} (customer_id, position)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_at ON {TABLE} (at, position)",
        ]

    def apply(self, cur: Cur, events: Sequence[Positioned]) -> None:
        s = self.store
        opened = [e for _, e in events if isinstance(e, A.Opened)]
        write_rows(
            cur,
            s,
            f"INSERT INTO {ACCOUNTS} (account_id, customer_id) VALUES (%s, %s) "
            "ON CONFLICT (account_id) DO NOTHING",
            [(s.uuid(e.originator_id), e.customer_id) for e in opened],
        )
        for e in opened:
            self._customers[e.originator_id] = e.customer_id
        self._load_customers(cur, {e.originator_id for _, e in events})
        # The balance after each account's latest row so far in this batch.
        balances: dict[UUID, int] = {}
        rows = []
        for position, e in events:
            account_id = e.originator_id
            kind = MOVEMENT_KINDS.get(type(e))
            if kind is not None:
                amount, balance_after, held = e.amount, e.balance_after, None
                reason = getattr(e, "reason", None)
                version = getattr(e, "price_list_version", None)
            else:
                kind = HOLD_KINDS.get(type(e))
                if kind is None:
                    continue
                amount, held, reason, version = 0, e.amount, hold_reason(e), None
                balance_after = balances.get(account_id)
                if balance_after is None:
                    balance_after = self._last_balance(cur, self._customers[account_id])
            balances[account_id] = balance_after
            rows.append(
                (
                    position,
                    s.time(e.timestamp),
                    self._customers[account_id],
                    kind,
                    amount,
                    balance_after,
                    s.uuid(getattr(e, "request_id", None)),
                    s.uuid(getattr(e, "invoice_id", None)),
                    str(e.actor),
                    reason,
                    version,
                    held,
                    s.uuid(account_id),
                )
            )
        cur.append(TABLE, INSERTED, rows)

    @staticmethod
    def _last_balance(cur: Cur, customer_id: str) -> int:
        """The balance after the customer's last row stored (0 without one)."""
        row = cur.run(
            f"SELECT balance_after FROM {TABLE} WHERE customer_id = %s "
            "ORDER BY position DESC LIMIT 1",
            (customer_id,),
        ).one()
        return 0 if row is None else int(row[0])

    def _load_customers(self, cur: Cur, account_ids: set[UUID]) -> None:
        missing = sorted(a for a in account_ids if a not in self._customers)
        for i in range(0, len(missing), MAX_IN_LIST):
            condition, params = self.store.in_list(
                "account_id", [self.store.uuid(a) for a in missing[i : i + MAX_IN_LIST]]
            )
            sql = f"SELECT account_id, customer_id FROM {ACCOUNTS} WHERE {condition}"
            for account_id, customer_id in cur.run(sql, params).all():
                self._customers[as_uuid(account_id)] = str(customer_id)


def movement_row(row: Sequence[Any]) -> MovementRow:
    """A row of ``SELECT {COLUMNS}`` as a ``MovementRow``."""
    return MovementRow(
        position=int(row[0]),
        customer_id=str(row[1]),
        kind=str(row[2]),
        amount=int(row[3]),
        balance_after=int(row[4]),
        request_id=None if row[5] is None else as_uuid(row[5]),
        invoice_id=None if row[6] is None else as_uuid(row[6]),
        actor=str(row[7]),
        reason=None if row[8] is None else str(row[8]),
        at=as_time(row[9]),
        price_list_version=None if row[10] is None else int(row[10]),
        held=None if row[11] is None else int(row[11]),
    )


# --- queries ------------------------------------------------------------------


def page(
    cur: Cur,
    store: Store,
    *,
    customer_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_position: int = 0,
    limit: int = 100,
) -> list[MovementRow]:
    """Movements in store order; ``since`` inclusive, ``until`` exclusive;
    page on with ``after_position`` = the last row's position."""
    conditions = ["position > %s"]
    params: list[Any] = [after_position]
    if customer_id is not None:
        conditions.append("customer_id = %s")
        params.append(customer_id)
    if since is not None:
        conditions.append("at >= %s")
        params.append(store.time(since))
    if until is not None:
        conditions.append("at < %s")
        params.append(store.time(until))
    params.append(limit)
    sql = (
        f"SELECT {COLUMNS} FROM {TABLE} WHERE {' AND '.join(conditions)} ORDER BY position LIMIT %s"
    )
    return [movement_row(r) for r in cur.run(sql, params).all()]


@dataclass(frozen=True)
class CustomerTotals:
    """What one customer's movements add up to."""

    amount: int  # the sum of the signed amounts
    count: int
    last_balance_after: int  # 0 without movements


def totals(cur: Cur, customer_id: str) -> CustomerTotals:
    summed = cur.run(
        f"SELECT coalesce(sum(amount), 0), count(*) FROM {TABLE} WHERE customer_id = %s",
        (customer_id,),
    ).one()
    last = cur.run(
        f"SELECT balance_after FROM {TABLE} WHERE customer_id = %s ORDER BY position DESC LIMIT 1",
        (customer_id,),
    ).one()
    return CustomerTotals(
        amount=int(summed[0]) if summed else 0,
        count=int(summed[1]) if summed else 0,
        last_balance_after=int(last[0]) if last else 0,
    )


def list_movements(
    cur: Cur, *, customer_id: str, after: int | None, limit: int
) -> list[MovementRow]:
    """One customer's movements oldest first, after position ``after``: a
    range of the ``(customer_id, position)`` index whatever the page."""
    rows = cur.run(
        f"SELECT {COLUMNS} FROM {TABLE} WHERE customer_id = %s AND position > %s "
        "ORDER BY position LIMIT %s",
        (customer_id, after or 0, limit),
    ).all()
    return [movement_row(r) for r in rows]


def monthly_totals(cur: Cur, store: Store, *, months: int = 12) -> list[tuple[str, str, int]]:
    """``(month "YYYY-MM" in UTC, kind, sum of amounts)`` of the last ``months``
    months that had movements, oldest first: finance's chart of credits sold
    and charged per month."""
    sqlite = isinstance(store, SQLiteStore)
    month = "substr(at, 1, 7)" if sqlite else "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')"
    rows = cur.run(
        f"SELECT {month} AS month, kind, sum(amount) FROM {TABLE} WHERE held IS NULL "
        f"GROUP BY month, kind ORDER BY month DESC LIMIT %s",
        (months * len(MOVEMENT_KINDS),),
    ).all()
    found = sorted((str(m), str(k), int(total)) for m, k, total in rows)
    kept = sorted({m for m, _, _ in found})[-months:]
    return [row for row in found if row[0] in kept]
