"""What the API and the console read from the read models: ``ReadQueries``.

Invariants owned here:
- reads never decide anything: they return what the tables hold, as frozen
  rows (``ledger.projections.rows``); each query is a function of its read
  model's module taking an open cursor (``balances.get``, ``movements.page``,
  ``requests.get``, ``summary.get``), and this facade only opens the cursor
  and delegates;
- a read with a position (``?after=``) first waits, bounded by
  ``read_timeout_s``, until the read models have processed it, else raises
  ``ReadModelBehindError`` (``Projections.wait_for``).

Adding a query: write ``def page(cur: Cur, store: Store, ...) -> list[Row]``
next to the model's tables, then a method here that opens the cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from ledger.persistence.store import Store
from ledger.projections import balances, movements, requests, summary
from ledger.projections.control import Projections
from ledger.projections.rows import BalanceRow, MovementRow, RequestRow, SummaryRow

# How long a read waits for ``?after=`` by default (the API passes its setting).
READ_TIMEOUT_S = 5.0


class ReadQueries:
    """The read models' queries, over the store their worker writes."""

    def __init__(
        self, store: Store, projections: Projections, *, read_timeout_s: float = READ_TIMEOUT_S
    ) -> None:
        self.store = store
        self.projections = projections
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
