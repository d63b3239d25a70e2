"""Where the hash chain lives, and the projection that maintains it.

``ledger_chain`` holds one entry per stored event, keyed by its position.
``ChainProjector.catch_up()`` reads the events after the head and appends
their entries in one transaction per batch: an entry exists exactly once
(primary key), the head is always the last entry, and a stop anywhere
resumes from the head. Concurrent projectors serialise on an advisory lock
(PostgreSQL) or SQLite's write lock; the loser of a race rolls back.

The chain table is append-only in the database like the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Notification

from ledger.audit.chain import ChainEntry, ChainHead, extend, head_of
from ledger.persistence.sql import SqlStore

TABLE = "ledger_chain"
PAGE = 2000
_CHAIN_LOCK_KEY = 0x4348414E  # "CHAN"
MAX_CONFLICTS = 5


class _HeadMoved(Exception):
    """The head changed between reading the events and writing their links."""


class ChainStore:
    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder
        self.db = SqlStore(recorder)
        self.create_table()

    def create_table(self) -> None:
        db = self.db
        statements = [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            "position bigint PRIMARY KEY, "
            f"originator_id {db.uuid_type} NOT NULL, "
            "originator_version bigint NOT NULL, "
            f"event_digest {db.blob_type} NOT NULL, "
            f"link {db.blob_type} NOT NULL, "
            "count bigint NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_event ON {TABLE} "
            "(originator_id, originator_version)",
        ]
        if db.postgres:
            statements.insert(0, f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK_KEY})")
            statements += [
                f"CREATE OR REPLACE FUNCTION {TABLE}_refuse_change() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                "'the audit chain is append-only: % refused', TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$",
                f"CREATE OR REPLACE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE "
                f"ON {TABLE} FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse_change()",
            ]
        else:
            statements += [
                f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only: {op} refused'); END"
                for op in ("UPDATE", "DELETE")
            ]
        with db.transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(statement)

    # --- reading ----------------------------------------------------------------

    def head(self) -> ChainHead:
        with self.db.transaction(commit=False) as cursor:
            return head_of(self._last(cursor))

    def entries(self, upto: int) -> Iterator[ChainEntry]:
        """Every entry up to ``upto``, in order, a page at a time."""
        after = -(2**62)
        while True:
            with self.db.transaction(commit=False) as cursor:
                self.db.execute(
                    cursor,
                    f"SELECT * FROM {TABLE} WHERE position > %s AND position <= %s "
                    "ORDER BY position LIMIT %s",
                    (after, upto, PAGE),
                )
                rows = [self._entry(row) for row in cursor.fetchall()]
            yield from rows
            if len(rows) < PAGE:
                return
            after = rows[-1].position

    def locate(self, originator_id: UUID, version: int) -> int | None:
        with self.db.transaction(commit=False) as cursor:
            self.db.execute(
                cursor,
                f"SELECT position FROM {TABLE} "
                "WHERE originator_id = %s AND originator_version = %s",
                (self.db.uuid(originator_id), version),
            )
            row = cursor.fetchone()
            return None if row is None else int(row["position"])

    # --- writing ----------------------------------------------------------------

    def catch_up(self, batch: int = PAGE, max_batches: int | None = None) -> int:
        """Chain the events stored after the head; returns how many."""
        done, batches, conflicts = 0, 0, 0
        while max_batches is None or batches < max_batches:
            try:
                added = self._append_batch(batch)
            except (IntegrityError, _HeadMoved):
                # Another projector appended first: start again from its head.
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    break
                continue
            done += added
            batches += 1
            if added < batch:
                break
        return done

    def _append_batch(self, batch: int) -> int:
        # Read first, then write: the write transaction holds the store's
        # writer (on SQLite the only one), so it must not wait for a reader.
        head = self.head()
        notifications = self.recorder.select_notifications(
            start=head.position, limit=batch, inclusive_of_start=False
        )
        rows = [
            (
                e.position,
                self.db.uuid(e.originator_id),
                e.originator_version,
                e.event_digest,
                e.link,
                e.count,
            )
            for e in extend(head, notifications)
        ]
        if not rows:
            return 0
        with self.db.transaction(commit=True) as cursor:
            if self.db.postgres:
                cursor.execute(f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK_KEY})")
            if head_of(self._last(cursor)) != head:
                raise _HeadMoved
            cursor.executemany(
                self.db.sql(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, %s, %s)"), rows
            )
        return len(rows)

    def _last(self, cursor: Any) -> ChainEntry | None:
        cursor.execute(f"SELECT * FROM {TABLE} ORDER BY position DESC LIMIT 1")
        row = cursor.fetchone()
        return None if row is None else self._entry(row)

    def _entry(self, row: Any) -> ChainEntry:
        return ChainEntry(
            position=int(row["position"]),
            originator_id=self.db.to_uuid(row["originator_id"]),
            originator_version=int(row["originator_version"]),
            event_digest=bytes(row["event_digest"]),
            link=bytes(row["link"]),
            count=int(row["count"]),
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
