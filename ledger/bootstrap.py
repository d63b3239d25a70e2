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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount
from ledger.application import Ledger, utc_now
from ledger.audit.service import Audit
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
from ledger.settings import LedgerSettings, database_env, load_settings

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
    ledger = Ledger(ledger_env(settings), calendar=settings.calendar, clock=clock)
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
    return Services(
        settings=settings,
        ledger=the_ledger,
        store=store,
        audit=audit,
        projections=projections,
        queries=queries,
        owns_ledger=owns_ledger,
    )


def open_integrations(settings: LedgerSettings, ledger: Ledger) -> Integrations:
    """The event feed, the webhook registry and its delivery worker, on a
    store of their own beside ``ledger``'s events (``start()`` to deliver,
    ``close()`` to stop; the ledger is left open)."""
    return Integrations(ledger, open_store(settings, ledger), settings)
