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
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Notification

from ledger.audit.chain import ChainEntry, ChainHead, extend, head_of
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

    def entries(self, upto: int) -> Iterator[ChainEntry]:
        """Every entry up to ``upto``, in order, a page at a time."""
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


def stored_events(recorder: ApplicationRecorder, upto: int | None = None) -> Iterator[Notification]:
    """Every stored event in position order, a page at a time (constant memory)."""
    start: int | None = None
    while True:
        page = recorder.select_notifications(
            start=start, limit=PAGE, stop=upto, inclusive_of_start=False
        )
        yield from page
        if len(page) < PAGE:
            return
        start = page[-1].id
