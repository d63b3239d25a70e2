"""A ledger and its integrations per test, on SQLite and on PostgreSQL, with
short webhook delays so that retries happen within a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.bootstrap import open_integrations, open_ledger
from ledger.integrations.service import Integrations
from ledger.settings import LedgerSettings

FAST = {
    "webhook_timeout_s": 0.5,
    "webhook_retry_first_s": 0.05,
    "webhook_retry_max_s": 0.2,
    "webhook_poll_s": 0.05,
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/l.db"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = open_ledger(LedgerSettings(database_url=database_url, support_hours="24/7"))
    yield ledger
    ledger.close()


@pytest.fixture
def integrations_for(ledger: Ledger, database_url: str) -> Iterator[Callable[..., Integrations]]:
    """Build (and later close) integrations with ``FAST`` settings plus overrides."""
    opened: list[Integrations] = []

    def make(**overrides: Any) -> Integrations:
        settings = LedgerSettings(
            database_url=database_url, support_hours="24/7", **{**FAST, **overrides}
        )
        integrations = open_integrations(settings, ledger)
        opened.append(integrations)
        return integrations

    yield make
    for integrations in opened:
        integrations.close()
