"""Fixtures for the read models: one ledger per test, on SQLite and on
PostgreSQL (a database of its own), and the helpers to compare read models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.bootstrap import Services, open_ledger, open_services
from ledger.projections import Projections
from ledger.settings import LedgerSettings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/l.db"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def settings(database_url: str) -> LedgerSettings:
    return LedgerSettings(database_url=database_url, support_hours="24/7")


@pytest.fixture
def ledger(settings: LedgerSettings) -> Iterator[Ledger]:
    ledger = open_ledger(settings)
    yield ledger
    ledger.close()


@pytest.fixture
def services(settings: LedgerSettings, ledger: Ledger) -> Iterator[Services]:
    """The store, audit and read models over ``ledger``, from ``ledger.bootstrap``."""
    services = open_services(settings, ledger=ledger)
    yield services
    services.close()


def dump(projections: Projections) -> dict[str, Any]:
    """Every row of every read-model table, as comparable text."""
    tables: dict[str, Any] = {}
    with projections.store.reading() as cur:
        for model in projections.models:
            for table in model.tables:
                rows = cur.run(f"SELECT * FROM {table}").all()
                tables[table] = sorted(tuple(str(v) for v in row) for row in rows)
        tables["tracking"] = sorted(cur.run("SELECT * FROM rm_tracking").all())
    return tables
