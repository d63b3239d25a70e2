"""Stopping anywhere and starting again gives the rows of a clean rebuild:
a batch that fails half-way leaves nothing behind, and the next worker
(another batch size, another process) resumes from the tracking position."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.bootstrap import open_ledger, open_services
from ledger.errors import ProjectionFailedError
from ledger.projections import Projections
from ledger.projections.base import reset_tracking
from ledger.settings import LedgerSettings
from tests.projections.conftest import dump
from tests.projections.story import tell


class Crash(RuntimeError):
    pass


def empty(read_models: Projections) -> None:
    writer = read_models.store.writer()
    try:
        with writer.transaction() as cur:
            for model in read_models.models:
                reset_tracking(cur, model.name)
                for table in model.tables:
                    cur.run(read_models.store.truncate(table))
    finally:
        writer.close()


def crash_on(read_models: Projections, name: str, call: int) -> None:
    """Make ``name`` fail on its ``call``-th batch, after writing its rows."""
    model = next(m for m in read_models.models if m.name == name)
    original = model.apply
    calls = {"n": 0}

    def apply(cur: Any, events: Any) -> None:
        calls["n"] += 1
        original(cur, events)
        if calls["n"] == call:
            raise Crash(f"{name} batch {call}")

    model.apply = apply  # type: ignore[method-assign]


Told = tuple[LedgerSettings, Ledger, dict[str, Any]]


@contextmanager
def read_models(
    settings: LedgerSettings, ledger: Ledger, batch_size: int | None = None
) -> Iterator[Projections]:
    """Another set of read models (its own store and worker) over ``ledger``."""
    services = open_services(settings, ledger=ledger, batch_size=batch_size)
    try:
        yield services.projections
    finally:
        services.close()


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Told]:
    path: Path = tmp_path_factory.mktemp("restart") / "l.db"
    settings = LedgerSettings(database_url=f"sqlite:///{path}", support_hours="24/7")
    ledger = open_ledger(settings)
    for prefix in ("x-", "y-", "z-"):
        tell(ledger, prefix)
    with read_models(settings, ledger) as clean:
        clean.rebuild()
        expected = dump(clean)
    yield settings, ledger, expected
    ledger.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    runs=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=40),  # batch size of this worker
            st.sampled_from(["balances", "movements", "requests", "summary"]),
            st.integers(min_value=1, max_value=12),  # the batch that crashes
        ),
        min_size=1,
        max_size=4,
    )
)
def test_restart_at_random_points_equals_a_clean_rebuild(
    told: Told, runs: list[tuple[int, str, int]]
) -> None:
    settings, ledger, expected = told
    with read_models(settings, ledger) as first:
        empty(first)
    for batch_size, name, call in runs:
        with read_models(settings, ledger, batch_size) as worker:
            crash_on(worker, name, call)
            with suppress(ProjectionFailedError):  # names the read model that crashed
                worker.catch_up()
    with read_models(settings, ledger, 7) as last:
        last.catch_up()
        assert dump(last) == expected
