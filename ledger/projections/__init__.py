"""The read side: read models of the event store, and the facade the HTTP
layer and the CLI use.

Invariants owned here:
- every read model is exactly-once and resumable: its rows and its tracking
  position change in one transaction (``ledger.projections.base``);
- a read with a position waits, bounded, until the read model has processed
  every event up to it ("processed up to P": tracking >= P, or no event with
  an id in (tracking, P]), else raises ``ReadModelBehindError``;
- reads never decide anything: they return what the tables hold, as frozen
  rows (``ledger.projections.rows``).

Where the tables live: in the ledger's own database (PostgreSQL: the same
database and schema as the events; SQLite: the same file). They are created
``IF NOT EXISTS`` when ``ReadModels`` is built: adding a read model needs no
manual SQL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.application import Ledger
from ledger.audit.service import Audit
from ledger.errors import StoreUnavailableError, UnknownAccountError
from ledger.persistence.store import (
    STORE_ERRORS,
    Cur,
    PostgresStore,
    SQLiteStore,
    Store,
    store_for,
)
from ledger.projections import balances, fifo, movements, requests, summary
from ledger.projections.base import (
    ReadModel,
    ensure_tracking,
    reset_tracking,
    tracking_positions,
    tracking_statements,
)
from ledger.projections.rows import (
    BalanceRow,
    MovementRow,
    ReadModelBehindError,
    RequestRow,
    SummaryRow,
)
from ledger.projections.runner import Worker

log = logging.getLogger("ledger.projections")

MODEL_CLASSES: tuple[type[ReadModel], ...] = (
    balances.Balances,
    movements.Movements,
    requests.Requests,
    summary.Summary,
)
BATCH_SIZE = 500
REBUILD_BATCH_SIZE = 2000
STOP_TIMEOUT_S = 10.0
LOCK_WAIT_S = 10.0
WAIT_POLL_S = 0.05
# The lock a worker holds to extend the audit chain (beside one per read model).
CHAIN_LOCK = "audit_chain"
# How long a read waits for ``?after=`` by default (the API passes its setting).
READ_TIMEOUT_S = 5.0


class ReadModels:
    """The read models of one ledger: run them, read them, rebuild them."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int = REBUILD_BATCH_SIZE,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.ledger = ledger
        self.read_timeout_s = read_timeout_s
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        self.store: Store = store_for(ledger)
        self.audit = Audit(ledger, self.store)
        self.models = [cls(self.store) for cls in MODEL_CLASSES]
        self.names: tuple[str, ...] = tuple(m.name for m in self.models)
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._worker: Worker | None = None
        self._create_tables()

    def _create_tables(self) -> None:
        statements = tracking_statements(self.store.types)
        for model in self.models:
            statements += model.create_statements(self.store.types)
        try:
            self.store.create(statements)
            writer = self.store.writer()
            try:
                with writer.transaction() as cur:
                    ensure_tracking(cur, self.names)
            finally:
                writer.close()
        except STORE_ERRORS as e:
            raise StoreUnavailableError(f"the read models are unavailable: {e}") from e

    def _select(self, names: Sequence[str] | None) -> list[ReadModel]:
        if names is None:
            return list(self.models)
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise ValueError(f"unknown read model {', '.join(unknown)}; known: {self.names}")
        return [m for m in self.models if m.name in names]

    def _notify(self, _position: int = 0, _events: int = 0) -> None:
        with self._progress:
            self._progress.notify_all()

    def worker(
        self, on_batch: Callable[[int, int], None] | None = None, batch_size: int | None = None
    ) -> Worker:
        def batch_done(position: int, events: int) -> None:
            self._notify()
            if on_batch is not None:
                on_batch(position, events)

        return Worker(
            self.ledger,
            self.store,
            self.models,
            batch_size=batch_size or self.batch_size,
            on_batch=batch_done,
            followers=[(CHAIN_LOCK, self._chain_step)],
        )

    def _chain_step(self) -> int:
        """One batch of the audit chain (``ledger.audit``), which the same
        worker keeps up to date."""
        return self.audit.chain.catch_up(max_batches=1)

    # --- running ----------------------------------------------------------------

    def start(self) -> None:
        """Run the read models in a background thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._worker = self.worker()
        self._thread = threading.Thread(
            target=self._worker.run, args=(self._stop,), name="read-models", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread, waiting at most ``STOP_TIMEOUT_S``."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        if isinstance(self.store, PostgresStore):
            try:
                self.store.wake()
            except STORE_ERRORS as e:  # then it stops at its next poll
                log.debug("could not wake the read-model thread: %s", e)
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            log.warning("the read-model thread did not stop within %.0f s", STOP_TIMEOUT_S)
        self._worker = None

    def active(self) -> frozenset[str]:
        """The read models this object's background runner holds the lock of."""
        worker = self._worker
        return frozenset(worker.held & set(self.names)) if worker is not None else frozenset()

    def run_forever(
        self, stop: threading.Event, on_batch: Callable[[int, int], None] | None = None
    ) -> None:
        """Run a worker in this thread until ``stop`` is set (``ledger project``)."""
        self.worker(on_batch).run(stop)

    def catch_up(self, names: Sequence[str] | None = None) -> int:
        """Process pending events in this thread, for the read models whose
        lock is free (or held by this object's own runner, which is paused)."""
        was_running = self._thread is not None
        self.stop()
        worker = self.worker()
        try:
            held = [m for m in worker.acquire() if m in self._select(names)]
            return worker.catch_up(held)
        except STORE_ERRORS as e:
            raise StoreUnavailableError(f"the read models are unavailable: {e}") from e
        finally:
            worker.close()
            if was_running:
                self.start()

    def wait_for(
        self,
        position: int | None,
        timeout_s: float | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        """Return once every read model in ``names`` has processed ``position``;
        raise ``ReadModelBehindError`` after ``timeout_s`` (default: ``read_timeout_s``)."""
        if position is None:
            return
        if timeout_s is None:
            timeout_s = self.read_timeout_s
        selected = [m.name for m in self._select(names)]
        deadline = time.monotonic() + timeout_s
        while True:
            behind = self._behind(position, selected)
            if not behind:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                name, processed = next(iter(behind.items()))
                raise ReadModelBehindError(name, position, processed)
            with self._progress:
                self._progress.wait(min(left, WAIT_POLL_S))

    def _behind(self, position: int, names: Sequence[str]) -> dict[str, int]:
        with self.store.reading() as cur:
            positions = tracking_positions(cur, names)
            behind = {n: p for n, p in positions.items() if p < position}
            if not behind:
                return {}
            lowest = min(behind.values())
            found = cur.run(
                f"SELECT {self.store.id_column} FROM {self.store.events_table} "
                f"WHERE {self.store.id_column} > %s AND {self.store.id_column} <= %s "
                f"ORDER BY {self.store.id_column} LIMIT 1",
                (lowest, position),
            ).one()
            if found is None:
                return {}
            first = int(found[0])
            return {n: p for n, p in behind.items() if p < first}

    def lag(self) -> dict[str, int]:
        """Per read model, how many stored events it has not processed yet."""
        store = self.store
        with store.reading() as cur:
            positions = tracking_positions(cur, self.names)
            lags = {}
            for name, processed in positions.items():
                row = cur.run(
                    f"SELECT count(*) FROM {store.events_table} WHERE {store.id_column} > %s",
                    (processed,),
                ).one()
                lags[name] = int(row[0]) if row else 0
        lags["chain"] = self.audit.lag()
        return lags

    def positions(self) -> dict[str, int]:
        with self.store.reading() as cur:
            return tracking_positions(cur, self.names)

    # --- reading ----------------------------------------------------------------

    def balance(self, customer_id: str) -> BalanceRow | None:
        with self.store.reading(snapshot=False) as cur:
            row = cur.run(
                f"SELECT {balances.COLUMNS} FROM {balances.TABLE} WHERE account_id = %s",
                (self.store.uuid(account_id_for(customer_id)),),
            ).one()
        return None if row is None else balances.balance_row(row)

    def _movement_query(
        self,
        customer_id: str | None,
        since: datetime | None,
        until: datetime | None,
        after_position: int,
        limit: int,
    ) -> tuple[str, list[Any]]:
        conditions = ["position > %s"]
        params: list[Any] = [after_position]
        if customer_id is not None:
            conditions.append("customer_id = %s")
            params.append(customer_id)
        if since is not None:
            conditions.append("at >= %s")
            params.append(self.store.time(since))
        if until is not None:
            conditions.append("at < %s")
            params.append(self.store.time(until))
        params.append(limit)
        return (
            f"SELECT {movements.COLUMNS} FROM {movements.TABLE} "
            f"WHERE {' AND '.join(conditions)} ORDER BY position LIMIT %s",
            params,
        )

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
        sql, params = self._movement_query(customer_id, since, until, after_position, limit)
        with self.store.reading() as cur:
            return [movements.movement_row(r) for r in cur.run(sql, params).all()]

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
            row = cur.run(
                f"SELECT {requests.COLUMNS} FROM {requests.TABLE} WHERE request_id = %s",
                (self.store.uuid(request_id),),
            ).one()
        return None if row is None else requests.request_row(row)

    def monthly_movements(self, months: int = 12) -> list[tuple[str, str, int]]:
        """Credits moved per month and kind (``movements.monthly_totals``)."""
        with self.store.reading() as cur:
            return movements.monthly_totals(
                cur, sqlite=isinstance(self.store, SQLiteStore), months=months
            )

    def summary(self) -> SummaryRow:
        """One consistent snapshot of finance's totals and the FIFO liability."""
        with self.store.reading() as cur:
            return _summary(cur)

    # --- operations -------------------------------------------------------------

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Empty the read models and process the whole store again, many
        events per transaction; return the events read."""
        models = self._select(names)
        was_running = self._thread is not None
        self.stop()
        worker = self.worker(batch_size=self.rebuild_batch_size)
        try:
            held = worker.acquire_within(LOCK_WAIT_S)
            if len(held) < len(self.models):
                busy = sorted(set(self.names) - {m.name for m in held})
                log.warning("rebuilding while another worker runs %s", ", ".join(busy))
            with worker.writer().transaction() as cur:
                for model in models:
                    reset_tracking(cur, model.name)
                    for table in model.tables:
                        cur.run(self.store.truncate(table))
            self._notify()
            return worker.catch_up(models, progress=progress)
        except STORE_ERRORS as e:
            raise StoreUnavailableError(f"the read models are unavailable: {e}") from e
        finally:
            worker.close()
            if was_running:
                self.start()

    def reconcile(self) -> list[str]:
        """Compare every account aggregate with the balances read model and
        with the sum of its movements; return readable differences."""
        self._settle()
        differences: list[str] = []
        for customer_id in self._customer_ids():
            found = self._compare_account(customer_id)
            if found:
                # A write may have landed between the two reads: settle, look again.
                self._settle()
                found = self._compare_account(customer_id)
            differences += found
        differences += self._compare_totals()
        return differences

    def _settle(self) -> None:
        position = self.ledger.position()
        try:
            self.wait_for(position, timeout_s=0.5)
        except ReadModelBehindError:
            self.catch_up()
            self.wait_for(position, timeout_s=LOCK_WAIT_S)

    def _customer_ids(self) -> Iterator[str]:
        topic = [get_topic(CustomerAccount.Opened)]
        start = 1
        while True:
            notes = self.ledger.recorder.select_notifications(start, 1000, topics=topic)
            for note in notes:
                event = self.ledger.mapper.to_domain_event(note)
                assert isinstance(event, CustomerAccount.Opened)  # selected by topic
                yield event.customer_id
            if len(notes) < 1000:
                return
            start = notes[-1].id + 1

    def _compare_account(self, customer_id: str) -> list[str]:
        try:
            account = self.ledger.get_account(customer_id)
        except UnknownAccountError:
            return [f"{customer_id}: in the event store's log but not loadable"]
        row = self.balance(customer_id)
        if row is None:
            return [f"{customer_id}: balance {account.balance} missing from the balances"]
        out = []
        for field in ("name", "balance", "purchased", "charged", "refunded", "adjusted"):
            expected, got = getattr(account, field), getattr(row, field)
            if expected != got:
                out.append(f"{customer_id}: {field} is {expected} in the events, {got} in balances")
        with self.store.reading() as cur:
            total = cur.run(
                f"SELECT coalesce(sum(amount), 0), count(*) FROM {movements.TABLE} "
                "WHERE customer_id = %s",
                (customer_id,),
            ).one()
            last = cur.run(
                f"SELECT balance_after FROM {movements.TABLE} WHERE customer_id = %s "
                "ORDER BY position DESC LIMIT 1",
                (customer_id,),
            ).one()
        moved = int(total[0]) if total else 0
        if moved != account.balance:
            out.append(
                f"{customer_id}: balance is {account.balance} in the events, "
                f"movements sum to {moved}"
            )
        last_after = int(last[0]) if last else 0
        if last_after != account.balance:
            out.append(
                f"{customer_id}: balance is {account.balance} in the events, "
                f"the last movement's balance_after is {last_after}"
            )
        return out

    def _compare_totals(self) -> list[str]:
        with self.store.reading() as cur:
            total = cur.run(f"SELECT coalesce(sum(balance), 0) FROM {balances.TABLE}").one()
            row = _summary(cur)
            lots = summary.read_lots(cur)
        out = []
        balances_total = int(total[0]) if total else 0
        if row.credits_outstanding != balances_total:
            out.append(
                f"summary: credits outstanding {row.credits_outstanding}, "
                f"balances sum to {balances_total}"
            )
        in_lots = sum(lot.remaining for lot in lots)
        if in_lots != row.credits_outstanding:
            out.append(
                f"summary: credits outstanding {row.credits_outstanding}, FIFO lots hold {in_lots}"
            )
        return out

    def close(self) -> None:
        self.stop()
        self.audit.close()
        self.store.close()


def _summary(cur: Cur) -> SummaryRow:
    row = cur.run(
        "SELECT credits_sold, usd_received, credits_charged, credits_refunded, "
        f"credits_adjusted FROM {summary.TABLE} WHERE id = 1"
    ).one()
    position_row = cur.run(
        "SELECT position FROM rm_tracking WHERE read_model = %s", (summary.Summary.name,)
    ).one()
    lots = summary.read_lots(cur)
    sold, usd, charged, refunded, adjusted = (
        (int(row[0]), Decimal(str(row[1])), int(row[2]), int(row[3]), int(row[4]))
        if row
        else (0, Decimal(0), 0, 0, 0)
    )
    return SummaryRow(
        credits_sold=sold,
        usd_received=usd.quantize(fifo.CENT),
        credits_charged=charged,
        credits_refunded=refunded,
        credits_adjusted=adjusted,
        credits_outstanding=sold - charged + refunded + adjusted,
        liability_usd=fifo.liability(lots),
        position=int(position_row[0]) if position_row else 0,
    )


__all__ = [
    "BalanceRow",
    "MovementRow",
    "ReadModelBehindError",
    "ReadModels",
    "RequestRow",
    "SummaryRow",
]
