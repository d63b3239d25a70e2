"""A thin, dialect-aware handle on the ledger's own database, for tables the
library does not manage (the audit chain, read models).

It reuses the event store's datastore (its pool and its transactions), so
our rows live in the same database (PostgreSQL) or the same file (SQLite)
as the events. Queries are written with ``%s`` placeholders; on SQLite they
become ``?``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.errors import StoreUnavailableError


class SqlStore:
    def __init__(self, recorder: ApplicationRecorder) -> None:
        if isinstance(recorder, PostgresApplicationRecorder):
            self.postgres = True
        elif isinstance(recorder, SQLiteApplicationRecorder):
            self.postgres = False
        else:
            raise TypeError(f"unsupported recorder {type(recorder).__name__}")
        self._datastore: Any = recorder.datastore

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        """A cursor inside one transaction; rows can be read by column name."""
        try:
            with self._datastore.transaction(commit=commit) as cursor:
                yield cursor
        except (OperationalError, InterfaceError) as e:
            raise StoreUnavailableError(f"the database is unavailable: {e}") from e

    def sql(self, text: str) -> str:
        return text if self.postgres else text.replace("%s", "?")

    def execute(self, cursor: Any, text: str, params: tuple[Any, ...] = ()) -> None:
        cursor.execute(self.sql(text), params)

    def uuid(self, value: UUID) -> UUID | str:
        """A UUID as this database stores it."""
        return value if self.postgres else value.hex

    def to_uuid(self, value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(str(value))

    @property
    def blob_type(self) -> str:
        return "bytea" if self.postgres else "BLOB"

    @property
    def uuid_type(self) -> str:
        return "uuid" if self.postgres else "TEXT"
