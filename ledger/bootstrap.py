"""The composition root: settings in, a wired ``Ledger`` out.

Nothing else builds infrastructure; the API, the CLI and the tests call
``open_ledger``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount
from ledger.application import Ledger, utc_now
from ledger.persistence.outage import bound_outage_waits
from ledger.persistence.recorders import LedgerPostgresRecorder, LedgerSQLiteRecorder
from ledger.settings import LedgerSettings, database_env, load_settings

# How long a writer waits for SQLite's file lock before giving up, in seconds.
SQLITE_LOCK_TIMEOUT_S = 10


def ledger_env(settings: LedgerSettings) -> dict[str, str]:
    """The eventsourcing environment for these settings."""
    env = database_env(settings.database_url)
    if settings.backend == "sqlite":
        env["APPLICATION_RECORDER_TOPIC"] = get_topic(LedgerSQLiteRecorder)
        env["SQLITE_LOCK_TIMEOUT"] = str(SQLITE_LOCK_TIMEOUT_S)
    else:
        env["APPLICATION_RECORDER_TOPIC"] = get_topic(LedgerPostgresRecorder)
        env.setdefault("POSTGRES_POOL_SIZE", "5")
        env.setdefault("POSTGRES_MAX_OVERFLOW", "10")
        env.setdefault("POSTGRES_CONNECT_TIMEOUT", "5")
        env.setdefault("POSTGRES_LOCK_TIMEOUT", "10")
        # After a database restart, pooled connections are dead: check each one
        # as it is taken, so that no command fails on a connection of the old server.
        env.setdefault("POSTGRES_PRE_PING", "y")
    return env


def open_ledger(
    settings: LedgerSettings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Ledger:
    settings = settings or load_settings()
    ledger = Ledger(ledger_env(settings), calendar=settings.calendar, clock=clock)
    ledger.snapshotting_intervals = {CustomerAccount: settings.snapshot_interval}  # type: ignore[misc]
    datastore = getattr(ledger.factory, "datastore", None)
    if isinstance(datastore, PostgresDatastore):
        bound_outage_waits(datastore)
    return ledger
