"""What the API and the console read from the read models: ``ReadQueries``.

Invariants owned here:
- reads never decide anything: they return what the tables hold, as frozen
  rows (``ledger.projections.rows``); each query is a function of its read
  model's module taking an open cursor (``balances.get``, ``movements.page``,
  ``requests.get``, ``summary.get``), and this facade only opens the cursor
  and delegates;
- a read with a position (``?after=``) first waits, bounded by
  ``read_timeout_s``, until the read models have processed it, else raises
  ``ReadModelBehindError`` (``Projections.wait_for``);
- every list is a keyset page continued by a signed cursor
  (``ledger.projections.cursor``): the query function reads ``limit + 1``
  rows after the cursor's key, ``Cursors.page`` signs the next cursor.

Adding a query: write ``def page(cur: Cur, store: Store, ...) -> list[Row]``
next to the model's tables, then a method here that opens the cursor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from uuid import UUID

from ledger.persistence.store import Store
from ledger.projections import balances, invoices, movements, requests, summary
from ledger.projections.control import Projections
from ledger.projections.cursor import Cursors, Page
from ledger.projections.rows import (
    BalanceRow,
    InvoiceRow,
    MovementRow,
    RequestRow,
    SummaryRow,
)

# How long a read waits for ``?after=`` by default (the API passes its setting).
READ_TIMEOUT_S = 5.0


class ReadQueries:
    """The read models' queries, over the store their worker writes."""

    def __init__(
        self,
        store: Store,
        projections: Projections,
        *,
        cursors: Cursors | None = None,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.projections = projections
        #: Signs the lists' cursors; by default under the store's secret.
        self.cursors = cursors or Cursors(projections.cursor_secret)
        self.read_timeout_s = read_timeout_s

    # --- consistency --------------------------------------------------------------

    def wait_for(self, position: int | None, timeout_s: float | None = None) -> None:
        """Return once every read model has processed ``position``; raise
        ``ReadModelBehindError`` after ``timeout_s`` (default: ``read_timeout_s``)."""
        self.projections.wait_for(position, self.read_timeout_s if timeout_s is None else timeout_s)

    def lag(self) -> dict[str, int]:
        return self.projections.lag()

    def positions(self) -> dict[str, int]:
        return self.projections.positions()

    # --- reads ------------------------------------------------------------------

    def balance(self, customer_id: str) -> BalanceRow | None:
        with self.store.reading(snapshot=False) as cur:
            return balances.get(cur, self.store, customer_id)

    def movements(
        self,
        *,
        customer_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_position: int = 0,
        limit: int = 100,
    ) -> list[MovementRow]:
        """Movements in store order; ``since`` inclusive, ``until`` exclusive;
        page on with ``after_position`` = the last row's position."""
        with self.store.reading() as cur:
            return movements.page(
                cur,
                self.store,
                customer_id=customer_id,
                since=since,
                until=until,
                after_position=after_position,
                limit=limit,
            )

    def iter_movements(
        self,
        *,
        customer_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        chunk: int = 1000,
    ) -> Iterator[MovementRow]:
        """Every matching movement, in store order, ``chunk`` rows in memory at a time."""
        after = 0
        while True:
            page = self.movements(
                customer_id=customer_id, since=since, until=until, after_position=after, limit=chunk
            )
            yield from page
            if len(page) < chunk:
                return
            after = page[-1].position

    def request(self, request_id: UUID) -> RequestRow | None:
        with self.store.reading(snapshot=False) as cur:
            return requests.get(cur, self.store, request_id)

    def monthly_movements(self, months: int = 12) -> list[tuple[str, str, int]]:
        """Credits moved per month and kind, for finance's chart."""
        with self.store.reading() as cur:
            return movements.monthly_totals(cur, self.store, months=months)

    def summary(self) -> SummaryRow:
        """One consistent snapshot of finance's totals and the FIFO liability."""
        with self.store.reading() as cur:
            return summary.get(cur)

    # --- lists: keyset pages continued by a signed cursor ------------------------

    def list_accounts(
        self,
        *,
        q: str | None = None,
        balance_below: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[BalanceRow]:
        filters = {"q": q, "balance_below": balance_below}
        after = self.cursors.open(cursor, "accounts", filters, str)
        with self.store.reading(snapshot=False) as cur:
            rows = balances.list_accounts(
                cur, q=q, balance_below=balance_below, after=after, limit=limit + 1
            )
        return self.cursors.page(rows, limit, "accounts", filters, lambda r: r.customer_id)

    def list_requests(
        self,
        *,
        statuses: Sequence[str] = (),
        customer_id: str | None = None,
        category: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[RequestRow]:
        chosen = sorted(set(statuses))
        filters = {"status": chosen, "customer_id": customer_id, "category": category}
        before = self.cursors.open(cursor, "requests", filters, int)
        with self.store.reading(snapshot=False) as cur:
            rows = requests.list_requests(
                cur,
                self.store,
                statuses=chosen,
                customer_id=customer_id,
                category=category,
                before=before,
                limit=limit + 1,
            )
        return self.cursors.page(rows, limit, "requests", filters, lambda r: r.opened_position)

    def list_invoices(
        self,
        *,
        status: str | None = None,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[InvoiceRow]:
        filters = {"status": status, "customer_id": customer_id}
        before = self.cursors.open(cursor, "invoices", filters, int)
        with self.store.reading(snapshot=False) as cur:
            rows = invoices.list_invoices(
                cur, status=status, customer_id=customer_id, before=before, limit=limit + 1
            )
        return self.cursors.page(rows, limit, "invoices", filters, lambda r: r.issued_position)

    def list_movements(
        self, customer_id: str, *, cursor: str | None = None, after: int = 0, limit: int = 100
    ) -> Page[MovementRow]:
        """One account's movements, oldest first; ``cursor`` (or the older
        ``after``, a position) continues."""
        filters = {"customer_id": customer_id}
        after = self.cursors.open(cursor, "movements", filters, int) or after
        with self.store.reading(snapshot=False) as cur:
            rows = movements.list_movements(
                cur, customer_id=customer_id, after=after, limit=limit + 1
            )
        return self.cursors.page(rows, limit, "movements", filters, lambda r: r.position)
