"""The store against someone with database access (issue 18, points 1-4):
each test replays an attack from the security review and shows it no longer
gets through, either refused by the database or named by ``ledger verify``.

- forged snapshots: the snapshots table is append-only like the events, and
  verification replays each aggregate's events to check every snapshot;
- SQLite's ``REPLACE`` and the UPSERTs (``ON CONFLICT DO UPDATE``, PostgreSQL's
  ``MERGE``) are refused on every append-only table;
- ``TRUNCATE`` is refused on every append-only table;
- a stored value verification cannot read is a break, never a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from ledger.aggregates import account_id_for
from ledger.bootstrap import open_services
from ledger.cli import app
from ledger.settings import LedgerSettings
from tests.api.conftest import Api, make_settings
from tests.audit.conftest import Story, tamper_sqlite, tell_story

runner = CliRunner()

# Each append-only table: its key, and a change of one of its other columns.
SQLITE_TABLES = {
    "stored_events": (("rowid", "originator_id", "originator_version", "topic", "state"), "topic"),
    "stored_snapshots": (("originator_id", "originator_version", "topic", "state"), "topic"),
    "ledger_chain": (
        ("position", "originator_id", "originator_version", "event_digest", "link", "count"),
        "count",
    ),
}
PG_TABLES = {
    "ledger_events": (("originator_id", "originator_version"), "topic", "text"),
    "ledger_snapshots": (("originator_id", "originator_version"), "topic", "text"),
    "ledger_chain": (("position",), "count", "bigint"),
}


@pytest.fixture
def snapshotted(database_url: str) -> Iterator[Story]:
    """The audit story with a snapshot every 2 events: the account has
    snapshots at versions 2 (balance 80) and 4."""
    settings = LedgerSettings(database_url=database_url, support_hours="24/7", snapshot_interval=2)
    services = open_services(settings)
    customer_id = f"cust-{uuid4().hex[:10]}"
    request_id = tell_story(services.ledger, customer_id)
    services.audit.catch_up()
    yield Story(services.ledger, services.audit, database_url, customer_id, request_id)
    services.close()


def _is_pg(story: Story) -> bool:
    return story.url.startswith("postgresql")


def _rows(story: Story, table: str) -> list[tuple[object, ...]]:
    if _is_pg(story):
        with psycopg.connect(story.url) as conn:
            return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    conn = sqlite3.connect(story.url.removeprefix("sqlite:///"))
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def _refused(story: Story, statement: str, *, recursive_triggers: bool = False) -> str:
    """Run ``statement`` as someone holding the service's connection; the
    database's refusal."""
    if _is_pg(story):
        with psycopg.connect(story.url, autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement)
            return str(refused.value)
    conn = sqlite3.connect(story.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute(f"PRAGMA recursive_triggers = {'ON' if recursive_triggers else 'OFF'}")
        with pytest.raises(sqlite3.IntegrityError) as refused:
            conn.execute(statement)
        return str(refused.value)
    finally:
        conn.close()


# --- 1. snapshots: append-only, and checked by verify -------------------------------


def test_every_append_only_table_refuses_update_delete_and_truncate(snapshotted: Story) -> None:
    tables = list(PG_TABLES if _is_pg(snapshotted) else SQLITE_TABLES)
    operations = ["UPDATE", "DELETE"] + (["TRUNCATE"] if _is_pg(snapshotted) else [])
    for table in tables:
        column = PG_TABLES[table][1] if _is_pg(snapshotted) else SQLITE_TABLES[table][1]
        before = _rows(snapshotted, table)
        assert before, table
        for operation in operations:
            statement = {
                "UPDATE": f"UPDATE {table} SET {column} = {column}",
                "DELETE": f"DELETE FROM {table}",
                "TRUNCATE": f"TRUNCATE {table}",
            }[operation]
            message = _refused(snapshotted, statement)
            assert "append-only" in message and operation in message, (table, message)
        assert _rows(snapshotted, table) == before, table
    assert snapshotted.audit.verify().ok


def _forge_balance(story: Story, version: int, old: int, new: int) -> None:
    """The review's attack: an account snapshot's balance rewritten, as a
    superuser with triggers off (PostgreSQL) or by writing the file (SQLite)."""
    if _is_pg(story):
        with psycopg.connect(story.url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off
            conn.execute(
                "UPDATE ledger_snapshots SET state = convert_to(replace(convert_from(state, "
                "'UTF8'), %s, %s), 'UTF8') WHERE originator_version = %s",
                (f'"balance":{old}', f'"balance":{new}', version),
            )
        return
    tamper_sqlite(
        story.url,
        "UPDATE stored_snapshots SET state = CAST(replace(CAST(state AS TEXT), ?, ?) AS BLOB) "
        "WHERE originator_version = ?",
        params=(f'"balance":{old}', f'"balance":{new}', version),
    )


def test_verify_names_a_forged_snapshot(
    snapshotted: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    untouched = snapshotted.audit.verify()
    assert untouched.ok and untouched.snapshots_checked == 2
    account_id = account_id_for(snapshotted.customer_id)
    position = snapshotted.ledger.recorder.positions_of(account_id)[2]  # type: ignore[attr-defined]

    _forge_balance(snapshotted, version=2, old=80, new=100000)
    result = snapshotted.audit.verify()

    assert not result.ok and result.first_break is not None
    brk = result.first_break
    assert (brk.position, brk.kind) == (position, "snapshot")
    assert (brk.originator_id, brk.originator_version) == (account_id, 2)
    assert str(account_id) in brk.detail and "version 2" in brk.detail
    assert "balance" in brk.detail
    # ``ledger verify`` says the same, and exits 1.
    monkeypatch.setenv("LEDGER_DATABASE_URL", snapshotted.url)
    cli = runner.invoke(app, ["verify"])
    assert cli.exit_code == 1, cli.output
    assert f"BROKEN at position {position}: snapshot: " in cli.output
    assert str(account_id) in cli.output
    # And ``GET /v1/audit/verify``, which runs the same verification.
    with TestClient(create_app(make_settings(snapshotted.url))) as client:
        answer = Api(client).ok(Api(client).get("finance", "/v1/audit/verify"))
    assert answer["ok"] is False
    assert answer["first_break"]["position"] == position
    assert answer["first_break"]["kind"] == "snapshot"
    assert str(account_id) in answer["first_break"]["detail"]


def test_verify_names_a_snapshot_inserted_without_any_bypass(snapshotted: Story) -> None:
    """Inserting is what an append-only table allows: a made-up snapshot at a
    version that had none is refused by nothing but verification."""
    table = "ledger_snapshots" if _is_pg(snapshotted) else "stored_snapshots"
    account_id = account_id_for(snapshotted.customer_id)
    position = snapshotted.ledger.recorder.positions_of(account_id)[5]  # type: ignore[attr-defined]
    statement = (
        f"INSERT INTO {table} SELECT originator_id, 5, topic, state FROM {table} "
        "WHERE originator_version = 4"
    )
    if _is_pg(snapshotted):
        with psycopg.connect(snapshotted.url, autocommit=True) as conn:
            conn.execute(statement)
    else:
        conn = sqlite3.connect(snapshotted.url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute(statement)
        conn.close()

    result = snapshotted.audit.verify()

    assert result.first_break is not None
    assert (result.first_break.position, result.first_break.kind) == (position, "snapshot")
    assert result.first_break.originator_version == 5


# --- 2. REPLACE and UPSERT -----------------------------------------------------------


def _sqlite_replacements(table: str) -> list[str]:
    columns, changed = SQLITE_TABLES[table]
    values = ", ".join(
        "'tampered'" if c == "topic" else "0" if c == changed else c for c in columns
    )
    listed = ", ".join(columns)
    key = columns[0]
    select = f"SELECT {values} FROM {table} WHERE {key} = (SELECT min({key}) FROM {table})"
    return [
        f"REPLACE INTO {table} ({listed}) {select}",
        f"INSERT OR REPLACE INTO {table} ({listed}) {select}",
        f"INSERT INTO {table} ({listed}) {select} ON CONFLICT DO UPDATE SET "
        f"{changed} = excluded.{changed}",
    ]


@pytest.mark.parametrize("recursive_triggers", [False, True])
def test_sqlite_refuses_replace_and_upsert_on_every_append_only_table(
    snapshotted: Story, recursive_triggers: bool
) -> None:
    if _is_pg(snapshotted):
        return  # PostgreSQL has neither REPLACE nor INSERT OR REPLACE: below
    for table in SQLITE_TABLES:
        before = _rows(snapshotted, table)
        for statement in _sqlite_replacements(table):
            message = _refused(snapshotted, statement, recursive_triggers=recursive_triggers)
            assert "append-only" in message, (statement, message)
        assert _rows(snapshotted, table) == before, table
    assert snapshotted.audit.verify().ok


def test_postgres_refuses_upsert_and_merge_on_every_append_only_table(snapshotted: Story) -> None:
    """``ON CONFLICT DO UPDATE`` and ``MERGE ... WHEN MATCHED`` update (or
    delete) the row they meet: the row trigger refuses them like any update."""
    if not _is_pg(snapshotted):
        return  # SQLite's forms are above
    for table, (key, column, cast) in PG_TABLES.items():
        keys = ", ".join(key)
        on = " AND ".join(f"t.{k} = s.{k}" for k in key)
        one_row = f"SELECT * FROM {table} ORDER BY {keys} LIMIT 1"
        value = "'tampered'" if cast == "text" else "0"
        before = _rows(snapshotted, table)
        for statement in (
            f"INSERT INTO {table} {one_row} ON CONFLICT ({keys}) DO UPDATE SET {column} = {value}",
            f"MERGE INTO {table} t USING ({one_row}) s ON {on} "
            f"WHEN MATCHED THEN UPDATE SET {column} = {value}",
            f"MERGE INTO {table} t USING ({one_row}) s ON {on} WHEN MATCHED THEN DELETE",
        ):
            message = _refused(snapshotted, statement)
            assert "append-only" in message, (statement, message)
        assert _rows(snapshotted, table) == before, table
    assert snapshotted.audit.verify().ok


# --- 4. a value verification cannot read ----------------------------------------------


def test_verify_reports_a_state_stored_as_text_with_its_position(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _is_pg(story):
        return  # a bytea column holds only bytes
    notifications = story.ledger.recorder.select_notifications(start=None, limit=100)
    p = next(n.id for n in notifications if n.topic.endswith(".CreditsCharged"))
    tamper_sqlite(
        story.url,
        "UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = ?",
        params=(p,),
    )

    result = story.audit.verify()

    assert result.first_break is not None
    assert (result.first_break.position, result.first_break.kind) == (p, "unreadable")
    assert result.first_break.originator_version is not None
    monkeypatch.setenv("LEDGER_DATABASE_URL", story.url)
    cli = runner.invoke(app, ["verify"])
    assert cli.exit_code == 1, cli.output
    assert isinstance(cli.exception, SystemExit)  # an answer, not a TypeError
    assert f"BROKEN at position {p}: unreadable" in cli.output
