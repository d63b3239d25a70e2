"""A store created by the code before the append-only triggers were renamed
(``{table}_append_only``, ``{table}_no_truncate``, ``{table}_no_update``...)
opens with the new code: the old triggers and functions are replaced by the
new ones, nothing is left twice, and every refusal holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from ledger.bootstrap import open_services
from ledger.persistence.recorders import append_only_names
from ledger.settings import LedgerSettings
from tests.audit.conftest import tell_story

# The DDL of the older code, as it stood.
OLD_PG = [
    "CREATE OR REPLACE FUNCTION public.ledger_events_refuse_change() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'the event store is append-only: % of % refused', TG_OP, TG_TABLE_NAME "
    "USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE OR REPLACE TRIGGER ledger_events_append_only BEFORE UPDATE OR DELETE ON "
    "public.ledger_events FOR EACH ROW EXECUTE FUNCTION public.ledger_events_refuse_change()",
    "CREATE OR REPLACE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON "
    "public.ledger_events FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_events_refuse_change()",
    "CREATE OR REPLACE FUNCTION ledger_chain_refuse_change() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
    "'the audit chain is append-only: % refused', TG_OP "
    "USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE OR REPLACE TRIGGER ledger_chain_append_only BEFORE UPDATE OR DELETE "
    "ON ledger_chain FOR EACH ROW EXECUTE FUNCTION ledger_chain_refuse_change()",
]
OLD_SQLITE = [
    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'append-only: {op} refused'); END"
    for table in ("stored_events", "ledger_chain")
    for op in ("UPDATE", "DELETE")
]


def _open(url: str) -> None:
    settings = LedgerSettings(database_url=url, support_hours="24/7", snapshot_interval=2)
    open_services(settings).close()  # every table, the chain's too


def _pg_triggers(conn: psycopg.Connection[tuple[object, ...]]) -> set[tuple[str, str]]:
    rows = conn.execute(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal"
    ).fetchall()
    return {(str(r[0]), str(r[1])) for r in rows}


def _expected(tables: list[str], kinds: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(table, append_only_names(table)[kind]) for table in tables for kind in kinds}


@pytest.mark.postgres
def test_a_postgres_store_of_the_old_code_opens_with_the_new_triggers(
    fresh_postgres_url: str,
) -> None:
    settings = LedgerSettings(
        database_url=fresh_postgres_url, support_hours="24/7", snapshot_interval=2
    )
    services = open_services(settings)
    tell_story(services.ledger, f"cust-{uuid4().hex[:8]}")
    services.audit.catch_up()
    services.close()
    tables = ["ledger_events", "ledger_snapshots", "ledger_chain"]
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        # Back to the old store: the old triggers, none of the new.
        for table, name in _pg_triggers(conn):
            conn.execute(f'DROP TRIGGER "{name}" ON {table}')
        for statement in OLD_PG:
            conn.execute(statement)
        assert len(_pg_triggers(conn)) == 3

    _open(fresh_postgres_url)

    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        assert _pg_triggers(conn) == _expected(tables, ("row", "truncate"))
        functions = conn.execute(
            "SELECT proname FROM pg_proc WHERE proname LIKE '%refuse%'"
        ).fetchall()
        assert {str(f[0]) for f in functions} == {
            append_only_names(table)["function"] for table in tables
        }
        for table in tables:
            for statement in (f"DELETE FROM {table}", f"TRUNCATE {table}"):
                with pytest.raises(psycopg.Error, match="append-only"):
                    conn.execute(statement)
    _open(fresh_postgres_url)  # and again: idempotent


def test_a_sqlite_store_of_the_old_code_opens_with_the_new_triggers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    services = open_services(
        LedgerSettings(database_url=url, support_hours="24/7", snapshot_interval=2)
    )
    tell_story(services.ledger, f"cust-{uuid4().hex[:8]}")
    services.audit.catch_up()
    services.close()
    conn = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f'DROP TRIGGER "{name}"')
        for statement in OLD_SQLITE:
            conn.execute(statement)
    finally:
        conn.close()

    _open(url)
    _open(url)

    conn = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        triggers = conn.execute(
            "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall()
        tables = ["stored_events", "stored_snapshots", "ledger_chain"]
        assert set(triggers) == _expected(tables, ("update", "delete", "replace"))
        assert len(triggers) == 9
        for table in tables:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(f"DELETE FROM {table}")
    finally:
        conn.close()
