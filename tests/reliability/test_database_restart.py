"""PostgreSQL (the suite's own cluster) stopped and started during load: the
API answers 503 problem+json while it is down (never 500, never a hang),
recovers without a restart, keeps every acknowledged write, and the
read-model worker resumes where it stopped."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.application import Ledger
from tests.pg import ControlledPostgres
from tests.reliability.harness import (
    CLIENT_TIMEOUT_S,
    Load,
    assert_no_token,
    auth,
    cluster,
    open_accounts,
    reconcile,
    verify,
    wait_caught_up,
)

THREADS = 6
BEFORE_S = 4.0
DOWN_S = 12.0
AFTER_S = 8.0
RECOVERY_BOUND_S = 15.0
ANSWER_BOUND_S = 12.0  # no answer may take longer, even while the database is down

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _recovered_in(base_url: str) -> float:
    """Seconds until this API process acknowledges a write again."""
    began = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for _ in range(int(RECOVERY_BOUND_S / 0.1) + 1):
            body = {"customer_id": f"P-{uuid.uuid4().hex[:10]}", "name": "probe"}
            answer = client.post("/v1/accounts", json=body, headers=auth("helpdesk"))
            if answer.status_code == 201:
                return time.monotonic() - began
            assert answer.status_code == 503, answer.text
            if time.monotonic() - began > RECOVERY_BOUND_S:
                break
            time.sleep(0.1)
    raise AssertionError(f"{base_url} did not recover within {RECOVERY_BOUND_S} s")


def _by_phase(load: Load, stopped_at: float, started_at: float) -> dict[str, dict[int, int]]:
    """Statuses by when the answer arrived: before the stop, while down, after the start."""
    phases: dict[str, Counter[int]] = {"before": Counter(), "down": Counter(), "after": Counter()}
    for began, spent, status in load.record.latencies_s:
        answered = began + spent
        phase = "before" if answered < stopped_at else "down" if answered < started_at else "after"
        phases[phase][status] += 1
    return {name: dict(sorted(c.items())) for name, c in phases.items()}


def test_database_stopped_and_started_under_load_answers_503_then_recovers(
    controlled_pg: ControlledPostgres,
    database_url: str,
    ledger: Ledger,
    tmp_path: Path,
    figures: Callable[[dict[str, Any]], None],
) -> None:
    with cluster(database_url, tmp_path) as running:
        urls = [api.base_url for api in running.apis]
        accounts = open_accounts(urls[0], 4, 160)
        load = Load(urls, accounts, seed=11)
        load.start(THREADS, BEFORE_S + DOWN_S + AFTER_S)
        time.sleep(BEFORE_S)
        try:
            controlled_pg.stop()
            stopped_at = time.monotonic() - load.started
            time.sleep(DOWN_S)
        finally:
            controlled_pg.start()
        started_at = time.monotonic() - load.started
        recovery_s = {url: round(_recovered_in(url), 2) for url in urls}
        load.join(AFTER_S + 60)
        assert not load.errors, load.errors[:5]
        lag_s = wait_caught_up(urls[0])
        resumed_s = time.monotonic() - load.started - started_at
        found = verify(urls[0], ledger, accounts, load.record)
        checked = reconcile(database_url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert running.worker.alive(), running.worker.output()[-2000:]
        assert all(api.alive() for api in running.apis), "an API process died"
        logs = running.logs()
        worker_log = running.worker.output()
    record = load.record
    phases = _by_phase(load, stopped_at, started_at)
    assert phases["down"].get(503, 0) > 0, (phases, record.figures())
    assert not [s for phase in phases.values() for s in phase if s >= 500 and s != 503], phases
    assert not [k for k in record.outcomes if "unanswered" in k], record.outcomes
    assert record.max_latency_s < ANSWER_BOUND_S, record.max_latency_s
    assert phases["after"].get(200, 0) > 0, phases
    assert_no_token(logs, "the processes' logs")
    figures(
        {
            "threads": THREADS,
            "database_down_s": round(started_at - stopped_at, 2),
            "statuses_by_phase_answered": phases,
            "answers_503_while_down": phases["down"].get(503, 0),
            **record.figures(),
            "recovered_in_s_per_api": recovery_s,
            "found": found,
            "worker_retries_logged": worker_log.count("retrying in"),
            "worker_caught_up_in_s_after_load": round(lag_s, 2),
            "worker_caught_up_in_s_after_db_start": round(resumed_s, 2),
            "reconcile_exit": checked.returncode,
        }
    )
