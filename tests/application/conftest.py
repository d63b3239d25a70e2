"""The same application tests on both stores: SQLite (a temporary file) and
PostgreSQL (the session's database; tests keep apart through random ids)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.settings import LedgerSettings
from tests.support.ledger import Clock

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

LedgerFactory = Callable[..., Ledger]


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the store under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def batch_commands() -> bool:
    """Whether the ledgers group-commit (``LEDGER_BATCH_COMMANDS``, on by
    default); a module parametrises it to run its tests both ways
    (``BOTH_WAYS``)."""
    return True


#: ``pytestmark`` of a module whose tests run with the batcher and without.
BOTH_WAYS = pytest.mark.parametrize("batch_commands", [True, False], ids=["batched", "alone"])


@pytest.fixture
def make_ledger(database_url: str, clock: Clock, batch_commands: bool) -> Iterator[LedgerFactory]:
    """Open ledgers on the store under test (24/7 unless told); close them after."""
    opened: list[Ledger] = []

    def make(
        support_hours: str = "24/7",
        holidays: str = "",
        snapshot_interval: int = 50,
        clock: Clock = clock,
    ) -> Ledger:
        settings = LedgerSettings(
            database_url=database_url,
            support_hours=support_hours,
            holidays=holidays,
            snapshot_interval=snapshot_interval,
            batch_commands=batch_commands,
        )
        ledger = open_ledger(settings, clock=clock)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> Ledger:
    """A ledger open around the clock, on each store in turn."""
    return make_ledger()
