"""The eventsourcing library's own recorder contract (the generic test cases
its wheel ships in ``eventsourcing.tests.persistence``), run against
``LedgerPostgresRecorder`` and ``LedgerSQLiteRecorder`` as the production
factory builds them: the environment of ``ledger_env``, the library's
``InfrastructureFactory.construct``, then ``factory.application_recorder()``.

On PostgreSQL the tables are named as in the library's own suite: the
longest identifier PostgreSQL keeps (63 characters), which once made two of
our trigger names one (see ``test_append_only_names_never_collide``).

Left out, on purpose: ``AggregateRecorderTestCase`` (its two tests per store)
checks a recorder of aggregate events, without notifications, which these
application recorders are not meant to be used as; the library runs it
against its aggregate recorders only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment

from ledger.bootstrap import ledger_env
from ledger.persistence.recorders import (
    LedgerPostgresRecorder,
    LedgerSQLiteRecorder,
    append_only_names,
)
from ledger.settings import LedgerSettings
from tests.pg import fresh_database

# The library's own test table name: "s" * 50 + "stored_events", 63 characters.
NAME = "s" * 50 + "stored"
EVENTS_TABLE = NAME + "_events"
assert len(EVENTS_TABLE) == 63


@pytest.fixture(scope="module")
def contract_database(postgres_url: str) -> Iterator[str]:
    """A database of its own: the library's cases create and drop tables."""
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def _postgres(request: pytest.FixtureRequest, contract_database: str) -> None:
    request.cls.url = contract_database
    with psycopg.connect(contract_database, autocommit=True) as conn:
        # Every case starts from an empty database, as in the library's suite.
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    request.cls.url = f"sqlite:///{tmp_path / f'{uuid4().hex}.db'}"


def production_env(url: str, name: str = NAME) -> Environment:
    return Environment(name, ledger_env(LedgerSettings(database_url=url)))


THREAD_JOIN_TIMEOUT_S = 10.0


class _FromProductionFactory:
    url: ClassVar[str]
    factories: list[InfrastructureFactory[Any]]
    threads_before: set[threading.Thread]

    def create_recorder(self) -> Any:
        factory = InfrastructureFactory.construct(production_env(self.url))
        self.factories.append(factory)
        return factory.application_recorder()

    def setUp(self) -> None:
        self.factories = []
        self.threads_before = set(threading.enumerate())
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        # The library's concurrency cases stop their reader threads without
        # joining them: closing a SQLite connection a thread still reads
        # through crashes the interpreter. Wait (bounded) for them first.
        deadline = time.monotonic() + THREAD_JOIN_TIMEOUT_S
        for thread in set(threading.enumerate()) - self.threads_before:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for factory in self.factories:
            factory.close()
        super().tearDown()  # type: ignore[misc]


# --- PostgreSQL ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
class TestPostgresApplicationRecorderContract(
    _FromProductionFactory, ApplicationRecorderTestCase[LedgerPostgresRecorder]
):
    def test_the_recorder_is_ours(self) -> None:
        recorder = self.create_recorder()
        assert type(recorder) is LedgerPostgresRecorder
        assert recorder.events_table_name == EVENTS_TABLE


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
class TestPostgresNonInterleavingNotificationIDs(
    _FromProductionFactory, NonInterleavingNotificationIDsBaseCase
):
    pass


class _PostgresTrackingSubclass(PostgresTrackingRecorder):
    pass


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
class TestPostgresInfrastructureFactoryContract(InfrastructureFactoryTestCase[PostgresFactory]):
    url: ClassVar[str]

    def setUp(self) -> None:
        # Named as the ledger is: the 63-character name leaves no room for
        # the tracking table's longer suffix.
        self.env = production_env(self.url, "Ledger")
        super().setUp()

    def expected_factory_class(self) -> type[PostgresFactory]:
        return PostgresFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return LedgerPostgresRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _PostgresTrackingSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return PostgresProcessRecorder


# --- SQLite ----------------------------------------------------------------------------


@pytest.mark.usefixtures("_sqlite")
class TestSQLiteApplicationRecorderContract(
    _FromProductionFactory, ApplicationRecorderTestCase[LedgerSQLiteRecorder]
):
    def test_the_recorder_is_ours(self) -> None:
        assert type(self.create_recorder()) is LedgerSQLiteRecorder


@pytest.mark.usefixtures("_sqlite")
class TestSQLiteNonInterleavingNotificationIDs(
    _FromProductionFactory, NonInterleavingNotificationIDsBaseCase
):
    pass


class _SQLiteTrackingSubclass(SQLiteTrackingRecorder):
    pass


@pytest.mark.usefixtures("_sqlite")
class TestSQLiteInfrastructureFactoryContract(InfrastructureFactoryTestCase[SQLiteFactory]):
    url: ClassVar[str]

    def setUp(self) -> None:
        self.env = production_env(self.url)
        super().setUp()

    def expected_factory_class(self) -> type[SQLiteFactory]:
        return SQLiteFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return LedgerSQLiteRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _SQLiteTrackingSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return SQLiteProcessRecorder


# --- the trigger names, at the longest table name ----------------------------------------


def test_append_only_names_never_collide() -> None:
    # The old names, cut where PostgreSQL cuts them, were one name.
    assert len({f"{EVENTS_TABLE}_append_only"[:63], f"{EVENTS_TABLE}_no_truncate"[:63]}) == 1
    names = append_only_names(EVENTS_TABLE)
    assert len(set(names.values())) == len(names)
    assert all(len(name) <= 35 for name in names.values())
    assert append_only_names(EVENTS_TABLE) != append_only_names("ledger_events")


@pytest.mark.postgres
def test_a_63_character_events_table_refuses_update_delete_and_truncate(
    fresh_postgres_url: str,
) -> None:
    factory = InfrastructureFactory.construct(production_env(fresh_postgres_url))
    try:
        recorder = factory.application_recorder()
        assert recorder.events_table_name == EVENTS_TABLE
        recorder.insert_events([StoredEvent(uuid4(), 1, "topic", b"{}")])
    finally:
        factory.close()
    table = f'"{EVENTS_TABLE}"'
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            (table,),
        ).fetchall()
        assert len(triggers) == 2, triggers
        for operation, statement in {
            "UPDATE": f"UPDATE {table} SET topic = 'tampered'",
            "DELETE": f"DELETE FROM {table}",
            "TRUNCATE": f"TRUNCATE {table}",
        }.items():
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement)
            assert "append-only" in str(refused.value)
            assert operation in str(refused.value)
        row = conn.execute(f"SELECT count(*), min(topic) FROM {table}").fetchone()
    assert row == (1, "topic")
