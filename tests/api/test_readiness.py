"""``/readyz`` with in-process projections off: not ready (503) until a
worker holds the read models' locks, saying which to the admin role only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.bootstrap import open_services
from ledger.settings import LedgerSettings
from tests.api.conftest import Api, make_settings
from tests.pg import fresh_database


@pytest.fixture
def settings(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[LedgerSettings]:
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / 'own.db'}"
        else:
            url = stack.enter_context(fresh_database(request.getfixturevalue("postgres_url")))
        yield make_settings(url, in_process_projections=False, ready_lag_grace_s=0.5)


def test_readyz_is_503_without_a_worker_and_says_why_to_the_admin_only(
    settings: LedgerSettings,
) -> None:
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        anonymous = api.get(None, "/readyz")
        admin = api.get("admin", "/readyz")

        assert anonymous.status_code == admin.status_code == 503
        assert anonymous.json()["type"].endswith("/no-projection-worker")
        assert "ledger project" not in anonymous.text and "lag" not in anonymous.json()
        body = admin.json()
        assert body["type"].endswith("/no-projection-worker")
        assert "no worker has held the locks of balances" in body["detail"]
        assert "ledger project" in body["detail"] and "balances" in body["lag"]

        worker = open_services(settings)
        worker.projections.start()
        try:
            deadline = time.monotonic() + 15
            while api.get(None, "/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready with a worker running"
                time.sleep(0.1)
            assert api.get("admin", "/readyz").json()["status"] == "ready"
        finally:
            worker.close()
        time.sleep(0.7)  # longer than the grace period
        assert api.get(None, "/readyz").status_code == 503
