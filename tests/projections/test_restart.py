"""Stopping anywhere and starting again gives the rows of a clean rebuild:
a batch that fails half-way leaves nothing behind, and the next worker
(another batch size, another process) resumes from the tracking position."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.projections import ReadModels
from ledger.projections.base import reset_tracking
from ledger.settings import LedgerSettings
from tests.projections.conftest import dump
from tests.projections.story import tell


class Crash(RuntimeError):
    pass


def empty(read_models: ReadModels) -> None:
    writer = read_models.store.writer()
    try:
        with writer.transaction() as cur:
            for model in read_models.models:
                reset_tracking(cur, model.name)
                for table in model.tables:
                    cur.run(read_models.store.truncate(table))
    finally:
        writer.close()


def crash_on(read_models: ReadModels, name: str, call: int) -> None:
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


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, dict[str, Any]]]:
    path: Path = tmp_path_factory.mktemp("restart") / "l.db"
    ledger = open_ledger(LedgerSettings(database_url=f"sqlite:///{path}", support_hours="24/7"))
    for prefix in ("x-", "y-", "z-"):
        tell(ledger, prefix)
    clean = ReadModels(ledger)
    clean.rebuild()
    expected = dump(clean)
    clean.close()
    yield ledger, expected
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
    told: tuple[Ledger, dict[str, Any]], runs: list[tuple[int, str, int]]
) -> None:
    ledger, expected = told
    first = ReadModels(ledger)
    empty(first)
    first.close()
    for batch_size, name, call in runs:
        worker = ReadModels(ledger, batch_size=batch_size)
        crash_on(worker, name, call)
        try:
            worker.catch_up()
        except Crash:
            pass
        finally:
            worker.close()
    last = ReadModels(ledger, batch_size=7)
    try:
        last.catch_up()
        assert dump(last) == expected
    finally:
        last.close()
