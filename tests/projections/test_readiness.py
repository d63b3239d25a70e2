"""Honest readiness and workers that say what they do: a read model late for
longer than the grace period, or no worker holding the read models' locks,
is not ready; a second worker says it is on standby and for which locks; a
rebuild refuses to race a running worker."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.application import Ledger
from ledger.bootstrap import Services, open_services
from ledger.cli import app
from ledger.cli import projections as cli_projections
from ledger.errors import ReadModelBusyError
from ledger.projections import control
from ledger.projections.readiness import LAGGING, NO_WORKER, Readiness
from ledger.settings import LedgerSettings
from tests.projections.story import tell

runner = CliRunner()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_read_model_late_beyond_the_grace_period_is_not_ready(
    ledger: Ledger, services: Services
) -> None:
    tell(ledger)
    clock = Clock()
    readiness = Readiness(
        services.projections, max_lag=2, grace_s=30, expect_worker=False, clock=clock
    )

    assert readiness.check().ready  # late, but not for long yet
    clock.now = 29
    assert readiness.check().ready
    clock.now = 31
    verdict = readiness.check()

    assert not verdict.ready and verdict.code == LAGGING
    assert "lags by" in str(verdict.reason) and "more than 2 for 31 s" in str(verdict.reason)
    services.projections.catch_up()
    services.audit.catch_up()
    assert readiness.check().ready
    assert readiness.check().lag["balances"] == 0


def test_without_a_worker_holding_the_locks_it_is_not_ready(
    settings: LedgerSettings, services: Services
) -> None:
    clock = Clock()
    readiness = Readiness(
        services.projections, max_lag=1000, grace_s=5, expect_worker=True, clock=clock
    )

    verdict = readiness.check()
    assert verdict.code == NO_WORKER and "balances" in verdict.idle_locks
    assert "ledger project" in str(verdict.reason)

    worker = open_services(settings)
    worker.projections.start()
    try:
        assert _eventually(lambda: readiness.check().ready)
        assert services.projections.unheld_locks() == []
    finally:
        worker.close()
    clock.now = 4  # a worker restarting within the grace period is no outage
    assert readiness.check().ready
    clock.now = 6
    assert readiness.check().code == NO_WORKER


def test_a_second_worker_says_it_is_on_standby_and_for_which_locks(
    settings: LedgerSettings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.projections.start()
    assert _eventually(lambda: not services.projections.unheld_locks())
    second = open_services(settings)
    stop = threading.Event()
    thread = threading.Thread(target=second.projections.run_forever, args=(stop,))
    with caplog.at_level(logging.INFO, logger="ledger.projections"):
        thread.start()
        try:
            assert _eventually(lambda: "on standby for" in caplog.text)
        finally:
            stop.set()
            thread.join(10)
            second.close()
    line = next(r.getMessage() for r in caplog.records if "on standby" in r.getMessage())
    assert ", ".join([*services.projections.names, "audit_chain"]) in line


def test_a_rebuild_refuses_while_another_worker_holds_the_locks(
    settings: LedgerSettings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "LOCK_WAIT_S", 0.3)
    services.projections.start()
    assert _eventually(lambda: not services.projections.unheld_locks())
    other = open_services(settings)
    try:
        with pytest.raises(ReadModelBusyError, match="run by another worker"):
            other.projections.rebuild(["balances"])
    finally:
        other.close()


def test_rebuild_prints_the_count_its_progress_bar_showed(
    ledger: Ledger, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    tell(ledger)
    monkeypatch.setenv("LEDGER_DATABASE_URL", services.settings.database_url)

    result = runner.invoke(app, ["rebuild"])

    assert result.exit_code == 0, result.output
    position = ledger.position()
    assert f"rebuilt all read models: {position}/{position} positions" in result.output


def test_cli_rebuild_refuses_in_one_line_while_a_worker_runs(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "LOCK_WAIT_S", 0.3)
    monkeypatch.setenv("LEDGER_DATABASE_URL", services.settings.database_url)
    services.projections.start()
    assert _eventually(lambda: not services.projections.unheld_locks())

    result = runner.invoke(app, ["rebuild", "summary"])

    assert result.exit_code == 1
    assert "rebuild refused: read model(s) summary are run by another worker" in result.output


def test_project_retries_an_unreachable_server_then_gives_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"postgresql://u:pw@127.0.0.1:{port}/x")
    monkeypatch.setattr(cli_projections, "OPEN_RETRY_TOTAL_S", 1.0)
    monkeypatch.setattr(cli_projections, "OPEN_RETRY_FIRST_S", 0.2)

    with caplog.at_level(logging.WARNING, logger="ledger.project"):
        result = runner.invoke(app, ["project"])

    assert result.exit_code == 2
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 2
    assert all("\n" not in r and "Connection refused" in r for r in retries)


def _eventually(condition: object, timeout_s: float = 15.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_serve_warns_at_start_up_when_no_worker_runs_the_read_models(
    settings: LedgerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    from ledger.cli.serve import _check_database

    alone = settings.model_copy(update={"in_process_projections": False})
    with caplog.at_level(logging.WARNING, logger="ledger.serve"):
        _check_database(alone)

    assert "no worker holds the locks of balances" in caplog.text
    assert "start `ledger project`" in caplog.text
