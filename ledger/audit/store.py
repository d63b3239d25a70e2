"""Where the hash chain lives, and the projection that maintains it.

``ledger_chain`` holds one entry per stored event, keyed by its position.
``ChainStore.catch_up()`` reads the events after the head and appends their
entries in one transaction per batch: an entry exists exactly once (primary
key), the head is always the last entry, and a stop anywhere resumes from
the head. Concurrent projectors serialise on an advisory lock (PostgreSQL)
or SQLite's write lock and re-check the head inside the transaction; the
loser of a race starts again from the new head.

The chain table is append-only in the database, like the events: ``UPDATE``,
``DELETE``, ``TRUNCATE`` and any insert over an existing entry (SQLite's
``REPLACE``, an UPSERT) are refused by triggers.

Verification reads both tables here, a page at a time, in constant memory:
``stored_rows`` and ``ChainStore.rows`` as plain tuples (in binary on
PostgreSQL) for ``ledger.audit.chain.confirm``; ``stored_notifications``
(which converts nothing that could fail) and ``ChainStore.entries`` as
objects, for the judging pass after it.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Notification

from ledger.audit.chain import ChainEntry, ChainHead, ChainRow, StoredRow, extend, head_of
from ledger.errors import StoreUnavailableError
from ledger.persistence.recorders import postgres_append_only_ddl, sqlite_append_only_ddl
from ledger.persistence.store import STORE_ERRORS, Cur, Store, Writer, as_uuid, lock_key

TABLE = "ledger_chain"
COLUMNS = ("position", "originator_id", "originator_version", "event_digest", "link", "count")
PAGE = 2000
MAX_CONFLICTS = 5
APPEND_ONLY_MESSAGE = "the audit chain is append-only"


class _HeadMoved(Exception):
    """The head changed between reading the events and writing their links."""


class ChainStore:
    def __init__(self, recorder: ApplicationRecorder, store: Store) -> None:
        self.recorder = recorder
        self.store = store
        self._writer: Writer | None = None
        self._writing = threading.Lock()
        self.create_table()

    def create_table(self) -> None:
        t = self.store.types
        statements = [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"position {t.bigint} PRIMARY KEY, originator_id {t.uuid} NOT NULL, "
            f"originator_version {t.bigint} NOT NULL, event_digest {t.blob} NOT NULL, "
            f"link {t.blob} NOT NULL, count {t.bigint} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_event ON {TABLE} "
            "(originator_id, originator_version)",
        ]
        if self.store.backend == "sqlite":
            statements += sqlite_append_only_ddl(TABLE, APPEND_ONLY_MESSAGE, keys=(("position",),))
        else:
            statements += postgres_append_only_ddl(None, TABLE, APPEND_ONLY_MESSAGE)
        try:
            self.store.create(statements)
        except STORE_ERRORS as e:
            raise StoreUnavailableError(f"the audit chain is unavailable: {e}") from e

    # --- reading ----------------------------------------------------------------

    def head(self) -> ChainHead:
        with self.store.reading() as cur:
            return head_of(self._last(cur))

    def entries(self, upto: int, after: int | None = None) -> Iterator[ChainEntry]:
        """Every entry after ``after`` (all: ``None``) up to ``upto``, in
        order, a page at a time."""
        if after is None:
            after = -(2**62)
        while True:
            with self.store.reading() as cur:
                rows = cur.run(
                    f"SELECT {', '.join(COLUMNS)} FROM {TABLE} "
                    "WHERE position > %s AND position <= %s ORDER BY position LIMIT %s",
                    (after, upto, PAGE),
                ).all()
            entries = [_entry(row) for row in rows]
            yield from entries
            if len(entries) < PAGE:
                return
            after = entries[-1].position

    def rows(self, upto: int) -> Iterator[ChainRow]:
        """Every entry up to ``upto`` as a plain tuple (``ChainRow``: the
        originator id as its 16 bytes), a page of ``SCAN_PAGE`` at a time."""
        if self.store.backend == "sqlite":
            pages = _pages(self.store, _CHAIN_SCAN.format(id="originator_id"), upto)
            return _with_uuid_bytes(pages)
        return itertools.chain.from_iterable(
            _pages(self.store, _CHAIN_SCAN.format(id="uuid_send(originator_id)"), upto)
        )

    def locate(self, originator_id: UUID, version: int) -> int | None:
        with self.store.reading() as cur:
            row = cur.run(
                f"SELECT position FROM {TABLE} "
                "WHERE originator_id = %s AND originator_version = %s",
                (self.store.uuid(originator_id), version),
            ).one()
        return None if row is None else int(row[0])

    # --- writing ----------------------------------------------------------------

    def catch_up(self, batch: int = PAGE, max_batches: int | None = None) -> int:
        """Chain the events stored after the head; returns how many."""
        done, batches, conflicts = 0, 0, 0
        while max_batches is None or batches < max_batches:
            try:
                added = self._append_batch(batch)
            except (_HeadMoved, psycopg.IntegrityError, sqlite3.IntegrityError):
                # Another projector appended first: start again from its head.
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    break
                continue
            except STORE_ERRORS as e:
                raise StoreUnavailableError(f"the audit chain is unavailable: {e}") from e
            done += added
            batches += 1
            if added < batch:
                break
        return done

    def _append_batch(self, batch: int) -> int:
        # Read first, then write: the write transaction must not wait for a
        # reader while it holds the writer.
        head = self.head()
        notifications = self.recorder.select_notifications(
            start=head.position, limit=batch, inclusive_of_start=False
        )
        rows = [
            (
                e.position,
                self.store.uuid(e.originator_id),
                e.originator_version,
                e.event_digest,
                e.link,
                e.count,
            )
            for e in extend(head, notifications)
        ]
        if not rows:
            return 0
        with self._writing:
            try:
                with self._writer_connection().transaction() as cur:
                    if self.store.backend != "sqlite":
                        cur.run("SELECT pg_advisory_xact_lock(%s)", (lock_key("chain"),))
                    if head_of(self._last(cur)) != head:
                        raise _HeadMoved
                    cur.append(TABLE, COLUMNS, rows)
            except STORE_ERRORS:
                self._drop_writer()
                raise
        return len(rows)

    def _writer_connection(self) -> Writer:
        if self._writer is None:
            self._writer = self.store.writer()
        return self._writer

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(*STORE_ERRORS):  # a broken connection may fail again
                writer.close()

    def close(self) -> None:
        with self._writing:
            self._drop_writer()

    def _last(self, cur: Cur) -> ChainEntry | None:
        row = cur.run(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY position DESC LIMIT 1"
        ).one()
        return None if row is None else _entry(row)


def _entry(row: tuple[Any, ...]) -> ChainEntry:
    position, originator_id, version, digest, link, count = row
    return ChainEntry(
        position=int(position),
        originator_id=as_uuid(originator_id),
        originator_version=int(version),
        event_digest=bytes(digest),
        link=bytes(link),
        count=int(count),
    )


def stored_events(
    recorder: ApplicationRecorder, upto: int | None = None, after: int | None = None
) -> Iterator[Notification]:
    """Every stored event after ``after`` (all: ``None``) in position order,
    a page at a time (constant memory)."""
    start: int | None = after
    while True:
        page = recorder.select_notifications(
            start=start, limit=PAGE, stop=upto, inclusive_of_start=False
        )
        yield from page
        if len(page) < PAGE:
            return
        start = page[-1].id


# --- plain scans for verification (``ledger.audit.chain``) ------------------------

#: Rows per page of the plain scans: a page is one statement and one round
#: trip, and a few thousand tuples of an event's size (2000 measured a little
#: faster than 5000 or 10,000).
SCAN_PAGE = 2000
_CHAIN_SCAN = (
    "SELECT position, {id}, originator_version, event_digest, link FROM "
    + TABLE
    + " WHERE position > %s ORDER BY position LIMIT %s"
)


def _events_scan(store: Store, id_expression: str) -> str:
    id_column = store.id_column
    return (
        f"SELECT {id_column}, {id_expression}, originator_version, topic, state "
        f"FROM {store.events_table} WHERE {id_column} > %s ORDER BY {id_column} LIMIT %s"
    )


def stored_rows(
    store: Store, upto: int, progress: Callable[[int], None] | None = None
) -> Iterator[StoredRow]:
    """Every stored event up to ``upto`` as a plain tuple (``StoredRow``: the
    originator id as its 16 bytes), straight from the events table a page of
    ``SCAN_PAGE`` at a time, each page one statement in binary (constant
    memory). ``progress`` gets the number of events read after each page."""
    if store.backend == "sqlite":
        pages = _pages(store, _events_scan(store, "originator_id"), upto, progress=progress)
        return _with_uuid_bytes(pages)
    sql = _events_scan(store, "uuid_send(originator_id)")
    return itertools.chain.from_iterable(_pages(store, sql, upto, progress=progress))


def stored_notifications(store: Store, after: int | None = None) -> Iterator[Notification]:
    """Every stored event after ``after`` (all: ``None``), in position order,
    as the values the store holds: no conversion that could fail (an
    originator id that is no UUID stays what it is, for ``verify`` to call
    it unreadable), a page at a time."""
    for rows in _pages(store, _events_scan(store, "originator_id"), None, after=after):
        for position, originator_id, version, topic, state in rows:
            yield Notification(
                id=position,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=state,
            )


def _pages(
    store: Store,
    sql: str,
    upto: int | None,
    *,
    after: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql`` (its parameters: after, limit; its first column
    the position) after ``after`` up to ``upto`` (``None``: no bound), a
    page at a time.

    ``upto`` is applied here, not in the SQL: with an upper bound the
    planner, misled by a table's stale statistics, may choose a bitmap scan
    and a sort of the whole range over the index scan (measured 20 times
    slower per page on a 100,000-event store)."""
    start, read = -(2**62) if after is None else after, 0
    while True:
        with store.reading(snapshot=False) as cur:
            rows = cur.scan(sql, (start, SCAN_PAGE))
        full = len(rows) == SCAN_PAGE
        if upto is not None and rows and rows[-1][0] > upto:
            rows, full = [row for row in rows if row[0] <= upto], False
        if rows:
            yield rows
        read += len(rows)
        if progress is not None:
            progress(read)
        if not full:
            return
        start = rows[-1][0]


def _with_uuid_bytes(pages: Iterator[list[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    """SQLite's rows with the originator id (text there) as its 16 bytes; an
    id that is no UUID stays as it is, and ``confirm`` stops at it."""
    for rows in pages:
        for row in rows:
            try:
                yield (row[0], UUID(row[1]).bytes, *row[2:])
            except (TypeError, ValueError, AttributeError):
                yield row
