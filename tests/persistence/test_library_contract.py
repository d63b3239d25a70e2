"""What ``ledger/persistence/library.py`` relies on in ``eventsourcing``, pinned.

Each use of a library internal there has a test here that fails when the
library's behaviour it relies on changes: the private names still exist with
the signatures called or overridden, and each replacement still does what the
library's own path does (same recordings, same snapshots, same aggregates, same
stored rows and positions, the same refusal of a clash), on each store where it
applies.
"""

from __future__ import annotations

import copy
import inspect
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg_pool
import pytest
from eventsourcing.application import (
    Application,
    ProcessingEvent,
    Repository,
    project_aggregate,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    BasePostgresFactory,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from psycopg.sql import SQL, Identifier

from ledger.aggregates import CustomerAccount, Invoice
from ledger.application import Ledger
from ledger.bootstrap import ledger_env, open_ledger
from ledger.persistence.library import (
    CollectingEvent,
    LedgerPostgresFactory,
    OneStatementAppend,
    OutageBoundedDatastore,
    WritePathApplication,
    project,
    select_events_after,
    select_last_snapshots,
)
from ledger.persistence.outage import DOWN_WAIT_S
from ledger.policy import custom_package
from ledger.settings import LedgerSettings
from tests.pg import fresh_database, split_url
from tests.support.domain import FINANCE, HELPDESK

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
INTERVAL = 3
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def parameters(function: Any) -> list[tuple[str, Any]]:
    """A function's parameter names and kinds (annotations aside)."""
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


# --- the private names called or overridden ----------------------------------------


def test_the_private_steps_of_the_librarys_save_exist_with_the_signatures_called() -> None:
    assert parameters(Application._record) == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("processing_event", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    assert parameters(Application._notify) == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("recordings", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    assert parameters(WritePathApplication._take_snapshots) == parameters(
        Application._take_snapshots
    )
    assert parameters(WritePathApplication.save) == parameters(Application.save)


def test_the_librarys_save_does_nothing_but_the_steps_ours_repeats() -> None:
    # Ours is collect, _record, _take_snapshots, _notify; the library's adds only
    # the deprecated notify() hook, which the ledger does not implement.
    assert set(Application.save.__code__.co_names) == {
        "ProcessingEvent",
        "collect_events",
        "_record",
        "_take_snapshots",
        "_notify",
        "notify",
        "events",
    }
    assert Ledger.notify is Application.notify


def test_processing_event_collects_into_the_attributes_ours_fills() -> None:
    assert parameters(ProcessingEvent.__init__) == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("tracking", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    assert parameters(CollectingEvent.collect_events) == parameters(ProcessingEvent.collect_events)
    library, ours = ProcessingEvent[UUID](), CollectingEvent()
    account = CustomerAccount.open("cust-collect", "Acme", actor=HELPDESK, at=T0)
    twin = copy.deepcopy(account)
    library.collect_events(account, None, key="value")
    ours.collect_events(twin, None, key="value")
    assert [type(e) for e in ours.events] == [type(e) for e in library.events]
    assert list(ours.aggregates) == list(library.aggregates) == [account.id]
    assert ours.saved_kwargs == library.saved_kwargs == {"key": "value"}
    assert ours.tracking is library.tracking is None


def test_the_librarys_projector_only_mutates_each_event_in_turn() -> None:
    assert set(project_aggregate.__code__.co_names) <= {"isinstance", "CanMutateProtocol", "mutate"}
    assert "projector_func" in inspect.signature(Repository.get).parameters
    assert Ledger.snapshotting_projectors == {}


# --- saving: ours against the library's, on each store ------------------------------


class LibraryPathLedger(Ledger):
    """The ledger, saving and snapshotting the library's own way."""

    save = Application.save
    _take_snapshots = Application._take_snapshots


@pytest.fixture(params=STORES)
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty stores of the kind under test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ours.db'}", f"sqlite:///{tmp_path / 'library.db'}"
        return
    server: str = request.getfixturevalue("postgres_url")
    with fresh_database(server) as ours, fresh_database(server) as library:
        yield ours, library


def story() -> Iterator[list[Aggregate]]:
    """Saves, each of the aggregates given: an account crossing its snapshot
    interval with one event per save, then with several (the interval's
    multiple last, then in the middle), beside an invoice."""
    at = T0
    account = CustomerAccount.open("cust-contract", "Acme Store", actor=HELPDESK, at=at)
    yield [account]
    invoice = Invoice.issue(account, custom_package(100, "100.00"), actor=FINANCE, at=at)
    yield [invoice]
    invoice.pay(account, "bank-1", actor=FINANCE, at=at)
    yield [invoice, account]
    for credits in (5, -3, 7, 11, -2, 4, 1):
        at += timedelta(minutes=1)
        account.adjust(credits, "Correction", actor=FINANCE, at=at)
        yield [account]
    for batch in ((1, 2), (3, 4), (5, 6)):
        for credits in batch:
            at += timedelta(minutes=1)
            account.adjust(credits, "Correction", actor=FINANCE, at=at)
        yield [account]


def recorded(recordings: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            type(r.domain_event),
            r.domain_event.originator_id,
            r.domain_event.originator_version,
            r.notification.id,
            r.notification.topic,
            r.notification.state,
        )
        for r in recordings
    ]


def rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    notifications = ledger.recorder.select_notifications(start=1, limit=1000)
    return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


def snapshots(ledger: Ledger, aggregate_id: UUID) -> list[tuple[Any, ...]]:
    assert ledger.snapshots is not None
    return [
        (type(s), s.originator_id, s.originator_version, s.state)
        for s in ledger.snapshots.get(aggregate_id)
    ]


@pytest.fixture
def saved_twice(
    two_urls: tuple[str, str],
) -> Iterator[tuple[Ledger, Ledger, list[tuple[Any, Any]]]]:
    """The story saved by our ledger and by the library's path, each in its store;
    and what each save returned."""
    ours_url, library_url = two_urls
    ours = open_ledger(LedgerSettings(database_url=ours_url, snapshot_interval=INTERVAL))
    settings = LedgerSettings(database_url=library_url, snapshot_interval=INTERVAL)
    library = LibraryPathLedger(ledger_env(settings))
    library.snapshotting_intervals = {CustomerAccount: INTERVAL}
    returned = []
    for step in story():
        twins = copy.deepcopy(step)
        returned.append((ours.save(*step), library.save(*twins)))
    yield ours, library, returned
    ours.close()
    library.close()


def test_our_save_records_what_the_librarys_records(
    saved_twice: tuple[Ledger, Ledger, list[tuple[Any, Any]]],
) -> None:
    ours, library, returned = saved_twice
    for our_recordings, library_recordings in returned:
        assert recorded(our_recordings) == recorded(library_recordings)
    assert rows(ours) == rows(library)
    assert len(rows(ours)) == 17


def test_our_snapshots_are_the_librarys_snapshots(
    saved_twice: tuple[Ledger, Ledger, list[tuple[Any, Any]]],
) -> None:
    ours, library, _ = saved_twice
    account_id = CustomerAccount.create_id("cust-contract")
    assert snapshots(ours, account_id) == snapshots(library, account_id)
    assert [s[2] for s in snapshots(ours, account_id)] == [3, 6, 9, 12, 15]


def test_our_projector_gives_the_aggregate_the_librarys_gives(
    saved_twice: tuple[Ledger, Ledger, list[tuple[Any, Any]]],
) -> None:
    ours, _, _ = saved_twice
    ids = {n.originator_id for n in ours.recorder.select_notifications(start=1, limit=1000)}
    assert len(ids) == 2
    for aggregate_id in ids:
        events = list(ours.events.get(aggregate_id))
        assert state(project(None, events)) == state(project_aggregate(None, events))
        for version in (2, 4, 8, 13, len(events)):
            # Through the repository: from the latest snapshot, then the tail.
            assert state(
                ours.repository.get(aggregate_id, version=version, projector_func=project)
            ) == state(
                ours.repository.get(aggregate_id, version=version, projector_func=project_aggregate)
            )


def test_our_batch_save_records_what_the_librarys_save_records(
    two_urls: tuple[str, str],
) -> None:
    # The story's saves, collected first and saved as one batch (as the
    # batcher does), against the library's save of each step.
    ours_url, library_url = two_urls
    ours = open_ledger(LedgerSettings(database_url=ours_url, snapshot_interval=INTERVAL))
    settings = LedgerSettings(database_url=library_url, snapshot_interval=INTERVAL)
    library = LibraryPathLedger(ledger_env(settings))
    library.snapshotting_intervals = {CustomerAccount: INTERVAL}
    try:
        events: list[Any] = []
        aggregates: dict[UUID, Aggregate] = {}
        library_recordings: list[Any] = []
        for step in story():
            twins = copy.deepcopy(step)
            for aggregate in step:
                events.extend(aggregate.collect_events())
                aggregates[aggregate.id] = aggregate
            library_recordings += library.save(*twins)
        assert recorded(ours.save_events(events, aggregates)) == recorded(library_recordings)
        assert rows(ours) == rows(library)
        account_id = CustomerAccount.create_id("cust-contract")
        # The snapshots due in the middle of the batch are taken from the store.
        assert snapshots(ours, account_id) == snapshots(library, account_id)
    finally:
        ours.close()
        library.close()


def test_our_loads_of_many_aggregates_select_what_the_library_selects(
    two_urls: tuple[str, str],
) -> None:
    url, _ = two_urls
    ledger = open_ledger(LedgerSettings(database_url=url, snapshot_interval=INTERVAL))
    try:
        for step in story():
            ledger.save(*step)
        recorder = ledger.events.recorder
        ids = [n.originator_id for n in ledger.recorder.select_notifications(start=1, limit=1000)]
        account_id, invoice_id = dict.fromkeys(ids)
        missing = uuid4()
        for after in ({account_id: 0, invoice_id: 0}, {invoice_id: 1, account_id: 7, missing: 0}):
            expected = [e for i, gt in after.items() for e in recorder.select_events(i, gt=gt)]
            assert select_events_after(recorder, after) == expected
        assert select_events_after(recorder, {}) == []
        assert ledger.snapshots is not None
        snapshot_recorder = ledger.snapshots.recorder
        last = snapshot_recorder.select_events(account_id, desc=True, limit=1)
        assert last and last[0].originator_version == 15
        assert select_last_snapshots(snapshot_recorder, [invoice_id, account_id, missing]) == last
        assert select_last_snapshots(snapshot_recorder, []) == []
    finally:
        ledger.close()


# --- the PostgreSQL append: ours against the library's ----------------------------------


@pytest.fixture
def datastore(fresh_postgres_url: str) -> Iterator[PostgresDatastore]:
    parts = split_url(fresh_postgres_url)
    store = PostgresDatastore(
        dbname=parts["dbname"],
        host=parts["host"],
        port=parts["port"],
        user=parts["user"],
        password=parts["password"],
        lock_timeout=10,
    )
    yield store
    store.close()


def stored(aggregate_id: UUID, version: int) -> StoredEvent:
    return StoredEvent(aggregate_id, version, f"topic-{version}", f"state {version}".encode())


@pytest.mark.postgres
def test_our_append_overrides_the_librarys_with_its_signature() -> None:
    assert "insert_events" in PostgresApplicationRecorder.__dict__
    assert parameters(OneStatementAppend.insert_events) == parameters(
        PostgresApplicationRecorder.insert_events
    )


@pytest.mark.postgres
def test_our_append_stores_the_rows_and_positions_the_librarys_stores(
    datastore: PostgresDatastore,
) -> None:
    library = PostgresApplicationRecorder(datastore, events_table_name="library_events")
    ours = OneStatementAppend(datastore, events_table_name="ours_events")
    library.create_table()
    ours.create_table()
    a, b = uuid4(), uuid4()
    batches = [
        [stored(a, 1), stored(a, 2), stored(b, 1)],
        [stored(b, 2)],
        [stored(a, 3), stored(b, 3), stored(a, 4)],
    ]
    for batch in batches:
        assert ours.insert_events(batch) == library.insert_events(batch)
    # A clash on (aggregate, version) refuses the whole batch, in both.
    clash = [stored(b, 4), stored(a, 2)]
    for recorder in (library, ours):
        with pytest.raises(IntegrityError):
            recorder.insert_events(clash)
    assert ours.insert_events([stored(b, 4)]) == library.insert_events([stored(b, 4)])

    def table(recorder: PostgresApplicationRecorder) -> list[tuple[Any, ...]]:
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(start=1, limit=100)
        ]

    assert table(ours) == table(library)
    assert [row[2] for row in table(ours) if row[1] == b] == [1, 2, 3, 4]


@pytest.mark.postgres
def test_our_append_takes_the_librarys_table_lock_and_notifies_its_channel(
    datastore: PostgresDatastore,
) -> None:
    ours = OneStatementAppend(datastore, events_table_name="locked_events")
    ours.create_table()
    with datastore.get_connection() as conn:
        library_lock = [s.as_string(conn) for s in ours.lock_table_statements]
        body = conn.execute(
            SQL("SELECT prosrc FROM pg_proc WHERE proname = %s"), ("locked_events_append",)
        ).fetchone()
        channel = Identifier(ours.channel_name).as_string(conn)
    assert body is not None
    assert 'LOCK TABLE "public"."locked_events" IN EXCLUSIVE MODE' in library_lock
    assert 'LOCK TABLE "public"."locked_events" IN EXCLUSIVE MODE' in body["prosrc"]
    assert f"NOTIFY {channel}" in body["prosrc"]


# --- the datastore: bounded waits during an outage -----------------------------------

LIKE_COPIES = {
    "dbname",
    "host",
    "port",
    "user",
    "password",
    "connect_timeout",
    "idle_in_transaction_session_timeout",
    "pool_size",
    "max_overflow",
    "max_waiting",
    "conn_max_age",
    "pre_ping",
    "lock_timeout",
    "schema",
    "pool_open_timeout",
    "get_password_func",
    "single_row_tracking",
    "originator_id_type",
    "enable_db_functions",
}


def test_our_datastore_hooks_the_librarys_get_connection_with_its_signature() -> None:
    assert "get_connection" in PostgresDatastore.__dict__
    assert (
        parameters(OutageBoundedDatastore.get_connection)
        == parameters(PostgresDatastore.get_connection)
        == [("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    )
    # The library's pool waits ``pool.timeout`` when given no timeout.
    assert (
        inspect.signature(psycopg_pool.ConnectionPool.getconn).parameters["timeout"].default is None
    )
    assert "datastore" in BasePostgresFactory.__init__.__code__.co_names


def test_our_datastore_copies_every_setting_of_the_one_the_library_built() -> None:
    assert set(inspect.signature(PostgresDatastore.__init__).parameters) - {"self"} == LIKE_COPIES

    def password() -> str:
        return "from-a-vault"

    built = PostgresDatastore(
        "db",
        "127.0.0.1",
        "6543",
        "someone",
        "secret",
        connect_timeout=7,
        idle_in_transaction_session_timeout=3,
        pool_size=2,
        max_overflow=4,
        max_waiting=9,
        conn_max_age=120.0,
        pre_ping=True,
        lock_timeout=11,
        schema="elsewhere",
        pool_open_timeout=1.5,
        get_password_func=password,
        single_row_tracking=False,
        originator_id_type="text",
        enable_db_functions=True,
    )
    like = OutageBoundedDatastore.like(built)
    for name in (
        "idle_in_transaction_session_timeout",
        "pre_ping",
        "lock_timeout",
        "schema",
        "pool_open_timeout",
        "single_row_tracking",
        "originator_id_type",
        "enable_db_functions",
    ):
        assert getattr(like, name) == getattr(built, name), name
    for name in (
        "kwargs",
        "timeout",
        "min_size",
        "max_size",
        "max_waiting",
        "max_lifetime",
        "get_password_func",
    ):
        assert getattr(like.pool, name) == getattr(built.pool, name), name
    like.close()
    built.close()


@pytest.mark.postgres
def test_the_ledgers_factory_is_ours_and_every_recorder_uses_its_datastore(
    postgres_url: str,
) -> None:
    ledger = open_ledger(LedgerSettings(database_url=postgres_url))
    try:
        assert type(ledger.factory) is LedgerPostgresFactory
        assert isinstance(ledger.factory, PostgresFactory)
        datastore = ledger.factory.datastore
        assert isinstance(datastore, OutageBoundedDatastore)
        assert ledger.snapshots is not None
        assert ledger.recorder.datastore is datastore
        assert ledger.snapshots.recorder.datastore is datastore
    finally:
        ledger.close()


def unreachable_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def waits(datastore: PostgresDatastore) -> float:
    started = time.monotonic()
    with pytest.raises(OperationalError), datastore.get_connection():
        pass
    return time.monotonic() - started


@pytest.mark.slow
def test_once_the_database_is_unreachable_our_datastore_waits_briefly() -> None:
    settings: dict[str, Any] = {
        "dbname": "none",
        "host": "127.0.0.1",
        "port": unreachable_port(),
        "user": "nobody",
        "password": "",
        "connect_timeout": 1,
    }
    library, ours = PostgresDatastore(**settings), OutageBoundedDatastore(**settings)
    try:
        # The library waits the pool's timeout every time; ours, once.
        assert waits(library) >= 0.9
        assert waits(library) >= 0.9
        assert waits(ours) >= 0.9
        assert waits(ours) < DOWN_WAIT_S + 0.4
    finally:
        library.close()
        ours.close()


@pytest.mark.postgres
def test_a_connection_obtained_ends_the_outage(postgres_url: str) -> None:
    ledger = open_ledger(LedgerSettings(database_url=postgres_url))
    try:
        datastore = ledger.factory.datastore
        assert isinstance(datastore, OutageBoundedDatastore)
        ledger.recorder.max_notification_id()  # the pool open, a connection made
        datastore.outage.failed()
        assert datastore.outage.wait_s() == DOWN_WAIT_S
        ledger.recorder.max_notification_id()
        assert datastore.outage.wait_s() == datastore.outage.normal_wait_s == 5
        assert datastore.pool.timeout == DOWN_WAIT_S  # set for the call that ended it
        ledger.recorder.max_notification_id()
        assert datastore.pool.timeout == 5
    finally:
        ledger.close()
