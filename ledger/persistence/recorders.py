"""The ledger's application recorders: the library's, plus

- append-only enforced by the database itself: triggers refuse every
  ``UPDATE``, ``DELETE`` and ``TRUNCATE`` of stored events, and every insert
  over an existing row (SQLite's ``REPLACE`` deletes without firing delete
  triggers; an UPSERT updates), so a correction can only ever be a new event.
  The same triggers guard the snapshots and the audit chain
  (``append_only_ddl``). Their names are a fixed prefix and a digest of the
  table's name: PostgreSQL cuts identifiers at 63 characters, and
  ``{table}_append_only`` and ``{table}_no_truncate`` once became one name
  (the second replaced the first) for a long table name;
- ``positions_of()``: the global position of each event of one aggregate,
  for histories and to answer a repeated idempotent command;
- on PostgreSQL, an append is **one** statement and one round trip
  (``ledger.persistence.library.OneStatementAppend``: same table lock, same
  order of positions, same unique key on (aggregate, version) as the
  library's append), run with its owner's rights (``ledger db setup``).

Selected through the library's ``APPLICATION_RECORDER_TOPIC``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteDatastore,
)
from psycopg.sql import SQL, Identifier, Literal

from ledger.persistence.library import OneStatementAppend

APPEND_ONLY_MESSAGE = "the event store is append-only"
SNAPSHOTS_MESSAGE = "the snapshots are append-only"

# Serialises concurrent start-ups that create the same tables and functions.
_DDL_LOCK_KEY = 0x4C454447  # "LEDG"
_PG_MAX_IDENTIFIER = 63


# --- append-only tables ------------------------------------------------------------


def _digest(table: str) -> str:
    return hashlib.sha256(table.encode()).hexdigest()[:16]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def append_only_names(table: str) -> dict[str, str]:
    """The names of the function and triggers that guard ``table``: never
    longer than 35 characters, so PostgreSQL never cuts (and merges) them."""
    d = _digest(table)
    return {
        "function": f"ledger_refuse_{d}",
        "row": f"ledger_append_only_{d}",
        "truncate": f"ledger_no_truncate_{d}",
        "update": f"ledger_no_update_{d}",
        "delete": f"ledger_no_delete_{d}",
        "replace": f"ledger_no_replace_{d}",
    }


def postgres_append_only_ddl(schema: str | None, table: str, message: str) -> list[str]:
    """Statements (no ``%``: safe with or without parameters) that make
    ``table`` refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE``. An UPSERT that
    meets an existing row (``ON CONFLICT DO UPDATE``, ``MERGE``) is an update,
    refused by the same row trigger. Idempotent; on a store created by older
    code, the older triggers and function are dropped."""
    names = append_only_names(table)
    prefix = f"{_quoted(schema)}." if schema else ""
    target = prefix + _quoted(table)
    function = prefix + _quoted(names["function"])
    old_triggers = [f"{table}_append_only", f"{table}_no_truncate"]
    drops = " ".join(
        "IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = "
        f"to_regclass('{target}') AND tgname = '{old[:_PG_MAX_IDENTIFIER]}') THEN "
        f"EXECUTE 'DROP TRIGGER {_quoted(old[:_PG_MAX_IDENTIFIER])} ON {target}'; END IF;"
        for old in old_triggers
    )
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION USING MESSAGE = '{message}: ' || TG_OP || ' of ' || "
        "TG_TABLE_NAME || ' refused', ERRCODE = 'insufficient_privilege'; END $$",
        f"CREATE OR REPLACE TRIGGER {_quoted(names['row'])} BEFORE UPDATE OR DELETE ON "
        f"{target} FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE OR REPLACE TRIGGER {_quoted(names['truncate'])} BEFORE TRUNCATE ON "
        f"{target} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"DO $$ BEGIN {drops} END $$",
        f"DROP FUNCTION IF EXISTS {prefix}"
        f"{_quoted(f'{table}_refuse_change'[:_PG_MAX_IDENTIFIER])}()",
    ]


def sqlite_append_only_ddl(table: str, message: str, *, keys: Sequence[Sequence[str]]) -> list[str]:
    """Statements that make ``table`` refuse ``UPDATE``, ``DELETE`` and any
    insert that meets an existing row under one of its unique ``keys``.

    SQLite's ``REPLACE`` (``INSERT OR REPLACE``) deletes the row it meets
    without firing delete triggers (unless the connection turned
    ``recursive_triggers`` on, which an intruder would not): a ``BEFORE
    INSERT`` trigger runs before that implicit delete, so it refuses the
    insert whatever the connection's settings. An UPSERT is refused by it too
    (and by the update trigger). A clash of (aggregate, version) stays an
    ``IntegrityError``, as the library expects."""
    names = append_only_names(table)
    statements = [
        f"CREATE TRIGGER IF NOT EXISTS {names[op.lower()]} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{message}: {op} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]
    exists = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE "
        + " AND ".join(f"{column} = NEW.{column}" for column in key)
        + ")"
        for key in keys
    )
    statements.append(
        f"CREATE TRIGGER IF NOT EXISTS {names['replace']} BEFORE INSERT ON {table} "
        f"WHEN {exists} BEGIN SELECT RAISE(ABORT, "
        f"'{message}: INSERT over an existing row refused (REPLACE or UPSERT)'); END"
    )
    statements += [f"DROP TRIGGER IF EXISTS {table}_no_{op}" for op in ("update", "delete")]
    return statements


def guard_snapshots(recorder: AggregateRecorder) -> None:
    """Make the snapshots table append-only like the events (the library
    creates it; its recorder has no hook of its own)."""
    if isinstance(recorder, PostgresAggregateRecorder):
        statements = postgres_append_only_ddl(
            recorder.datastore.schema, recorder.events_table_name, SNAPSHOTS_MESSAGE
        )
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SELECT pg_advisory_xact_lock({0})").format(Literal(_DDL_LOCK_KEY)))
            for statement in statements:
                curs.execute(SQL(statement))
    elif isinstance(recorder, SQLiteAggregateRecorder):
        statements = sqlite_append_only_ddl(
            recorder.events_table_name,
            SNAPSHOTS_MESSAGE,
            keys=(("originator_id", "originator_version"),),
        )
        with recorder.datastore.transaction(commit=True) as c:
            for statement in statements:
                c.execute(statement)


class LedgerPostgresRecorder(OneStatementAppend):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        self.sql_create_statements.insert(
            0, SQL("SELECT pg_advisory_xact_lock({0})").format(Literal(_DDL_LOCK_KEY))
        )
        self.sql_create_statements += [
            SQL(statement).format()
            for statement in postgres_append_only_ddl(
                self.datastore.schema, self.events_table_name, APPEND_ONLY_MESSAGE
            )
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
        return [
            *super().construct_create_table_statements(),
            *sqlite_append_only_ddl(
                self.events_table_name,
                APPEND_ONLY_MESSAGE,
                keys=(("rowid",), ("originator_id", "originator_version")),
            ),
        ]

    def positions_of(self, originator_id: UUID) -> dict[int, int]:
        """The global position of each stored version of one aggregate."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_positions, (originator_id.hex,))
            return {int(row[0]): int(row[1]) for row in c.fetchall()}
