"""One active worker per read model on PostgreSQL: a second one waits and
takes over when the first goes away."""

from __future__ import annotations

import time

import pytest

from ledger.bootstrap import open_ledger, open_services
from ledger.settings import LedgerSettings
from tests.projections.story import HELPDESK


def wait_until(condition: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.postgres
def test_only_one_of_two_workers_holds_each_read_model(fresh_postgres_url: str) -> None:
    settings = LedgerSettings(database_url=fresh_postgres_url, support_hours="24/7")
    ledger = open_ledger(settings)
    one, two = open_services(settings, ledger=ledger), open_services(settings, ledger=ledger)
    first, second = one.projections, two.projections
    try:
        first.start()
        wait_until(lambda: first.active() == set(first.names))
        second.start()
        opened = ledger.open_account("c1", "One", actor=HELPDESK)
        second.wait_for(opened.position, timeout_s=10)  # served by the first worker
        time.sleep(1.5)  # the second retries its locks every second
        assert second.active() == frozenset()
        with second.store.reading() as cur:
            row = cur.run(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).one()
        assert row is not None and row[0] == len(first.names) + 1  # and the audit chain's
        with second.store.reading() as cur:
            listening = cur.run(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
            ).one()
        assert listening is not None and listening[0] == 1  # the second does not listen

        first.stop()  # its session ends: PostgreSQL releases its locks
        wait_until(lambda: second.active() == set(second.names))
        again = ledger.open_account("c2", "Two", actor=HELPDESK)
        second.wait_for(again.position, timeout_s=10)
        assert two.queries.balance("c2") is not None
        wait_until(lambda: second.audit.lag() == 0)  # it took over the audit chain too
    finally:
        one.close()
        two.close()
        ledger.close()
