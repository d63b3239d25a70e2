"""The ``balances`` read model: one row per customer account.

Invariants owned here: each row equals the account aggregate replayed up to
the row's ``position`` (the last event of that account): the row is changed
by the aggregate's own event ``apply`` methods, run on a mirror of the row,
so the balance is always the last event's ``balance_after``. The holds not
yet released are rows of ``rm_holds`` (added for issue 15 as a table of its
own, so a store made before holds needs no rebuild: it has none); the
credits available are computed from them at the moment of the query.

Its queries (``get``, ``total``, ``list_accounts``) take an open read cursor:
the facade ``ledger.projections.queries.ReadQueries`` opens it.

The accounts list (``list_accounts``) is served from here, by
``customer_id``. Search is on two folded copies (NFKC then ``casefold``:
case-insensitive for every script) kept beside the row: a prefix of the
customer id is a range on ``customer_search`` (a byte-order index), a part
of the name a ``LIKE '%part%'`` on ``name_search``, which PostgreSQL answers
from a ``pg_trgm`` GIN index (when the extension can be created; else the
list still works, by scanning the customer-id index) and SQLite by scanning
the customer-id index, which suits the embedded store's size.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.persistence.store import MAX_IN_LIST, PG_TYPES, ColumnTypes, Cur, Store
from ledger.projections.base import Positioned, ReadModel, write_rows
from ledger.projections.rows import BalanceRow
from ledger.values import Hold, SubscriptionPeriod

TABLE = "rm_balances"
HOLDS = "rm_holds"
COLUMNS = (
    "account_id, customer_id, name, balance, purchased, charged, refunded, adjusted, "
    "subscriptions, position"
)
SEARCH_COLUMNS = "customer_search, name_search"
# Above every code point: ``prefix <= s < prefix + TOP`` is "s starts with prefix".
TOP = "\U0010ffff"
# PostgreSQL: the trigram index, only if the extension exists (a role that may
# not create extensions, or a server without it, still gets every other index
# and a working search; the start logs a warning).
_TRIGRAM_INDEX = f"""DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN  -- not permitted, or not installed on this server
        RAISE WARNING 'pg_trgm is not available (%%): name search scans the customer-id index',
            SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS {TABLE}_name_trgm ON {TABLE} '
            'USING gin (name_search %%I.gin_trgm_ops)',
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n
             ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'));
    END IF;
END $$"""


def fold(text: str) -> str:
    """The search form of a text: compatibility-normalised, case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def like_escape(text: str) -> str:
    """``text`` as a literal inside a ``LIKE ... ESCAPE '\\'`` pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


A = CustomerAccount


@dataclass
class _Account:
    """The attributes of ``CustomerAccount`` that its events' ``apply`` change."""

    customer_id: str
    name: str
    balance: int = 0
    purchased: int = 0
    charged: int = 0
    refunded: int = 0
    adjusted: int = 0
    subscriptions: list[SubscriptionPeriod] = field(default_factory=list)
    position: int = 0


def _periods_to_text(periods: Sequence[SubscriptionPeriod]) -> str:
    return json.dumps([[p.valid_from.isoformat(), p.valid_until.isoformat()] for p in periods])


def _periods_from_text(text: str) -> list[SubscriptionPeriod]:
    return [
        SubscriptionPeriod(date.fromisoformat(a), date.fromisoformat(b))
        for a, b in json.loads(text)
    ]


class Balances(ReadModel):
    name = "balances"
    event_types = (
        A.Opened,
        A.CreditsPurchased,
        A.BalanceAdjusted,
        A.CreditsCharged,
        A.CreditsRefunded,
        A.UpdateSubscriptionRecorded,
        A.CreditsReserved,
        A.CreditsReleased,
    )
    tables = (TABLE, HOLDS)
    # 2: the folded search columns and the list's indexes.
    schema_version = 2

    def create_statements(self, t: ColumnTypes) -> list[str]:
        postgres = t == PG_TYPES
        byte_order = ' COLLATE "C"' if postgres else ""
        statements = [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"account_id {t.uuid} PRIMARY KEY, customer_id TEXT NOT NULL UNIQUE, "
            f"name TEXT NOT NULL, balance {t.bigint} NOT NULL, purchased {t.bigint} NOT NULL, "
            f"charged {t.bigint} NOT NULL, refunded {t.bigint} NOT NULL, "
            f"adjusted {t.bigint} NOT NULL, subscriptions TEXT NOT NULL, "
            f"position {t.bigint} NOT NULL, customer_search TEXT{byte_order} NOT NULL, "
            "name_search TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_customer_search ON {TABLE} (customer_search)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_balance ON {TABLE} (balance, customer_id)",
            f"CREATE TABLE IF NOT EXISTS {HOLDS} ("
            f"account_id {t.uuid} NOT NULL, request_id {t.uuid} NOT NULL, "
            f"amount {t.bigint} NOT NULL, lapses_at TEXT NOT NULL, "
            "PRIMARY KEY (account_id, request_id))",
        ]
        return [*statements, _TRIGRAM_INDEX] if postgres else statements

    def apply(self, cur: Cur, events: Sequence[Positioned]) -> None:
        opened = {e.originator_id for _, e in events if isinstance(e, A.Opened)}
        accounts = self._load(cur, {e.originator_id for _, e in events} - opened)
        for position, event in events:
            if isinstance(event, A.Opened):
                account = accounts[event.originator_id] = _Account(event.customer_id, event.name)
            elif isinstance(event, A.CreditsReserved | A.CreditsReleased):
                account = accounts[event.originator_id]
                self._hold(cur, event)
            else:
                account = accounts[event.originator_id]
                event.apply(account)  # the aggregate's own change of state
            account.position = position
        s = self.store
        write_rows(
            cur,
            s,
            f"INSERT INTO {TABLE} ({COLUMNS}, {SEARCH_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, "
            "name_search = excluded.name_search, "
            "balance = excluded.balance, purchased = excluded.purchased, "
            "charged = excluded.charged, refunded = excluded.refunded, "
            "adjusted = excluded.adjusted, subscriptions = excluded.subscriptions, "
            "position = excluded.position",
            [
                (
                    s.uuid(account_id),
                    a.customer_id,
                    a.name,
                    a.balance,
                    a.purchased,
                    a.charged,
                    a.refunded,
                    a.adjusted,
                    _periods_to_text(a.subscriptions),
                    a.position,
                    fold(a.customer_id),
                    fold(a.name),
                )
                for account_id, a in accounts.items()
            ],
        )

    def _hold(self, cur: Cur, event: A.CreditsReserved | A.CreditsReleased) -> None:
        s = self.store
        key = (s.uuid(event.originator_id), s.uuid(event.request_id))
        cur.run(f"DELETE FROM {HOLDS} WHERE account_id = %s AND request_id = %s", key)
        if isinstance(event, A.CreditsReserved):
            cur.run(
                f"INSERT INTO {HOLDS} (account_id, request_id, amount, lapses_at) "
                "VALUES (%s, %s, %s, %s)",
                (*key, event.amount, event.lapses_at.isoformat()),
            )

    def _load(self, cur: Cur, account_ids: set[UUID]) -> dict[UUID, _Account]:
        found: dict[UUID, _Account] = {}
        ids = sorted(account_ids)
        for i in range(0, len(ids), MAX_IN_LIST):
            condition, params = self.store.in_list(
                "account_id", [self.store.uuid(a) for a in ids[i : i + MAX_IN_LIST]]
            )
            for row in cur.run(f"SELECT {COLUMNS} FROM {TABLE} WHERE {condition}", params).all():
                found[_uuid(row[0])] = _Account(
                    customer_id=str(row[1]),
                    name=str(row[2]),
                    balance=int(row[3]),
                    purchased=int(row[4]),
                    charged=int(row[5]),
                    refunded=int(row[6]),
                    adjusted=int(row[7]),
                    subscriptions=_periods_from_text(str(row[8])),
                    position=int(row[9]),
                )
        return found


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def balance_row(row: Sequence[Any]) -> BalanceRow:
    """A row of ``SELECT {COLUMNS}`` as a ``BalanceRow``."""
    return BalanceRow(
        customer_id=str(row[1]),
        name=str(row[2]),
        balance=int(row[3]),
        purchased=int(row[4]),
        charged=int(row[5]),
        refunded=int(row[6]),
        adjusted=int(row[7]),
        subscriptions=tuple(_periods_from_text(str(row[8]))),
        position=int(row[9]),
    )


# --- queries ------------------------------------------------------------------


def get(cur: Cur, store: Store, customer_id: str) -> BalanceRow | None:
    """The balance row of one customer, if the account is known."""
    row = cur.run(
        f"SELECT {COLUMNS} FROM {TABLE} WHERE account_id = %s",
        (store.uuid(account_id_for(customer_id)),),
    ).one()
    if row is None:
        return None
    held = cur.run(
        f"SELECT request_id, amount, lapses_at FROM {HOLDS} WHERE account_id = %s "
        "ORDER BY lapses_at, request_id",
        (store.uuid(account_id_for(customer_id)),),
    ).all()
    holds = tuple(Hold(_uuid(r[0]), int(r[1]), datetime.fromisoformat(str(r[2]))) for r in held)
    return replace(balance_row(row), holds=holds)


def with_holds(cur: Cur, store: Store, rows: list[BalanceRow]) -> list[BalanceRow]:
    """``rows`` with the holds not yet released of each (one query for all)."""
    if not rows:
        return rows
    ids = {store.uuid(account_id_for(r.customer_id)): r.customer_id for r in rows}
    condition, values = store.in_list("account_id", list(ids))
    held: dict[str, list[Hold]] = {}
    for account, request, amount, lapses_at in cur.run(
        f"SELECT account_id, request_id, amount, lapses_at FROM {HOLDS} WHERE {condition} "
        "ORDER BY lapses_at, request_id",
        values,
    ).all():
        customer = ids[store.uuid(_uuid(account))]
        held.setdefault(customer, []).append(
            Hold(_uuid(request), int(amount), datetime.fromisoformat(str(lapses_at)))
        )
    return [replace(r, holds=tuple(held.get(r.customer_id, ()))) for r in rows]


def total(cur: Cur) -> int:
    """The sum of every account's balance."""
    row = cur.run(f"SELECT coalesce(sum(balance), 0) FROM {TABLE}").one()
    return int(row[0]) if row else 0


def list_accounts(
    cur: Cur,
    *,
    q: str | None,
    balance_below: int | None,
    after: str | None,
    limit: int,
) -> list[BalanceRow]:
    """Accounts by ``customer_id`` after ``after``: ``q`` a prefix of the
    customer id or a part of the name (case-insensitive), ``balance_below``
    a bound on the balance."""
    conditions: list[str] = []
    params: list[Any] = []
    if after is not None:
        conditions.append("customer_id > %s")
        params.append(after)
    if q:
        folded = fold(q)
        conditions.append(
            "((customer_search >= %s AND customer_search < %s) OR name_search LIKE %s ESCAPE '\\')"
        )
        params += [folded, folded + TOP, f"%{like_escape(folded)}%"]
    if balance_below is not None:
        conditions.append("balance < %s")
        params.append(balance_below)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    rows = cur.run(
        f"SELECT {COLUMNS} FROM {TABLE} {where}ORDER BY customer_id LIMIT %s", [*params, limit]
    ).all()
    return [balance_row(r) for r in rows]
