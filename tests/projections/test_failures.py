"""A worker that cannot apply an event stops, loudly, after a few attempts
(it used to retry forever); one that meets a store error keeps retrying."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.application import Ledger
from ledger.bootstrap import Services
from ledger.errors import ProjectionFailedError
from ledger.projections import Projections
from ledger.projections.balances import Balances
from ledger.projections.movements import Movements
from ledger.projections.runner import MAX_ATTEMPTS
from tests.projections.story import FINANCE, HELPDESK
from tests.support.ledger import forge_uncovered_charge

TIMEOUT_S = 30


def run_until_stopped(read_models: Projections) -> ProjectionFailedError | None:
    """Run a worker in a thread until it stops by itself (or ``TIMEOUT_S``)."""
    worker = read_models.worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    thread.join(TIMEOUT_S)
    stopped_by_itself = not thread.is_alive()
    stop.set()
    thread.join(TIMEOUT_S)
    assert stopped_by_itself, "the worker kept retrying"
    return worker.failure


def test_an_event_the_fifo_cannot_apply_stops_the_worker_naming_model_position_and_error(
    ledger: Ledger, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.open_account("acme", "Acme", actor=HELPDESK)
    before = ledger.adjust_balance("acme", 5, "goodwill", actor=FINANCE).position
    forged = forge_uncovered_charge(ledger, "acme", 50)

    with caplog.at_level(logging.ERROR, logger="ledger.projections"):
        failure = run_until_stopped(services.projections)

    assert failure is not None
    assert (failure.read_model, failure.position) == ("summary", forged)
    assert "LotsExhaustedError" in failure.error and "found no lot" in failure.error
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "summary read model" in line and f"position {forged}" in line
    assert "LotsExhaustedError" in line and f"after {MAX_ATTEMPTS} attempts" in line
    # Everything before the event was processed, one event at a time; nothing after it.
    assert set(services.projections.positions().values()) == {before}
    balance = services.queries.balance("acme")
    assert balance is not None and balance.balance == 5


def test_a_programming_error_in_a_read_model_stops_the_worker(
    ledger: Ledger, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = ledger.open_account("acme", "Acme", actor=HELPDESK)

    def bug(self: Balances, cur: Any, events: Sequence[Any]) -> None:
        raise ValueError("a bug in the balances projection")

    monkeypatch.setattr(Balances, "apply", bug)
    failure = run_until_stopped(services.projections)

    assert failure is not None
    assert (failure.read_model, failure.position) == ("balances", opened.position)
    assert failure.error == "ValueError: a bug in the balances projection"


@pytest.mark.parametrize(
    "outage",
    [
        sqlite3.OperationalError("database is locked"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
    ],
)
def test_a_store_error_is_retried_beyond_the_bound_and_the_worker_catches_up(
    ledger: Ledger,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    outage: Exception,
) -> None:
    opened = ledger.open_account("acme", "Acme", actor=HELPDESK)
    failures = MAX_ATTEMPTS + 1
    real_apply = Movements.apply

    def flaky(self: Movements, cur: Any, events: Sequence[Any]) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise outage
        real_apply(self, cur, events)

    monkeypatch.setattr(Movements, "apply", flaky)
    projections = services.projections
    projections.start()
    try:
        projections.wait_for(opened.position, timeout_s=TIMEOUT_S)
        assert projections.failure() is None
    finally:
        projections.stop()
    assert failures == 0


def test_ledger_project_exits_non_zero_naming_the_read_model_that_cannot_apply_an_event(
    ledger: Ledger, services: Services, database_url: str
) -> None:
    ledger.open_account("acme", "Acme", actor=HELPDESK)
    forged = forge_uncovered_charge(ledger, "acme", 50)
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_SUPPORT_HOURS": "24/7"}
    ledger_cli = Path(sys.executable).parent / "ledger"

    done = subprocess.run(
        [str(ledger_cli), "project"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("read model worker stopped: the summary read model")
    assert f"position {forged}" in last and "LotsExhaustedError" in last
