"""The composition root: settings in, wired services out.

The one place that builds infrastructure: the ``Ledger`` (its event store,
``open_ledger``), the store of the ledger's own tables (``open_store``, from
the same settings), the audit, the read models' control and their queries
(``open_services``, which returns them together as ``Services``). Every
other constructor takes what it needs and builds nothing; the API's
lifespan, the CLI commands and the tests call these functions.
"""

from __future__ import annotations

import hmac
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import psycopg_pool
from eventsourcing.persistence import PersistenceError
from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount
from ledger.application import Ledger, utc_now
from ledger.audit.service import Audit
from ledger.errors import DatabaseUnusableError, StoreUnavailableError
from ledger.integrations.service import Integrations
from ledger.persistence.library import LedgerPostgresFactory
from ledger.persistence.recorders import LedgerPostgresRecorder, LedgerSQLiteRecorder
from ledger.persistence.store import PostgresStore, SQLiteStore, Store
from ledger.projections import (
    BATCH_SIZE,
    REBUILD_BATCH_SIZE,
    Cursors,
    Projections,
    ReadQueries,
)
from ledger.projections.readiness import Readiness
from ledger.settings import LedgerSettings, database_env, load_settings

#: The setting every database message names.
DATABASE_VARIABLE = "LEDGER_DATABASE_URL"
#: How long the start-up check waits for the server, in seconds.
CHECK_CONNECT_TIMEOUT_S = 5
# How long a writer waits for SQLite's file lock before giving up, in seconds.
SQLITE_LOCK_TIMEOUT_S = 10
# What the lists' cursor key is derived for, from ``LEDGER_SECRET_KEY``.
CURSOR_KEY_LABEL = b"ledger list cursors"
# Accounts kept in memory per process (each a few hundred bytes).
ACCOUNT_CACHE_SIZE = 10_000


def ledger_env(settings: LedgerSettings) -> dict[str, str]:
    """The eventsourcing environment for these settings."""
    env = database_env(settings.database_url)
    if settings.backend == "sqlite":
        env["APPLICATION_RECORDER_TOPIC"] = get_topic(LedgerSQLiteRecorder)
        env["SQLITE_LOCK_TIMEOUT"] = str(SQLITE_LOCK_TIMEOUT_S)
    else:
        # Its datastore bounds the waits for a connection during an outage.
        env["PERSISTENCE_MODULE"] = get_topic(LedgerPostgresFactory)
        env["APPLICATION_RECORDER_TOPIC"] = get_topic(LedgerPostgresRecorder)
        # Accounts (the one type loaded through the library's repository) are
        # cached, fast-forwarded by one query for newer events on every load:
        # never stale, and it spares the snapshot lookup and its replay.
        env.setdefault("AGGREGATE_CACHE_MAXSIZE", str(ACCOUNT_CACHE_SIZE))
        env.setdefault("POSTGRES_POOL_SIZE", "5")
        env.setdefault("POSTGRES_MAX_OVERFLOW", "10")
        env.setdefault("POSTGRES_CONNECT_TIMEOUT", "5")
        env.setdefault("POSTGRES_LOCK_TIMEOUT", "10")
        # No ping per connection taken: after a database restart, the first dead
        # connection found makes the pool replace them all (``OutageBoundedDatastore``).
    return env


def open_ledger(
    settings: LedgerSettings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Ledger:
    settings = settings or load_settings()
    ledger = Ledger(
        ledger_env(settings),
        calendar=settings.calendar,
        clock=clock,
        hold_working_hours=settings.hold_working_hours,
        adjustment_limit=settings.adjustment_limit,
        batch_commands=settings.batch_commands,
    )
    ledger.snapshotting_intervals = {CustomerAccount: settings.snapshot_interval}  # type: ignore[misc]
    return ledger


def open_store(settings: LedgerSettings, ledger: Ledger) -> Store:
    """The store of the ledger's own tables (read models, audit chain), in the
    database of ``settings``, beside ``ledger``'s events."""
    env = ledger_env(settings)
    events_table = str(ledger.recorder.events_table_name)  # type: ignore[attr-defined]
    store: Store
    if settings.backend == "sqlite":
        store = SQLiteStore(env["SQLITE_DBNAME"], events_table)
    else:
        store = _postgres_store(env, ledger, events_table)
    # With the library's CREATE_TABLE=false (a schema made by ``ledger db
    # setup``), the ledger's own tables are not created either.
    store.create_tables = bool(getattr(ledger.factory, "env_create_table", lambda: True)())
    return store


def _postgres_store(env: dict[str, str], ledger: Ledger, events_table: str) -> PostgresStore:
    connection = {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
    }
    return PostgresStore(
        connection,
        schema=env["POSTGRES_SCHEMA"].strip() or "public",
        events_table=events_table,
        channel=str(ledger.recorder.channel_name),  # type: ignore[attr-defined]
    )


def open_cursors(settings: LedgerSettings, projections: Projections) -> Cursors:
    """The lists' cursors, signed under a key derived from ``LEDGER_SECRET_KEY``
    when it is set (the console signs its cookies and links with the same
    setting: a cursor is never a valid signature of those), else under the
    secret kept in the read-model store (the same for every process of that
    store)."""
    key = settings.secret_key
    if key is None:
        return Cursors(projections.cursor_secret)
    return Cursors(hmac.new(key.get_secret_value().encode(), CURSOR_KEY_LABEL, "sha256").digest())


@dataclass
class Services:
    """Everything one process uses, built together and closed together."""

    settings: LedgerSettings
    ledger: Ledger
    store: Store
    audit: Audit
    projections: Projections
    queries: ReadQueries
    readiness: Readiness
    #: ``False`` when the ledger was handed in: its owner closes it.
    owns_ledger: bool = field(default=True)

    def close(self) -> None:
        self.projections.close()
        self.audit.close()
        self.store.close()
        if self.owns_ledger:
            self.ledger.close()


def open_services(
    settings: LedgerSettings | None = None,
    *,
    ledger: Ledger | None = None,
    clock: Callable[[], datetime] = utc_now,
    batch_size: int | None = None,
    rebuild_batch_size: int | None = None,
) -> Services:
    """The ledger, its store, the audit and the read models, wired. A given
    ``ledger`` (from ``open_ledger``) is used as is and left open by
    ``Services.close``; the read models' tables are created if missing."""
    settings = settings or load_settings()
    owns_ledger = ledger is None
    the_ledger = ledger if ledger is not None else open_ledger(settings, clock=clock)
    store = open_store(settings, the_ledger)
    try:
        audit = Audit(the_ledger, store)
        projections = Projections(
            the_ledger,
            store,
            audit,
            batch_size=batch_size or BATCH_SIZE,
            rebuild_batch_size=rebuild_batch_size or REBUILD_BATCH_SIZE,
        )
    except BaseException:
        store.close()
        if owns_ledger:
            the_ledger.close()
        raise
    queries = ReadQueries(
        store,
        projections,
        cursors=open_cursors(settings, projections),
        read_timeout_s=settings.read_timeout_s,
    )
    readiness = Readiness(
        projections,
        max_lag=settings.ready_max_lag,
        grace_s=settings.ready_lag_grace_s,
        expect_worker=not settings.in_process_projections,
    )
    return Services(
        settings=settings,
        ledger=the_ledger,
        store=store,
        audit=audit,
        projections=projections,
        queries=queries,
        readiness=readiness,
        owns_ledger=owns_ledger,
    )


# --- opening with one-line errors ---------------------------------------------------

#: What opening the ledger raises when its database cannot be used.
OPEN_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    sqlite3.Error,
    PersistenceError,
    StoreUnavailableError,
)


def masked_url(url: str) -> str:
    """``url`` with its password (in the user info or a ``password=``
    parameter) replaced by ``***``."""
    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


def one_line(error: BaseException) -> str:
    """What the server (or the driver) said, on one line."""
    cause = error
    while isinstance(cause, StoreUnavailableError | PersistenceError) and cause.__cause__:
        cause = cause.__cause__
    text = "; ".join(line.strip() for line in str(cause).splitlines() if line.strip())
    return re.sub(r"\s+", " ", text) or type(cause).__name__


def database_problem(settings: LedgerSettings, error: BaseException) -> DatabaseUnusableError:
    """One line naming ``LEDGER_DATABASE_URL`` (password masked) and the server's words."""
    return DatabaseUnusableError(
        f"cannot use the database {DATABASE_VARIABLE}={masked_url(settings.database_url)}: "
        f"{one_line(error)}",
        retryable=_unreachable(error),
    )


def _unreachable(error: BaseException) -> bool:
    """No server answered, or it is starting or shutting down: it may answer
    later. A server that refused (no such database, a wrong password, no
    privilege) gives a reason that waiting does not change. psycopg gives no
    SQLSTATE for a refused connection: the server's ``FATAL`` line tells."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, psycopg_pool.PoolTimeout):
            return True
        if isinstance(cause, psycopg.Error):
            if cause.sqlstate is not None:
                return cause.sqlstate.startswith(("08", "57"))
            text = str(cause)
            return "FATAL" not in text or bool(_NOT_YET.search(text))
        cause = cause.__cause__
    return isinstance(error, StoreUnavailableError)


_NOT_YET = re.compile(
    r"the database system is (starting up|shutting down|in recovery mode|not yet accepting)"
)


def check_database(settings: LedgerSettings) -> None:
    """Connect once, directly (the pool would only say it timed out), and check
    that the role may use the schema; raise ``DatabaseUnusableError`` saying
    what the server said. SQLite: nothing to check (the file is created)."""
    if settings.backend != "postgres":
        return
    env = database_env(settings.database_url)
    schema = env["POSTGRES_SCHEMA"].strip() or "public"
    try:
        with psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            dbname=env["POSTGRES_DBNAME"],
            connect_timeout=CHECK_CONNECT_TIMEOUT_S,
            autocommit=True,
        ) as conn:
            row = conn.execute(
                "SELECT to_regnamespace(%s) IS NOT NULL, "
                "to_regnamespace(%s) IS NULL OR has_schema_privilege(%s, 'USAGE')",
                (schema, schema, schema),
            ).fetchone()
    except psycopg.Error as e:
        raise database_problem(settings, e) from e
    if row is not None and row[0] and not row[1]:
        user = env["POSTGRES_USER"]
        raise database_problem(
            settings,
            PermissionError(
                f"permission denied for schema {schema}: role {user} has no USAGE on it "
                "(see docs/database-roles.md: ledger db setup grants it)"
            ),
        )


def open_checked(
    settings: LedgerSettings,
    *,
    ledger: Ledger | None = None,
    batch_size: int | None = None,
    rebuild_batch_size: int | None = None,
) -> Services:
    """``open_services`` after ``check_database``: a database that cannot be
    used raises ``DatabaseUnusableError`` (one line), never a driver's
    traceback. A given ``ledger`` is already open: only the rest is checked."""
    try:
        if ledger is None:
            check_database(settings)
        return open_services(
            settings, ledger=ledger, batch_size=batch_size, rebuild_batch_size=rebuild_batch_size
        )
    except DatabaseUnusableError:
        raise
    except OPEN_ERRORS as e:
        raise database_problem(settings, e) from e


def open_checked_ledger(settings: LedgerSettings) -> Ledger:
    """``open_ledger`` after ``check_database``, with the same one-line errors."""
    try:
        check_database(settings)
        return open_ledger(settings)
    except DatabaseUnusableError:
        raise
    except OPEN_ERRORS as e:
        raise database_problem(settings, e) from e


def open_integrations(settings: LedgerSettings, ledger: Ledger) -> Integrations:
    """The event feed, the webhook registry and its delivery worker, on a
    store of their own beside ``ledger``'s events (``start()`` to deliver,
    ``close()`` to stop; the ledger is left open)."""
    return Integrations(ledger, open_store(settings, ledger), settings)
