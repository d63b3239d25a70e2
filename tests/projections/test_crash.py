"""SIGKILL a ``ledger rebuild`` half-way, resume with ``ledger project``:
the read models equal a clean rebuild."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.rebuild import write_events
from ledger.application import Ledger
from ledger.bootstrap import Services
from ledger.projections import reconcile
from tests.projections.conftest import dump

EVENTS = 3000
TIMEOUT_S = 60


def cli(database_url: str, batch_size: int, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_SUPPORT_HOURS": "24/7",
        "LEDGER_PROJECTION_BATCH_SIZE": str(batch_size),
    }
    ledger_cli = Path(sys.executable).parent / "ledger"
    return subprocess.Popen(
        [str(ledger_cli), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_killed_rebuild_resumes_exactly_once(
    ledger: Ledger, services: Services, database_url: str
) -> None:
    write_events(ledger, EVENTS)
    newest = ledger.position()

    rebuild = cli(database_url, 5, "rebuild")
    try:
        wait_until(
            lambda: min(services.projections.positions().values()) > newest // 5,
            "the rebuild to progress",
        )
        rebuild.send_signal(signal.SIGKILL)
        rebuild.wait(TIMEOUT_S)
    finally:
        if rebuild.poll() is None:
            rebuild.kill()
    killed_at = services.projections.positions()
    assert min(killed_at.values()) < newest, f"the rebuild finished before the kill: {killed_at}"

    project = cli(database_url, 500, "project")
    try:
        wait_until(lambda: max(services.projections.lag().values()) == 0, "the worker to catch up")
        project.send_signal(signal.SIGTERM)
        assert project.wait(TIMEOUT_S) == 0, project.stderr.read() if project.stderr else ""
    finally:
        if project.poll() is None:
            project.kill()
    resumed = dump(services.projections)

    services.projections.rebuild()
    assert dump(services.projections) == resumed
    assert reconcile(ledger, services.projections) == []
