"""SIGKILL of an API process mid-load: no partial command. A charge is the
request's AnswerCharged and the account's CreditsCharged, or neither; every
acknowledged command is present; the balances reconcile. The killed process
is started again on its port and serves the same store."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from ledger.application import Ledger
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

THREADS = 8
BEFORE_S = 5.0
DOWN_S = 3.0
AFTER_S = 5.0

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _history_agrees(base_url: str, request_ids: list[UUID], ledger: Ledger) -> int:
    """The HTTP history of each request has AnswerCharged exactly when the
    account has a charge for it; returns how many were checked."""
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for request_id in request_ids:
            answer = client.get(f"/v1/requests/{request_id}/history", headers=auth("finance"))
            assert answer.status_code == 200, answer.text
            types = [e["type"] for e in answer.json()["events"]]
            charged = ledger.get_request(request_id).charged is not None
            assert types.count("AnswerCharged") == (1 if charged else 0), (request_id, types)
    return len(request_ids)


def test_an_api_process_killed_mid_load_leaves_no_partial_command(
    database_url: str, ledger: Ledger, tmp_path: Path, figures: Callable[[dict[str, Any]], None]
) -> None:
    with cluster(database_url, tmp_path) as running:
        urls = [api.base_url for api in running.apis]
        accounts = open_accounts(urls[0], 4, 160)
        load = Load(urls, accounts, seed=23)
        load.start(THREADS, BEFORE_S + DOWN_S + AFTER_S)
        time.sleep(BEFORE_S)
        victim = running.apis[0]
        with load.record.lock:
            in_flight_before = sum(load.record.sent.values())
        victim.kill()
        killed_at = time.monotonic() - load.started
        time.sleep(DOWN_S)
        victim.start()  # same port, same store
        load.join(AFTER_S + 60)
        assert not load.errors, load.errors[:5]
        wait_caught_up(urls[1])
        found = verify(urls[1], ledger, accounts, load.record)
        unanswered = sorted(load.record.unknown, key=str)
        histories = _history_agrees(urls[1], unanswered, ledger)
        checked = reconcile(database_url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        logs = running.logs()
    record = load.record
    unanswered_count = sum(n for k, n in record.outcomes.items() if "unanswered" in k)
    assert unanswered_count > 0, "the kill cut no request: nothing was tested"
    assert_no_token(logs, "the processes' logs")
    figures(
        {
            "threads": THREADS,
            "killed_at_s": round(killed_at, 2),
            "commands_sent_before_kill": in_flight_before,
            **record.figures(),
            "unanswered_by_kill": unanswered_count,
            "histories_checked_of_unanswered": histories,
            "found": found,
            "reconcile_exit": checked.returncode,
        }
    )
