"""What the API answers when the stored history cannot be trusted: a read
model stopped on an event it cannot apply makes ``/readyz`` fail with the
reason; an account whose snapshot was forged answers 503 naming it. Never a
500, and the rest of the ledger keeps answering."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.aggregates import CustomerAccount, account_id_for
from ledger.bootstrap import open_ledger
from ledger.settings import LedgerSettings
from tests.api.conftest import Api, _check, make_settings
from tests.pg import fresh_database
from tests.support.domain import FINANCE
from tests.support.ledger import forge_uncovered_charge, funded_customer

TIMEOUT_S = 30


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Settings for a database of the test's own."""
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / 'own.db'}"
        else:
            url = stack.enter_context(fresh_database(request.getfixturevalue("postgres_url")))
        yield make_settings(url)


def serve(settings: LedgerSettings) -> TestClient:
    client = TestClient(create_app(settings))
    client.event_hooks["response"].append(_check)
    return client


def test_readiness_fails_with_the_reason_once_a_read_model_cannot_apply_an_event(
    settings: LedgerSettings,
) -> None:
    with serve(settings) as client:
        api = Api(client)
        customer_id = api.open_account()
        assert api.get(None, "/readyz").status_code == 200
        ledger = open_ledger(settings)
        try:
            forged = forge_uncovered_charge(ledger, customer_id, 50)
        finally:
            ledger.close()

        deadline = time.monotonic() + TIMEOUT_S
        while (ready := api.get("admin", "/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "readiness never failed"
            time.sleep(0.1)

        # Without the admin role: not ready, and nothing of the cause.
        anonymous = api.get(None, "/readyz")
        assert anonymous.status_code == 503
        assert anonymous.json()["type"].endswith("/projection-failed")
        assert "LotsExhaustedError" not in anonymous.text and "read_model" not in anonymous.json()

        assert ready.status_code == 503
        assert "retry-after" not in ready.headers  # retrying cannot help
        body = ready.json()
        assert body["type"].endswith("/projection-failed")
        assert (body["read_model"], body["position"]) == ("summary", forged)
        assert "LotsExhaustedError" in body["error"] and "found no lot" in body["error"]
        assert f"position {forged}" in body["detail"]
        # The write side does not depend on the read models: it keeps answering.
        assert api.get(None, "/healthz").status_code == 200
        api.open_account()


def test_an_account_whose_snapshot_was_forged_answers_503_naming_it(
    settings: LedgerSettings,
) -> None:
    ledger = open_ledger(settings)
    try:
        customer_id = funded_customer(ledger, 80)  # events 1 and 2
        ledger.adjust_balance(customer_id, 5, "goodwill", actor=FINANCE)  # event 3: 85
        account = ledger.repository.get(account_id_for(customer_id), version=2)
        account.balance = 100_000
        assert ledger.snapshots is not None
        ledger.snapshots.put([CustomerAccount.Snapshot.take(account)])
    finally:
        ledger.close()

    with serve(settings) as client:
        api = Api(client)
        response = api.post(
            "helpdesk",
            "/v1/requests",
            {
                "customer_id": customer_id,
                "category": "installation",
                "channel": "helpdesk",
                "subject": "please help",
            },
        )

        assert response.status_code == 503, response.text
        assert "retry-after" not in response.headers
        body = response.json()
        assert body["type"].endswith("/ledger-corruption")
        assert body["title"] == "Ledger corrupted"
        assert (body["customer_id"], body["version"], body["what"]) == (customer_id, 3, "balance")
        assert (body["expected"], body["found"]) == (100_005, 85)
        assert customer_id in body["detail"] and "version 3" in body["detail"]
        # Other accounts are served as before.
        other = api.open_account()
        api.buy(other)
