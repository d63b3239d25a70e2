"""The ledger's application recorders: the library's, plus

- append-only enforced by the database itself: triggers refuse every
  ``UPDATE`` and ``DELETE`` (and, on PostgreSQL, ``TRUNCATE``) of stored
  events, so a correction can only ever be a new event;
- ``positions_of()``: the global position of each event of one aggregate,
  for histories and to answer a repeated idempotent command;
- on PostgreSQL, an append is **one** statement and one round trip
  (``ledger.persistence.library.OneStatementAppend``: same table lock, same
  order of positions, same unique key on (aggregate, version) as the
  library's append).

Selected through the library's ``APPLICATION_RECORDER_TOPIC``.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.sql import SQL, Identifier, Literal

from ledger.persistence.library import OneStatementAppend

APPEND_ONLY_MESSAGE = "the event store is append-only"

# Serialises concurrent start-ups that create the same tables and functions.
_DDL_LOCK_KEY = 0x4C454447  # "LEDG"


class LedgerPostgresRecorder(OneStatementAppend):
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
        self._select_positions = SQL(
            "SELECT originator_version, notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s"
        ).format(schema=schema, table=table)

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
