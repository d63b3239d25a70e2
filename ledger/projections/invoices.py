"""The ``invoices`` read model: one row per invoice, for finance's lists.

Invariants owned here: each row equals the invoice aggregate replayed up to
the row's ``position``: the status and the payment reference are changed by
the aggregate's own event ``apply`` methods, run on a mirror of the row; the
issuing fields and ``issued_position`` (which never changes: the invoices
list pages newest first by it) are copied from ``InvoiceIssued``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledger.aggregates import Invoice
from ledger.aggregates.invoice import InvoiceStatus
from ledger.persistence.store import (
    MAX_IN_LIST,
    ColumnTypes,
    Cur,
    as_decimal,
    as_time,
    as_uuid,
)
from ledger.projections.base import Positioned, ReadModel, write_rows
from ledger.projections.rows import InvoiceRow

TABLE = "rm_invoices"
COLUMNS = (
    "invoice_id, customer_id, credits, amount_usd, status, payment_ref, issued_at, "
    "issued_position, position, price_list_version"
)
LIST_FILTERS = ("status", "customer_id")

I = Invoice  # noqa: E741 - the aggregate, as ``A`` and ``R`` elsewhere


@dataclass
class _Invoice:
    """The attributes of ``Invoice`` that its events' ``apply`` change, and
    the issuing fields."""

    customer_id: str
    credits: int
    amount_usd: Decimal
    status: InvoiceStatus
    payment_ref: str | None
    issued_at: datetime
    issued_position: int
    price_list_version: int | None
    position: int = 0


class Invoices(ReadModel):
    name = "invoices"
    event_types = (I.InvoiceIssued, I.InvoicePaid, I.InvoiceVoided)
    tables = (TABLE,)
    # 2: the price list version of a standard package (issue 14).
    schema_version = 2

    def create_statements(self, t: ColumnTypes) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"invoice_id {t.uuid} PRIMARY KEY, customer_id TEXT NOT NULL, "
            f"credits {t.bigint} NOT NULL, amount_usd {t.money} NOT NULL, "
            f"status TEXT NOT NULL, payment_ref TEXT, issued_at {t.time} NOT NULL, "
            f"issued_position {t.bigint} NOT NULL UNIQUE, position {t.bigint} NOT NULL, "
            f"price_list_version {t.bigint})",
            *(
                f"CREATE INDEX IF NOT EXISTS {TABLE}_{column} ON {TABLE} "
                f"({column}, issued_position)"
                for column in LIST_FILTERS
            ),
        ]

    def apply(self, cur: Cur, events: Sequence[Positioned]) -> None:
        issued = {e.originator_id for _, e in events if isinstance(e, I.InvoiceIssued)}
        invoices = self._load(cur, {e.originator_id for _, e in events} - issued)
        for position, event in events:
            if isinstance(event, I.InvoiceIssued):
                invoice = invoices[event.originator_id] = _Invoice(
                    customer_id=event.customer_id,
                    credits=event.credits,
                    amount_usd=event.amount_usd,
                    status=InvoiceStatus.ISSUED,
                    payment_ref=None,
                    issued_at=event.timestamp,
                    issued_position=position,
                    price_list_version=event.price_list_version,
                )
            else:
                invoice = invoices[event.originator_id]
                event.apply(invoice)  # the aggregate's own change of state
            invoice.position = position
        s = self.store
        write_rows(
            cur,
            s,
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (invoice_id) DO UPDATE SET status = excluded.status, "
            "payment_ref = excluded.payment_ref, position = excluded.position",
            [
                (
                    s.uuid(invoice_id),
                    i.customer_id,
                    i.credits,
                    s.money(i.amount_usd),
                    i.status.value,
                    i.payment_ref,
                    s.time(i.issued_at),
                    i.issued_position,
                    i.position,
                    i.price_list_version,
                )
                for invoice_id, i in invoices.items()
            ],
        )

    def _load(self, cur: Cur, invoice_ids: set[UUID]) -> dict[UUID, _Invoice]:
        found: dict[UUID, _Invoice] = {}
        ids = sorted(invoice_ids)
        for i in range(0, len(ids), MAX_IN_LIST):
            condition, params = self.store.in_list(
                "invoice_id", [self.store.uuid(v) for v in ids[i : i + MAX_IN_LIST]]
            )
            for row in cur.run(f"SELECT {COLUMNS} FROM {TABLE} WHERE {condition}", params).all():
                r = invoice_row(row)
                found[r.invoice_id] = _Invoice(
                    customer_id=r.customer_id,
                    credits=r.credits,
                    amount_usd=r.amount_usd,
                    status=InvoiceStatus(r.status),  # the enum member: ``apply`` may use ``is``
                    payment_ref=r.payment_ref,
                    issued_at=r.issued_at,
                    issued_position=r.issued_position,
                    price_list_version=r.price_list_version,
                    position=r.position,
                )
        return found


def invoice_row(row: Sequence[Any]) -> InvoiceRow:
    """A row of ``SELECT {COLUMNS}`` as an ``InvoiceRow``."""
    return InvoiceRow(
        invoice_id=as_uuid(row[0]),
        customer_id=str(row[1]),
        credits=int(row[2]),
        amount_usd=as_decimal(row[3]),
        status=str(row[4]),
        payment_ref=None if row[5] is None else str(row[5]),
        issued_at=as_time(row[6]),
        issued_position=int(row[7]),
        position=int(row[8]),
        price_list_version=None if row[9] is None else int(row[9]),
    )


def list_invoices(
    cur: Cur,
    *,
    status: str | None,
    customer_id: str | None,
    before: int | None,
    limit: int,
) -> list[InvoiceRow]:
    """Invoices newest first (by issuing position) before ``before``, of one
    status, of one customer."""
    conditions: list[str] = []
    params: list[Any] = []
    if before is not None:
        conditions.append("issued_position < %s")
        params.append(before)
    for column, value in (("status", status), ("customer_id", customer_id)):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    rows = cur.run(
        f"SELECT {COLUMNS} FROM {TABLE} {where}ORDER BY issued_position DESC LIMIT %s",
        [*params, limit],
    ).all()
    return [invoice_row(r) for r in rows]
