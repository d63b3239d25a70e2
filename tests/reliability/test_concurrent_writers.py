"""Two API processes and one read-model worker on PostgreSQL, under
concurrent charges, purchases and refunds on shared accounts for a bounded
time: no overspend, no lost or duplicated movement, every acknowledged
command present, audit sum == balance == the aggregate, reconcile exits 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from tests.reliability.harness import (
    Load,
    assert_no_token,
    cluster,
    open_accounts,
    reconcile,
    verify,
    wait_caught_up,
)

DURATION_S = 20.0
THREADS = 8
ACCOUNTS = 4
START_CREDITS = 160

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_concurrent_writers_on_shared_accounts_lose_and_duplicate_nothing(
    database_url: str, ledger: Ledger, tmp_path: Path, figures: Callable[[dict[str, Any]], None]
) -> None:
    with cluster(database_url, tmp_path) as running:
        urls = [api.base_url for api in running.apis]
        accounts = open_accounts(urls[0], ACCOUNTS, START_CREDITS)
        load = Load(urls, accounts)
        load.start(THREADS, DURATION_S)
        load.join(DURATION_S + 60)
        assert not load.errors, load.errors[:5]
        assert not load.record.retries_differ, load.record.retries_differ[:3]
        lag_s = wait_caught_up(urls[1])
        found = verify(urls[1], ledger, accounts, load.record)
        checked = reconcile(database_url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        logs = running.logs()
    record = load.record
    assert record.outcomes.get("charge:refused-402", 0) > 0, "the load never hit the balance"
    assert not [k for k in record.outcomes if "unanswered" in k or "error" in k], record.outcomes
    assert_no_token(logs, "the processes' logs")
    figures(
        {
            "processes": "2 x ledger serve + 1 x ledger project, PostgreSQL 16 (own cluster)",
            "threads": THREADS,
            "duration_s": DURATION_S,
            "accounts": ACCOUNTS,
            **record.figures(),
            "found": found,
            "worker_caught_up_in_s": round(lag_s, 2),
            "reconcile": checked.stdout.strip().splitlines()[-1],
        }
    )
