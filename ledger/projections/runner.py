"""The worker that feeds events to the read models, many per transaction.

Invariants owned here:
- events are read in store order from just after each read model's
  tracking position, in batches (``select_notifications`` with a ``stop``
  taken from ``max_notification_id`` first, so every id up to ``stop`` is
  already committed or rolled back for good: the event store serialises its
  writers); each batch is decoded once and applied to every read model that
  is behind in **one** transaction (one commit per batch, not one per read
  model), each read model with its tracking compare-and-set: should one
  fail, nothing of the batch is written and the positions are read again;
- a read model's position moves to the end of what was read, including
  events it has no use for and gaps left by rolled-back writes, so a
  position P is "processed" when tracking >= P; positions are never assumed
  contiguous;
- a worker writes only the read models whose lock it holds (a PostgreSQL
  session advisory lock per read model, an in-process lock on SQLite), and
  runs a follower (the audit chain) only while it holds the follower's lock;
  the compare-and-set keeps it exactly-once even if two ever overlap;
- a worker that holds no lock (the second API process, say) only tries the
  locks again every ``LOCK_RETRY_S``: it neither listens nor reads, so it
  costs nothing while another worker does the work;
- everything that loops or waits is bounded: the poll interval (LISTEN /
  NOTIFY wakes it sooner on PostgreSQL), the back-off after an error, the
  wait for a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from ledger.persistence.store import PostgresStore, Store, Writer
from ledger.projections.base import ReadModel, move_tracking, tracking_positions

log = logging.getLogger("ledger.projections")

SQLITE_POLL_S = 0.1
POSTGRES_POLL_S = 1.0
LOCK_RETRY_S = 1.0
MAX_BACKOFF_S = 5.0


class _MovedElsewhere(Exception):
    """A read model's tracking position was moved by another worker."""


class Worker:
    """Processes the event store into the read models it holds."""

    def __init__(
        self,
        ledger: Any,
        store: Store,
        models: Sequence[ReadModel],
        *,
        batch_size: int,
        on_batch: Callable[[int, int], None] | None = None,
        followers: Sequence[tuple[str, Callable[[], int]]] = (),
    ) -> None:
        self.ledger = ledger
        # Other exactly-once consumers of the store (the audit chain), by lock
        # name, that keep their own position: one bounded step each per loop.
        self.followers = dict(followers)
        self.store = store
        self.models = list(models)
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.held: set[str] = set()
        self._writer: Writer | None = None
        self._locks = store.locks()
        self.last_error: BaseException | None = None

    # --- one batch ------------------------------------------------------------

    def writer(self) -> Writer:
        if self._writer is None:
            self._writer = self.store.writer()
        return self._writer

    def positions(self, names: Sequence[str]) -> dict[str, int]:
        with self.store.read() as cur:
            return tracking_positions(cur, names)

    def step(self, models: Sequence[ReadModel], batch_size: int | None = None) -> int:
        """Process one batch into ``models``; return how many events were read."""
        if not models:
            return 0
        limit = batch_size or self.batch_size
        positions = self.positions([m.name for m in models])
        stop = self.ledger.recorder.max_notification_id() or 0
        behind = [m for m in models if positions[m.name] < stop]
        if not behind:
            return 0
        start = min(positions[m.name] for m in behind)
        topics = sorted({topic for m in behind for topic in m.topics()})
        notes = self.ledger.recorder.select_notifications(
            start + 1, limit, stop=stop, topics=topics
        )
        # Fewer than asked: nothing else up to ``stop`` concerns these models.
        end = notes[-1].id if len(notes) == limit else stop
        mapper = self.ledger.mapper
        decoded = [(n.id, mapper.to_domain_event(n)) for n in notes]
        applied: list[int] = []
        try:
            with self.writer().transaction() as cur:
                for model in behind:
                    old = positions[model.name]
                    if old >= end:
                        continue
                    types = model.event_types
                    mine = [(p, e) for p, e in decoded if p > old and type(e) in types]
                    if not move_tracking(cur, model.name, old, end):
                        raise _MovedElsewhere(model.name)
                    model.apply(cur, mine)
                    applied.append(len(mine))
        except _MovedElsewhere as moved:
            # Nothing of this batch was written: read the positions again.
            log.info("read model %s moved by another worker; re-reading", moved)
            return len(notes)
        if self.on_batch is not None:
            for count in applied:
                self.on_batch(end, count)
        return len(notes)

    def catch_up(
        self,
        models: Sequence[ReadModel],
        *,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Process until ``models`` reach the store's newest position."""
        total = 0
        target = self.ledger.recorder.max_notification_id() or 0
        while True:
            read = self.step(models, batch_size)
            total += read
            if progress is not None:
                done = min(self.positions([m.name for m in models]).values(), default=0)
                progress(done, max(target, done))
            if read == 0:
                return total

    # --- locks ----------------------------------------------------------------

    def acquire(self) -> list[ReadModel]:
        """Try to take the lock of every read model and follower not yet held;
        the read models held."""
        for name in [m.name for m in self.models] + list(self.followers):
            if name not in self.held and self._locks.try_acquire(name):
                log.info("this worker now runs the %s projection", name)
                self.held.add(name)
        return [m for m in self.models if m.name in self.held]

    def _follow(self) -> int:
        """One step of each follower whose lock this worker holds."""
        return sum(step() for name, step in self.followers.items() if name in self.held)

    @property
    def _lock_count(self) -> int:
        return len(self.models) + len(self.followers)

    def acquire_within(self, timeout_s: float) -> list[ReadModel]:
        deadline = time.monotonic() + timeout_s
        while True:
            held = self.acquire()
            if len(held) == len(self.models) or time.monotonic() >= deadline:
                return held
            time.sleep(0.1)

    def release(self) -> None:
        self._locks.release_all()
        self.held.clear()

    # --- the loop ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set; survive store outages with back-off."""
        backoff = 0.0
        listener: psycopg.Connection[Any] | None = None
        next_lock_try = 0.0
        held: list[ReadModel] = []
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_lock_try and len(self.held) < self._lock_count:
                        held = self.acquire()
                        next_lock_try = time.monotonic() + LOCK_RETRY_S
                    if not self.held:  # another worker runs everything: no listener
                        _close(listener)
                        listener = None
                        stop.wait(LOCK_RETRY_S)
                        continue
                    if isinstance(self.store, PostgresStore) and listener is None:
                        listener = self.store.listener()  # before reading: no NOTIFY lost
                    read = self.step(held) if held else 0
                    read += self._follow()
                    backoff = 0.0
                    self.last_error = None
                    if read == 0:
                        self._idle(stop, listener)
                except Exception as e:
                    self.last_error = e
                    backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_S)
                    log.warning("read model worker: %s; retrying in %.1f s", e, backoff)
                    _close(listener)
                    listener = None
                    self._drop_connections()
                    held = []
                    next_lock_try = 0.0
                    stop.wait(backoff)
        finally:
            _close(listener)
            self._drop_connections()

    def _idle(self, stop: threading.Event, listener: psycopg.Connection[Any] | None) -> None:
        if listener is None:
            stop.wait(SQLITE_POLL_S)
            return
        for _ in listener.notifies(timeout=POSTGRES_POLL_S, stop_after=1):
            pass

    def _drop_connections(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as e:  # closing a broken connection may fail again
                log.debug("closing the writer failed: %s", e)
            self._writer = None
        self.release()

    def close(self) -> None:
        self._drop_connections()


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error as e:
            log.debug("closing the listener failed: %s", e)
