"""The composition root: settings in, a wired ``Ledger`` out.

Nothing else builds infrastructure; the API, the CLI and the tests call
``open_ledger``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount
from ledger.application import Ledger, utc_now
from ledger.persistence.library import LedgerPostgresFactory
from ledger.persistence.recorders import LedgerPostgresRecorder, LedgerSQLiteRecorder
from ledger.settings import LedgerSettings, database_env, load_settings

# How long a writer waits for SQLite's file lock before giving up, in seconds.
SQLITE_LOCK_TIMEOUT_S = 10
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
