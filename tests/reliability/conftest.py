"""Fixtures of the reliability suite (``make reliability``; not part of
``make test``: ``pyproject.toml`` ignores this folder unless it is named).

- ``controlled_pg``: a PostgreSQL cluster of the suite's own, which a test
  may stop and start (never ``LEDGER_TEST_DATABASE_URL``'s server);
- ``database_url``: a fresh database on it per test;
- ``figures``: what a test did, in numbers, printed in the terminal summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.settings import LedgerSettings
from tests.pg import ControlledPostgres, controlled_postgres, fresh_database
from tests.reliability.harness import API_KEYS

_FIGURES: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture(scope="session")
def controlled_pg() -> Iterator[ControlledPostgres]:
    with controlled_postgres() as server:
        yield server


@pytest.fixture
def database_url(controlled_pg: ControlledPostgres) -> Iterator[str]:
    with fresh_database(controlled_pg.url) as url:
        yield url


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """The application itself on the test's database (for get_account, get_request)."""
    settings = LedgerSettings(
        database_url=database_url, api_keys=API_KEYS, support_hours="24/7", holidays=""
    )
    app = open_ledger(settings)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], None]:
    """Record (and print) what the test did, in figures."""

    def report(values: dict[str, Any]) -> None:
        _FIGURES.append((request.node.name, values))
        print(f"\n{request.node.name}: {json.dumps(values, default=str)}")

    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, values in _FIGURES:
        terminalreporter.write_line(f"{name}:")
        for key, value in values.items():
            terminalreporter.write_line(f"  {key}: {json.dumps(value, default=str)}")
