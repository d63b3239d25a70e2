"""The ledger's application recorders: the library's, plus

- append-only enforced by the database itself: triggers refuse every
  ``UPDATE`` and ``DELETE`` (and, on PostgreSQL, ``TRUNCATE``) of stored
  events, so a correction can only ever be a new event;
- ``positions_of()``: the global position of each event of one aggregate,
  for histories and to answer a repeated idempotent command;
- on PostgreSQL, an append is **one** statement and one round trip: a
  function takes the library's table lock, notifies and inserts, in the
  statement's own transaction. The library sends the same statements in a
  pipeline with two synchronisations, and holds the table lock (which
  serialises every writer) while the answer of the first travels back to
  Python and the COMMIT travels to the server, GIL waits included. Here the
  lock is held only for the server's own work: the insert and the durable
  commit. Same lock, same order of positions (insert order is commit
  order), same unique key on (aggregate, version).

Selected through the library's ``APPLICATION_RECORDER_TOPIC``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

APPEND_ONLY_MESSAGE = "the event store is append-only"

# Serialises concurrent start-ups that create the same tables and functions.
_DDL_LOCK_KEY = 0x4C454447  # "LEDG"


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        function = Identifier(f"{self.events_table_name}_refuse_change")
        self.sql_create_statements.insert(
            0, SQL("SELECT pg_advisory_xact_lock({0})").format(Literal(_DDL_LOCK_KEY))
        )
        self.sql_create_statements += [
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION '{message}: % of % refused', TG_OP, TG_TABLE_NAME "
                "USING ERRCODE = 'insufficient_privilege'; "
                "END $$"
            ).format(schema=schema, function=function, message=SQL(APPEND_ONLY_MESSAGE)),
            SQL(
                "CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON "
                "{schema}.{table} FOR EACH ROW EXECUTE FUNCTION {schema}.{function}()"
            ).format(
                trigger=Identifier(f"{self.events_table_name}_append_only"),
                schema=schema,
                table=table,
                function=function,
            ),
            SQL(
                "CREATE OR REPLACE TRIGGER {trigger} BEFORE TRUNCATE ON "
                "{schema}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
            ).format(
                trigger=Identifier(f"{self.events_table_name}_no_truncate"),
                schema=schema,
                table=table,
                function=function,
            ),
        ]
        append = Identifier(f"{self.events_table_name}_append")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{append}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT e.id, e.version, e.topic, e.state "
                "FROM unnest(ids, versions, topics, states) WITH ORDINALITY "
                "AS e(id, version, topic, state, n) ORDER BY e.n "
                "RETURNING notification_id; "
                "END $$"
            ).format(
                schema=schema,
                append=append,
                id_type=Identifier(self.datastore.originator_id_type),
                lock_timeout=SQL(str(int(self.datastore.lock_timeout))),
                table=table,
                channel=Identifier(self.channel_name),
            )
        )
        self._append = SQL(
            "SELECT appended FROM {schema}.{append}(%s, %s, %s, %s) AS appended"
        ).format(schema=schema, append=append)
        self._select_positions = SQL(
            "SELECT originator_version, notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s"
        ).format(schema=schema, table=table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Append in one statement; the positions, in the order of ``stored_events``.
        A clash on (aggregate, version) raises ``IntegrityError`` and stores nothing."""
        if kwargs.get("tracking") is not None:
            raise ProgrammingError("the application recorder records no tracking")
        if not stored_events:
            return []
        # Four plain arrays: psycopg sends them in binary, where an array of the
        # library's composite type is formatted as text in Python, field by field.
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._append, columns, prepare=True)
            return [row["appended"] for row in curs.fetchall()]

    def positions_of(self, originator_id: UUID) -> dict[int, int]:
        """The global position of each stored version of one aggregate."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_positions, (originator_id,))
            return {int(r["originator_version"]): int(r["notification_id"]) for r in curs}


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(
        self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name)
        self._select_positions = (
            f"SELECT originator_version, rowid FROM {self.events_table_name} "
            "WHERE originator_id = ?"
        )

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        for operation in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {self.events_table_name}_no_{operation.lower()} "
                f"BEFORE {operation} ON {self.events_table_name} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {operation} refused'); END"
            )
        return statements

    def positions_of(self, originator_id: UUID) -> dict[int, int]:
        """The global position of each stored version of one aggregate."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_positions, (originator_id.hex,))
            return {int(row[0]): int(row[1]) for row in c.fetchall()}
