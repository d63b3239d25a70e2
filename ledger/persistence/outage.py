"""Bounded waits while PostgreSQL is unreachable.

The library retries every recorder call up to 10 times, and each attempt
waits for a pooled connection up to the pool's timeout (5 s here): while the
database is down, one command then took about 50 s before it could answer
"unavailable" (measured by tests/reliability/test_database_restart.py).

``bound_outage_waits`` keeps the full wait in normal operation, and, once
an attempt has failed to reach the database (no connection, or one the
server dropped), waits only ``DOWN_WAIT_S`` for a connection until one is
obtained again: a command on a database that is
down fails within a few seconds (``StoreUnavailableError``, HTTP 503), and
the first connection the pool makes after the restart ends it. Nothing about
what is written changes: only how long a caller waits for a connection.

Connections are not pinged when taken from the pool (a round trip more per
statement: a quarter of an in-process charge's CPU time, measured). Instead,
the first connection found dead sends the whole pool through ``check()``,
which replaces every dead idle connection at once: the library's retry of
the failed call then gets a live one, and no command fails on a connection
of a server that was restarted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresDatastore

#: How long a caller waits for a pooled connection while the database is known down.
DOWN_WAIT_S = 0.2


class _OutageState:
    def __init__(self, normal_wait_s: float) -> None:
        self.normal_wait_s = normal_wait_s
        self.down_since: float | None = None
        self.lock = threading.Lock()

    def wait_s(self) -> float:
        with self.lock:
            return self.normal_wait_s if self.down_since is None else DOWN_WAIT_S

    def failed(self) -> bool:
        """Record a failure; ``True`` for the first one of an outage."""
        with self.lock:
            if self.down_since is None:
                self.down_since = time.monotonic()
                return True
            return False

    def reached(self) -> None:
        with self.lock:
            self.down_since = None


def bound_outage_waits(datastore: PostgresDatastore) -> None:
    """Make ``datastore`` wait briefly for connections while the database is down."""
    pool = datastore.pool
    state = _OutageState(float(pool.timeout))
    original = datastore.get_connection

    @contextmanager
    def get_connection() -> Iterator[Any]:
        pool.timeout = state.wait_s()
        conn: Any = None
        try:
            with original() as conn:
                state.reached()
                yield conn
        except (OperationalError, InterfaceError, psycopg.OperationalError):
            # No connection, or one the server dropped (a shutdown terminates them).
            if (conn is None or conn.broken) and state.failed():
                pool.check()
            raise

    setattr(datastore, "get_connection", get_connection)  # noqa: B010 - on this instance only
