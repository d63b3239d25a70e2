"""Running the read models: the worker's lifecycle, the wait for a
position, the lag, and rebuild.

Invariants owned here:
- every read model is exactly-once and resumable: its rows and its tracking
  position change in one transaction (``ledger.projections.base``), written
  by a ``ledger.projections.runner.Worker`` that holds its lock;
- a wait for a position returns once the read models have processed every
  event up to it ("processed up to P": tracking >= P, or no event with an id
  in (tracking, P]), else raises ``ReadModelBehindError`` after the bound;
- the same worker keeps the audit chain (``ledger.audit``) up to date, under
  its own lock;
- the tables are created ``IF NOT EXISTS`` when ``Projections`` is built:
  adding a read model needs no manual SQL, and a read model whose
  ``schema_version`` changed is dropped and rebuilt from zero by the worker
  (``ledger.projections.base.migrate``); the same transaction makes sure
  the store holds the lists' cursor secret (``cursor_secret``).

Nothing here builds infrastructure: the store and the audit are handed in
(``ledger.bootstrap``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ledger.application import Ledger
from ledger.audit.service import Audit
from ledger.errors import ProjectionFailedError, ReadModelBusyError, StoreUnavailableError
from ledger.persistence.store import STORE_ERRORS, PostgresStore, Store
from ledger.projections import balances, invoices, movements, requests, summary
from ledger.projections.base import (
    ReadModel,
    ensure_tracking,
    migrate,
    outdated,
    reset_tracking,
    schema_statements,
    tracking_positions,
    tracking_statements,
)
from ledger.projections.cursor import secret_statements, stored_secret
from ledger.projections.rows import ReadModelBehindError
from ledger.projections.runner import Worker

log = logging.getLogger("ledger.projections")

MODEL_CLASSES: tuple[type[ReadModel], ...] = (
    balances.Balances,
    movements.Movements,
    requests.Requests,
    summary.Summary,
    invoices.Invoices,
)
BATCH_SIZE = 500
# A rebuild's batches: fewer round trips and loads per event than the
# worker's (measured 8% faster than 2000 in ``bench/results.md``, "Read-model
# rebuild"), one batch of decoded events in memory at a time.
REBUILD_BATCH_SIZE = 5000
STOP_TIMEOUT_S = 10.0
LOCK_WAIT_S = 10.0
WAIT_POLL_S = 0.05
# The lock a worker holds to extend the audit chain (beside one per read model).
CHAIN_LOCK = "audit_chain"


class Projections:
    """The read models of one ledger: run them, wait for them, rebuild them."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        audit: Audit,
        *,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int = REBUILD_BATCH_SIZE,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.audit = audit
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        self.models = [cls(store) for cls in MODEL_CLASSES]
        self.names: tuple[str, ...] = tuple(m.name for m in self.models)
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._worker: Worker | None = None
        #: The store's secret for the lists' cursors (``ledger.projections.cursor``).
        self.cursor_secret = self._create_tables()

    def _create_tables(self) -> bytes:
        """Create (or, at a new schema version, rebuild) every read model's
        tables in one DDL transaction; return the store's cursor secret.

        With ``store.create_tables`` off (the schema is ``ledger db setup``'s)
        nothing is created: a read model at another schema version is then
        ``StoreUnavailableError`` asking for ``db setup``."""
        t = self.store.types
        try:
            writer = self.store.writer()
            try:
                with writer.transaction() as cur:
                    if self.store.create_tables:
                        self.store.lock_ddl(cur)
                        for statement in (
                            tracking_statements(t) + schema_statements(t) + secret_statements()
                        ):
                            cur.run(statement)
                        migrate(cur, self.models)
                        for model in self.models:
                            for statement in model.create_statements(t):
                                cur.run(statement)
                    else:
                        behind = outdated(cur, self.models)
                        if behind:
                            raise StoreUnavailableError(
                                "the read models "
                                + ", ".join(f"{n} (version {v})" for n, v in behind.items())
                                + " are at another schema version than the code's: "
                                "run `ledger db setup` again"
                            )
                    ensure_tracking(cur, self.names)
                    return stored_secret(cur)
            finally:
                writer.close()
        except STORE_ERRORS as e:
            raise StoreUnavailableError(f"the read models are unavailable: {e}") from e

    def select(self, names: Sequence[str] | None) -> list[ReadModel]:
        """The read models called ``names`` (all when ``None``); ``ValueError``
        naming the unknown ones."""
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
        """One batch of the audit chain, which the same worker keeps up to date."""
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

    def failure(self) -> ProjectionFailedError | None:
        """Why the background worker stopped, if a read model could not apply an event."""
        worker = self._worker
        return worker.failure if worker is not None else None

    def run_forever(
        self, stop: threading.Event, on_batch: Callable[[int, int], None] | None = None
    ) -> None:
        """Run a worker in this thread until ``stop`` is set (``ledger project``);
        raise ``ProjectionFailedError`` if a read model cannot apply an event."""
        worker = self.worker(on_batch)
        worker.run(stop)
        if worker.failure is not None:
            raise worker.failure

    def catch_up(self, names: Sequence[str] | None = None) -> int:
        """Process pending events in this thread, for the read models whose
        lock is free (or held by this object's own runner, which is paused)."""
        was_running = self._thread is not None
        self.stop()
        worker = self.worker()
        try:
            held = [m for m in worker.acquire() if m in self.select(names)]
            return worker.catch_up(held)
        except STORE_ERRORS as e:
            raise StoreUnavailableError(f"the read models are unavailable: {e}") from e
        finally:
            worker.close()
            if was_running:
                self.start()

    def wait_for(
        self, position: int | None, timeout_s: float, names: Sequence[str] | None = None
    ) -> None:
        """Return once every read model in ``names`` has processed ``position``;
        raise ``ReadModelBehindError`` after ``timeout_s``."""
        if position is None:
            return
        selected = [m.name for m in self.select(names)]
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
        """Per read model (and the audit chain), how many stored events it has
        not processed yet."""
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

    def unheld_locks(self) -> list[str]:
        """The read models' (and the chain's) locks no worker holds right now."""
        names = [*self.names, CHAIN_LOCK]
        try:
            held = self.store.held(names)
        except StoreUnavailableError:
            return names
        return [n for n in names if n not in held]

    def positions(self) -> dict[str, int]:
        with self.store.reading() as cur:
            return tracking_positions(cur, self.names)

    # --- operations -------------------------------------------------------------

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Empty the read models and process the whole store again, many
        events per transaction; return the events read. Waits at most
        ``LOCK_WAIT_S`` for their locks, then raises ``ReadModelBusyError``."""
        models = self.select(names)
        was_running = self._thread is not None
        self.stop()
        worker = self.worker(batch_size=self.rebuild_batch_size)
        try:
            held = {m.name for m in worker.acquire_within(LOCK_WAIT_S, models)}
            busy = [m.name for m in models if m.name not in held]
            if busy:  # emptying tables another worker writes would race it
                raise ReadModelBusyError(busy, LOCK_WAIT_S)
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

    def close(self) -> None:
        """Stop the background thread; the store and the audit are closed by
        their owner (``ledger.bootstrap.Services``)."""
        self.stop()
