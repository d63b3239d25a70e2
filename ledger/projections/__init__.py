"""The read side: read models of the event store.

Where things are:
- one module per read model (``balances``, ``movements``, ``requests``,
  ``invoices``, ``summary``) owns its tables, its projection
  (``ReadModel.apply``) and its queries (functions taking an open cursor:
  ``balances.get``, ``balances.list_accounts``, ``movements.page``,
  ``requests.get``, ``requests.list_requests``, ``invoices.list_invoices``,
  ``summary.get``);
- ``control.Projections`` runs them: the tables (created ``IF NOT EXISTS``;
  a read model whose ``schema_version`` changed is dropped and rebuilt from
  zero, ``base.migrate``), the worker's lifecycle, the wait for a position,
  the lag, rebuild (``runner.Worker`` does the batches);
- ``queries.ReadQueries`` is what the API and the console read: it opens a
  cursor, delegates to the model modules and waits for ``?after=``; the
  lists are keyset pages continued by a signed cursor (``cursor.Cursors``);
- ``reconcile.reconcile`` compares the read models with the events.

Where the tables live: in the ledger's own database (PostgreSQL: the same
database and schema as the events; SQLite: the same file). ``ledger.bootstrap``
builds all of it.
"""

from __future__ import annotations

from ledger.projections.control import BATCH_SIZE, REBUILD_BATCH_SIZE, Projections
from ledger.projections.cursor import Cursors, InvalidCursorError, Page
from ledger.projections.queries import READ_TIMEOUT_S, ReadQueries
from ledger.projections.reconcile import reconcile
from ledger.projections.rows import (
    BalanceRow,
    InvoiceRow,
    MovementRow,
    ReadModelBehindError,
    RequestRow,
    SummaryRow,
)

__all__ = [
    "BATCH_SIZE",
    "READ_TIMEOUT_S",
    "REBUILD_BATCH_SIZE",
    "BalanceRow",
    "Cursors",
    "InvalidCursorError",
    "InvoiceRow",
    "MovementRow",
    "Page",
    "Projections",
    "ReadModelBehindError",
    "ReadQueries",
    "RequestRow",
    "SummaryRow",
    "reconcile",
]
