"""Bounded waits while PostgreSQL is unreachable.

The library retries every recorder call up to 10 times, and each attempt
waits for a pooled connection up to the pool's timeout (5 s here): while the
database is down, one command then took about 50 s before it could answer
"unavailable" (measured by tests/reliability/test_database_restart.py).

``OutageState`` keeps the full wait in normal operation, and, once
an attempt has failed to reach the database (no connection, or one the
server dropped), waits only ``DOWN_WAIT_S`` for a connection until one is
obtained again: a command on a database that is
down fails within a few seconds (``StoreUnavailableError``, HTTP 503), and
the first connection the pool makes after the restart ends it. Nothing about
what is written changes: only how long a caller waits for a connection.

Connections are not pinged when taken from the pool (a round trip more per
statement; commit d4c68e2 measured what it cost). Instead,
the first connection found dead sends the whole pool through ``check()``,
which replaces every dead idle connection at once: the library's retry of
the failed call then gets a live one, and no command fails on a connection
of a server that was restarted.

The datastore that applies this state to every connection it hands out is
``ledger.persistence.library.OutageBoundedDatastore`` (it hooks the library's
``get_connection``).
"""

from __future__ import annotations

import threading
import time

#: How long a caller waits for a pooled connection while the database is known down.
DOWN_WAIT_S = 0.2


class OutageState:
    """Whether the database is known to be down, and so how long to wait for a connection."""

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
