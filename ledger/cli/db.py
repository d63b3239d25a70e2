"""``ledger db setup``: the schema owned by one role, the service running
under another that may only do what it needs.

The triggers make the events, the snapshots and the audit chain append-only,
but a table's owner may disable its triggers, alter or truncate it. So the
service's login must not own them: ``db setup``, run by an administrator (a
superuser, or a member of the owner role), creates every table, trigger and
function, hands them to ``--owner`` (a role nobody runs the service as,
``NOLOGIN`` is fine) and grants ``--app-role``:

- on the events, the snapshots and the chain: ``SELECT`` and ``INSERT`` only;
- on the read-model tables (derived, rebuilt at will): ``SELECT``, ``INSERT``,
  ``UPDATE``, ``DELETE`` and ``TRUNCATE``;
- the sequences, and ``USAGE`` on the schema (no ``CREATE``).

The service then runs with ``CREATE_TABLE=false`` (the library's switch,
which the ledger's own tables follow too): it creates nothing at start-up.
Run ``db setup`` again after an upgrade; it is idempotent.
"""

from __future__ import annotations

from typing import Any

import psycopg
import typer
from psycopg import sql

from ledger.audit.store import TABLE as CHAIN_TABLE
from ledger.bootstrap import open_integrations, open_services
from ledger.cli.app import app, fail, settings_or_exit
from ledger.errors import LedgerError
from ledger.persistence.store import STORE_ERRORS

db = typer.Typer(no_args_is_help=True, help="The database: schema, owner and service role.")
app.add_typer(db, name="db")


@db.command("setup")
def setup_command(
    owner: str = typer.Option(..., help="The role that owns the schema's tables."),
    app_role: str = typer.Option(..., help="The role the service runs as."),
) -> None:
    """Create the schema owned by --owner and grant --app-role only what the
    service needs (PostgreSQL)."""
    settings = settings_or_exit()
    if settings.backend != "postgres":
        fail("db setup is for PostgreSQL; a SQLite file is protected by its file permissions")
    if owner == app_role:
        fail("--owner and --app-role must differ: the owner may disable the triggers")
    try:
        # Creates the events, snapshots, read-model and tracking tables, and the chain.
        services = open_services(settings)
        open_integrations(settings, services.ledger).close()  # the webhooks' tables too
    except (LedgerError, *STORE_ERRORS) as e:  # type: ignore[misc]
        fail(f"cannot open the ledger: {e}")
    try:
        ledger = services.ledger
        kwargs: dict[str, Any] = dict(getattr(services.store, "kwargs", {}))
        schema = str(ledger.factory.datastore.schema)  # type: ignore[attr-defined]
        append_only = [
            str(ledger.recorder.events_table_name),  # type: ignore[attr-defined]
            str(ledger.snapshots.recorder.events_table_name),  # type: ignore[union-attr]
            CHAIN_TABLE,
        ]
    finally:
        services.close()
    try:
        with psycopg.connect(**kwargs, autocommit=True) as conn, conn.transaction():
            granted = _own_and_grant(conn, schema, append_only, owner, app_role)
    except psycopg.Error as e:
        fail(f"db setup failed: {e}".strip())
    typer.echo(
        f"schema {schema} owned by {owner}; {app_role} may insert and read "
        f"{', '.join(append_only)} and use {granted} read-model tables. "
        "Run the service as "
        f"{app_role} with CREATE_TABLE=false."
    )


def _own_and_grant(
    conn: psycopg.Connection[Any], schema: str, append_only: list[str], owner: str, app_role: str
) -> int:
    """Hand every table and function of the schema to ``owner``; grant
    ``app_role`` its privileges. Returns the number of read-model tables."""
    for role in (owner, app_role):
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            raise psycopg.ProgrammingError(f'role "{role}" does not exist: create it first')
    # The owner of the schema (for ``public`` since PostgreSQL 15: the
    # database's owner) may drop any table in it.
    row = conn.execute(
        "SELECT n.nspowner::regrole::text, pg_get_userbyid(d.datdba) FROM pg_namespace n, "
        "pg_database d WHERE n.nspname = %s AND d.datname = current_database()",
        (schema,),
    ).fetchone()
    if row is not None and app_role in (row[0], row[1]):
        raise psycopg.ProgrammingError(
            f'role "{app_role}" owns the database or the schema {schema}, so it could drop '
            f"the tables: ALTER DATABASE ... OWNER TO {owner} first"
        )
    s, o, a = sql.Identifier(schema), sql.Identifier(owner), sql.Identifier(app_role)
    tables = [
        str(r[0])
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        )
    ]
    functions = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
        (schema,),
    ).fetchall()
    for table in tables:  # the sequences of their columns follow
        conn.execute(sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(s, sql.Identifier(table), o))
    for (signature,) in functions:
        conn.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), o))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, a))
    conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(s, a))
    conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, a))
    read_models = [t for t in tables if t not in append_only]
    for table in tables:
        privileges = (
            "SELECT, INSERT"
            if table in append_only
            else ("SELECT, INSERT, UPDATE, DELETE, TRUNCATE")
        )
        conn.execute(
            sql.SQL("GRANT {} ON {}.{} TO {}").format(
                sql.SQL(privileges), s, sql.Identifier(table), a
            )
        )
    conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, a))
    conn.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {} TO {}").format(s, a))
    return len(read_models)
