"""The worker that feeds events to the read models, many per transaction.

Invariants owned here:
- events are read in store order from just after each read model's
  tracking position, in batches (``select_notifications`` by position, cut
  to a ``stop`` taken from ``max_notification_id`` first, so every id up to
  ``stop`` is already committed or rolled back for good: the event store
  serialises its writers, and to the models' topics); each batch is decoded
  once and applied to every read model that is behind in **one**
  transaction (one commit per batch, not one per read model), each read
  model with its tracking compare-and-set: should one fail, nothing of the
  batch is written and the positions are read again;
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
  wait for a lock;
- only the store's errors (``RETRYABLE``: the database down, locked or
  unreachable) are retried without end, with the capped back-off. Anything
  else (a read model that cannot apply an event: a programming error, an
  event its rules cannot take) is a ``ProjectionFailedError``: the batch is
  read again one event at a time, so the failure names the one event, and
  after ``MAX_ATTEMPTS`` failures in a row at it the worker logs an error
  naming the read model, the position and the error, keeps it in
  ``failure`` and stops (``/readyz`` then answers 503 with it, ``ledger
  project`` exits non-zero).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from ledger.errors import ProjectionFailedError, StoreUnavailableError
from ledger.persistence.store import STORE_ERRORS, PostgresStore, Store, Writer
from ledger.projections.base import Positioned, ReadModel, move_tracking, tracking_positions

log = logging.getLogger("ledger.projections")

SQLITE_POLL_S = 0.1
POSTGRES_POLL_S = 1.0
LOCK_RETRY_S = 1.0
MAX_BACKOFF_S = 5.0
#: Failures in a row at the same event before the worker stops: an error
#: that is not the store's does not go away by retrying.
MAX_ATTEMPTS = 3
#: The errors of a store that is down, locked or unreachable: retried without end.
RETRYABLE: tuple[type[BaseException], ...] = (*STORE_ERRORS, StoreUnavailableError)


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
        #: Why the worker stopped, once it has (``run``).
        self.failure: ProjectionFailedError | None = None
        # After a failure, positions up to here are read one event at a time.
        self._suspect_until = 0
        self._failed_at: tuple[str, int | None] | None = None
        self._attempts = 0
        # The locks last reported as held by another worker (``_report_standby``).
        self._standby: tuple[str, ...] = ()

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
        if start < self._suspect_until:
            limit = 1  # after a failure: one event at a time, to name the one that fails
        topics = {topic for m in behind for topic in m.topics()}
        # The page is read by position alone and cut to ``stop`` and to the
        # models' topics here: with a topic list or an upper bound in the
        # query, a store whose statistics are stale (just restored, or just
        # filled) gets a bitmap scan of everything from ``start`` on and a sort
        # on disk for every page, quadratic over a rebuild; by position alone
        # it is an index range scan whatever the statistics
        # (``bench/results.md``, "Read-model rebuild").
        page = self.ledger.recorder.select_notifications(start + 1, limit)
        notes = [n for n in page if n.id <= stop and n.topic in topics]
        # A short page, or one past ``stop``: nothing else up to ``stop``.
        end = page[-1].id if len(page) == limit and page[-1].id < stop else stop
        applied: list[int] = []
        try:
            decoded = self._decode(notes, behind)
            with self.writer().transaction() as cur:
                for model in behind:
                    old = positions[model.name]
                    if old >= end:
                        continue
                    types = model.event_types
                    if decoded and decoded[0][0] > old:  # the whole batch is new to it
                        mine = [pe for pe in decoded if type(pe[1]) in types]
                    else:
                        mine = [(p, e) for p, e in decoded if p > old and type(e) in types]
                    if not move_tracking(cur, model.name, old, end):
                        raise _MovedElsewhere(model.name)
                    _apply(model, cur, mine)
                    applied.append(len(mine))
        except _MovedElsewhere as moved:
            # Nothing of this batch was written: read the positions again.
            log.info("read model %s moved by another worker; re-reading", moved)
            return len(page)
        except ProjectionFailedError:
            self._suspect_until = max(self._suspect_until, end)
            raise
        if self.on_batch is not None:
            for count in applied:
                self.on_batch(end, count)
        return len(page)

    def _decode(self, notes: Sequence[Any], behind: Sequence[ReadModel]) -> list[Positioned]:
        to_event = self.ledger.mapper.to_domain_event
        try:
            return [(note.id, to_event(note)) for note in notes]
        except RETRYABLE:
            raise
        except Exception:  # found again, and named, below
            pass
        decoded: list[Positioned] = []
        for note in notes:
            try:
                decoded.append((note.id, to_event(note)))
            except RETRYABLE:
                raise
            except Exception as e:  # a stored event no read model can read
                names = ", ".join(m.name for m in behind)
                raise ProjectionFailedError(names, note.id, _describe(e)) from e
        return decoded

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
        done = 0
        for name, step in self.followers.items():
            if name not in self.held:
                continue
            try:
                done += step()
            except RETRYABLE:
                raise
            except Exception as e:
                raise ProjectionFailedError(name, None, _describe(e)) from e
        return done

    @property
    def _lock_count(self) -> int:
        return len(self.models) + len(self.followers)

    def acquire_within(
        self, timeout_s: float, wanted: Sequence[ReadModel] | None = None
    ) -> list[ReadModel]:
        """The read models held once those ``wanted`` (all by default) are,
        or after ``timeout_s``."""
        names = {m.name for m in (self.models if wanted is None else wanted)}
        deadline = time.monotonic() + timeout_s
        while True:
            held = self.acquire()
            if names <= {m.name for m in held} or time.monotonic() >= deadline:
                return held
            time.sleep(0.1)

    def _report_standby(self) -> None:
        """Say once which locks another worker holds (this one is on standby
        for them), and again whenever that changes."""
        names = [m.name for m in self.models] + list(self.followers)
        waiting = tuple(n for n in names if n not in self.held)
        if waiting == self._standby:
            return
        self._standby = waiting
        if waiting:
            log.info(
                "on standby for %s: another worker holds their locks; "
                "this one takes over when it stops",
                ", ".join(waiting),
            )

    def release(self) -> None:
        self._locks.release_all()
        self.held.clear()

    # --- the loop ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set; survive store outages with back-off;
        stop, with ``failure`` set, on an event a read model cannot apply."""
        backoff = 0.0
        listener: psycopg.Connection[Any] | None = None
        next_lock_try = 0.0
        held: list[ReadModel] = []
        try:
            while not stop.is_set() and self.failure is None:
                try:
                    if time.monotonic() >= next_lock_try and len(self.held) < self._lock_count:
                        held = self.acquire()
                        next_lock_try = time.monotonic() + LOCK_RETRY_S
                        self._report_standby()
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
                    self._failed_at, self._attempts = None, 0
                    if read == 0:
                        self._idle(stop, listener)
                except Exception as e:
                    self.last_error = e
                    backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_S)
                    if not isinstance(e, RETRYABLE) and self._gives_up(e, held):
                        return
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

    def _gives_up(self, error: Exception, held: Sequence[ReadModel]) -> bool:
        """Count a failure that is not the store's; set ``failure`` and say so
        once it happened ``MAX_ATTEMPTS`` times in a row at the same event."""
        if not isinstance(error, ProjectionFailedError):  # outside any read model's apply
            names = ", ".join(m.name for m in held) or "read models"
            error = ProjectionFailedError(names, None, _describe(error))
        at = (error.read_model, error.position)
        self._attempts = self._attempts + 1 if at == self._failed_at else 1
        self._failed_at = at
        if self._attempts < MAX_ATTEMPTS:
            return False
        self.failure = error
        log.error("read model worker stopped after %d attempts: %s", self._attempts, error.detail)
        return True

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


def _apply(model: ReadModel, cur: Any, events: Sequence[Positioned]) -> None:
    """``model.apply``; an error that is not the store's names the model, and
    the event when the batch is one event."""
    try:
        model.apply(cur, events)
    except RETRYABLE:
        raise
    except Exception as e:
        position = events[0][0] if len(events) == 1 else None
        raise ProjectionFailedError(model.name, position, _describe(e)) from e


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error as e:
            log.debug("closing the listener failed: %s", e)
