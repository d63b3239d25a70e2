"""Every use of an ``eventsourcing`` internal, in one place.

The rest of the ledger uses the library's public API. The write path reaches
further in a few places, each for a gain measured by ``make bench``; each one
is here, says what it relies on in the library, and is pinned by
``tests/persistence/test_library_contract.py``, which fails when that part of
the library changes (the ``eventsourcing<9.6`` pin in ``pyproject.toml`` is only
the first guard). Figures are in ``bench/results.md``, not here.

1. ``CollectingEvent``, a subclass of ``eventsourcing.application.ProcessingEvent``:
   its ``collect_events`` takes the pending events of an ``Aggregate`` without
   the library's two ``isinstance`` checks against runtime protocols
   (``DomainEventProtocol``, ``CollectEventsProtocol``), slow in Python 3.11.
   Why: ``bench/results.md``, "Write-path CPU profile" (the ``Ledger.save``
   stacks); commit 57fb3d3. Relies on: the attributes ``events``,
   ``aggregates`` and ``saved_kwargs`` of a ``ProcessingEvent`` being what
   ``Application._record`` and ``_take_snapshots`` read.

2. ``WritePathApplication.save``, the library's ``Application.save``
   re-implemented to collect through ``CollectingEvent`` (the library builds a
   ``ProcessingEvent`` inline, with no hook). Relies on: the library's ``save``
   being exactly ``collect_events``, then the private ``_record(processing_event)``
   (which appends and returns the ``Recording`` list), ``_take_snapshots`` and
   ``_notify(recordings)``, then the deprecated ``notify(events)`` hook, which
   nothing here implements and which is left out.

3. ``WritePathApplication._take_snapshots``, an override of the library's
   private hook called by ``save``: the snapshot is taken of the aggregate just
   saved, in memory, where the library reloads it from the store at that
   version (it still does when the version due is not the aggregate's last);
   and a snapshot that cannot be written is logged, not raised (the events are
   committed by then: a cache miss must not fail the command).
   Why: ``bench/results.md``, "Write-path CPU profile" ("snapshots taken");
   commit 3aaf483. Relies on: the library's rule (a snapshot when an event's
   ``originator_version`` is a multiple of its aggregate type's interval in
   ``snapshotting_intervals``), the nested ``Snapshot`` class or
   ``snapshot_class``, ``Snapshot.take(aggregate)`` and ``snapshots.put``; no
   ``snapshotting_projectors`` (the ledger defines none).

4. ``project``, the library's ``project_aggregate`` without its per-event
   ``isinstance`` check against ``CanMutateProtocol``: every event here is one of
   our aggregates' own. Passed to the public ``Repository.get(projector_func=)``
   and applied to ``EventStore.get``. Why: ``bench/results.md``, "Write-path CPU
   profile" (``Ledger._load``); commit d4c68e2. Relies on: ``project_aggregate``
   being ``aggregate = event.mutate(aggregate)`` for each event in order.

5. ``OneStatementAppend``, a ``PostgresApplicationRecorder`` whose
   ``insert_events`` is one statement and one round trip: a function takes the
   library's table lock, notifies and inserts four plain arrays (sent in
   binary). The library sends the lock, the notify and the insert in a pipeline
   with two synchronisations, holding the lock that serialises every writer
   while answers travel to Python and the ``COMMIT`` back; its own
   ``POSTGRES_ENABLE_DB_FUNCTIONS`` function takes no table lock at all (so
   positions could commit out of order and a tailing reader skip one), and both
   send an array of its composite type, formatted as text in Python. Why:
   ``bench/results.md``, "Write throughput" and "Write-path CPU profile"
   (psycopg's array dumpers); commits d4c68e2, 61eb7f0. Relies on: the library's
   table (``originator_id``, ``originator_version``, ``topic``, ``state``,
   ``notification_id``; primary key on (aggregate, version)), its lock
   (``LOCK TABLE ... IN EXCLUSIVE MODE`` under ``lock_timeout``), its channel
   (``channel_name``, which its subscriptions ``LISTEN`` on), its
   ``sql_create_statements`` (run by ``create_table``), the ``insert_events``
   contract (the positions, in the order of the events; ``IntegrityError`` on a
   clash, nothing stored) and ``PostgresDatastore.get_connection`` translating
   psycopg's errors into the library's.

6. ``OutageBoundedDatastore`` (a ``PostgresDatastore``) built by
   ``LedgerPostgresFactory`` (a ``PostgresFactory``, selected through the
   library's ``PERSISTENCE_MODULE``): bounded waits for a connection while the
   database is down, and one ``check()`` of the whole pool on the first dead
   connection (``ledger.persistence.outage`` says why). Relies on:
   ``get_connection()`` being the one way the library's recorders take a
   connection; psycopg_pool's ``getconn`` waiting ``pool.timeout`` when given no
   timeout (the library passes none); ``BasePostgresFactory.__init__`` setting
   ``self.datastore`` before any recorder is built; the parameters of
   ``PostgresDatastore.__init__`` (``OutageBoundedDatastore.like`` copies them
   all from the one the library built).

7. ``WritePathApplication.save_events``: the save of item 2 for a batch of
   commands (``ledger.commands.batch``), given the events already collected
   (in the order of the commands, so that their positions follow it) and the
   aggregates they came from (for the snapshots). Why: a batch of commands is
   one append and one transaction, where one ``save`` per command is one
   each; ``bench/results.md``, "Write throughput". Relies on: what item 2
   relies on (``_record``, ``_take_snapshots``, ``_notify`` and the attributes
   of a ``ProcessingEvent``).

8. ``select_events_after`` and ``select_last_snapshots``: the events of many
   aggregates, each after a version of its own, in one query; and the last
   snapshot of each of many aggregates, in one query (the library selects the
   events of one aggregate per query). Why: a batch loads every aggregate its
   commands need with one query per store, where the library's repository
   makes one or two per aggregate; ``bench/results.md``, "Write throughput".
   Each is one index range scan per aggregate (a lateral subquery over the
   primary key), whatever the planner's statistics, and sends the ids as one
   text parameter (psycopg's Python side dumps a list element by element).
   Relies on: the library's tables (``originator_id``, ``originator_version``,
   ``topic``, ``state``; primary key on (aggregate, version);
   ``events_table_name``, ``datastore.schema``, ``datastore.originator_id_type``),
   its ``StoredEvent`` (what ``select_events`` returns) and its rows being
   dictionaries (the datastore's ``dict_row`` factory). On another store
   (SQLite) both take the public path: ``select_events`` per aggregate.

The read models' own store no longer reads the library's pool settings: it
is built from the settings in ``ledger.bootstrap.open_store``.

Not internals, though underscored: ``Aggregate._create`` is the library's
documented way for an aggregate's class method to trigger its created event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    AggregateRecorder,
    InterfaceError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    Recording,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType, retry
from psycopg.sql import SQL, Identifier

from ledger.persistence.outage import OutageState

logger = logging.getLogger(__name__)


# --- 1-3: saving ---------------------------------------------------------------------


class CollectingEvent(ProcessingEvent[UUID]):
    """The library's ``ProcessingEvent``, collecting an ``Aggregate``'s events
    without the runtime-protocol checks; anything else goes the library's way."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, Aggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            else:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)


class WritePathApplication(Application[UUID]):
    """The library's ``Application``, with the write path's two overrides."""

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's ``save`` (less its deprecated ``notify`` hook),
        collecting through ``CollectingEvent``."""
        processing_event = CollectingEvent()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def save_events(
        self, events: Sequence[Any], aggregates: Mapping[UUID, Aggregate]
    ) -> list[Recording[UUID]]:
        """The save above for events collected already (a batch of commands):
        one append of ``events`` in their order; snapshots of ``aggregates``."""
        processing_event = CollectingEvent()
        processing_event.events.extend(events)
        processing_event.aggregates.update(aggregates)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """A snapshot wherever the library takes one: for each event saved whose
        version is a multiple of its aggregate type's interval. Taken of the
        aggregate in memory when that event is its last one (one event per
        save, as every command here saves), else the library's way.

        Snapshots are a cache: once the events are committed, a failure to
        write one must not turn a successful command into an error (or, worse,
        into a retry)."""
        intervals = self.snapshotting_intervals
        if self.snapshots is None or not intervals:
            return
        try:
            for event in processing_event.events:
                aggregate: Any = processing_event.aggregates.get(event.originator_id)
                interval = intervals.get(type(aggregate)) if aggregate is not None else None
                if not interval or event.originator_version % interval:
                    continue
                if aggregate.version == event.originator_version:
                    snapshot_class: Any = getattr(type(aggregate), "Snapshot", self.snapshot_class)
                    self.snapshots.put([snapshot_class.take(aggregate)])
                else:
                    self.take_snapshot(
                        event.originator_id,
                        version=event.originator_version,
                        projector_func=project,
                    )
        except PersistenceError:
            logger.warning("snapshot not written", exc_info=True)


# --- 4: loading ----------------------------------------------------------------------


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event protocol check."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


# --- 8: loading many aggregates at once ---------------------------------------------


def select_events_after(
    recorder: AggregateRecorder, after: Mapping[UUID, int]
) -> list[StoredEvent]:
    """The stored events of each aggregate in ``after`` whose version is above
    the one given for it (0: all of them), in one query on PostgreSQL;
    grouped by aggregate, each aggregate's in the order of its versions."""
    if not after:
        return []
    if not isinstance(recorder, PostgresAggregateRecorder):
        return [e for i, gt in after.items() for e in recorder.select_events(i, gt=gt)]
    # One index range scan per aggregate: ``OFFSET 0`` keeps the planner from
    # flattening the lateral subquery into a join, which it may make a scan
    # of the whole table (as it did on a table not analyzed yet).
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        "FROM unnest({ids}, {gts}) WITH ORDINALITY AS w(id, gt, n) "
        "CROSS JOIN LATERAL (SELECT * FROM {schema}.{table} AS e "
        "WHERE e.originator_id = w.id AND e.originator_version > w.gt OFFSET 0) AS e "
        "ORDER BY w.n, e.originator_version"
    ).format(
        ids=_id_array(recorder),
        gts=SQL("string_to_array(%s, ',')::bigint[]"),
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    params = (_ids_param(recorder, after), ",".join(map(str, after.values())))
    return _stored_events(recorder, statement, params)


def _id_array(recorder: PostgresAggregateRecorder) -> Any:
    """The SQL of the ids' parameter as an array of the table's id type."""
    if recorder.datastore.originator_id_type == "uuid":
        # One text parameter: psycopg's Python side dumps a list element by
        # element, and this runs once per batch for every aggregate loaded.
        return SQL("string_to_array(%s, ',')::uuid[]")
    return SQL("%s::text[]")


def _ids_param(recorder: PostgresAggregateRecorder, ids: Iterable[Any]) -> Any:
    if recorder.datastore.originator_id_type == "uuid":
        return ",".join(
            i.hex if isinstance(i, UUID) else str(UUID(str(i))).replace("-", "") for i in ids
        )
    return [str(i) for i in ids]


def select_last_snapshots(recorder: AggregateRecorder, ids: Sequence[UUID]) -> list[StoredEvent]:
    """The newest stored snapshot of each of ``ids`` that has one, in one query
    on PostgreSQL (``recorder`` is the snapshot store's)."""
    if not ids:
        return []
    if not isinstance(recorder, PostgresAggregateRecorder):
        return [s for i in ids for s in recorder.select_events(i, desc=True, limit=1)]
    statement = SQL(
        "SELECT s.originator_id, s.originator_version, s.topic, s.state "
        "FROM unnest({ids}) AS w(id) "
        "CROSS JOIN LATERAL (SELECT * FROM {schema}.{table} AS s WHERE s.originator_id = w.id "
        "ORDER BY s.originator_version DESC LIMIT 1) AS s"
    ).format(
        ids=_id_array(recorder),
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    return _stored_events(recorder, statement, (_ids_param(recorder, ids),))


def _stored_events(
    recorder: PostgresAggregateRecorder, statement: Any, params: Sequence[Any]
) -> list[StoredEvent]:
    """The rows of ``statement`` (the table's columns) as stored events."""
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, params, prepare=True)
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


# --- 5: the PostgreSQL append ----------------------------------------------------------


class OneStatementAppend(PostgresApplicationRecorder):
    """The library's recorder, appending through one server-side function."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        append = Identifier(f"{self.events_table_name}_append")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{append}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                # As its owner: the service's role needs no UPDATE, DELETE
                # or TRUNCATE privilege for the lock (``ledger db setup``).
                "RETURNS SETOF bigint LANGUAGE plpgsql "
                "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT e.id, e.version, e.topic, e.state "
                "FROM unnest(ids, versions, topics, states) WITH ORDINALITY "
                "AS e(id, version, topic, state, n) ORDER BY e.n "
                "RETURNING notification_id; "
                "END $$"
            ).format(
                schema=schema,
                append=append,
                id_type=Identifier(self.datastore.originator_id_type),
                lock_timeout=SQL(str(int(self.datastore.lock_timeout))),
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self._append = SQL(
            "SELECT appended FROM {schema}.{append}(%s, %s, %s, %s) AS appended"
        ).format(schema=schema, append=append)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Append in one statement; the positions, in the order of ``stored_events``.
        A clash on (aggregate, version) raises ``IntegrityError`` and stores nothing."""
        if kwargs.get("tracking") is not None:
            raise ProgrammingError("the application recorder records no tracking")
        if not stored_events:
            return []
        # Four plain arrays: psycopg sends them in binary, where an array of the
        # library's composite type is formatted as text in Python, field by field.
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._append, columns, prepare=True)
            return [row["appended"] for row in curs.fetchall()]


# --- 6: waits for a connection during an outage ---------------------------------------


class OutageBoundedDatastore(PostgresDatastore):
    """The library's datastore, waiting only briefly for a connection while the
    database is known to be down (``ledger.persistence.outage``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = OutageState(float(self.pool.timeout))

    @classmethod
    def like(cls, built: PostgresDatastore) -> OutageBoundedDatastore:
        """One with every setting of ``built`` (a datastore whose pool is not open)."""
        pool = built.pool
        raw = pool.kwargs
        kwargs = dict((raw() if callable(raw) else raw) or {})
        return cls(
            dbname=kwargs["dbname"],
            host=kwargs["host"],
            port=kwargs["port"],
            user=kwargs["user"],
            password=kwargs["password"],
            connect_timeout=pool.timeout,
            idle_in_transaction_session_timeout=built.idle_in_transaction_session_timeout,
            pool_size=pool.min_size,
            max_overflow=pool.max_size - pool.min_size,
            max_waiting=pool.max_waiting,
            conn_max_age=pool.max_lifetime,
            pre_ping=built.pre_ping,
            lock_timeout=built.lock_timeout,
            schema=built.schema,
            pool_open_timeout=built.pool_open_timeout,
            get_password_func=pool.get_password_func,
            single_row_tracking=built.single_row_tracking,
            originator_id_type="text" if built.originator_id_type == "text" else "uuid",
            enable_db_functions=built.enable_db_functions,
        )

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        # The library's pool waits ``pool.timeout`` in each ``getconn`` it is given
        # no timeout for, which is every one the library's ``get_connection`` makes.
        self.pool.timeout = self.outage.wait_s()
        conn: Any = None
        try:
            with super().get_connection() as conn:
                self.outage.reached()
                yield conn
        except (OperationalError, InterfaceError, psycopg.OperationalError):
            # No connection, or one the server dropped (a shutdown terminates them).
            if (conn is None or conn.broken) and self.outage.failed():
                self.pool.check()
            raise


class LedgerPostgresFactory(PostgresFactory):
    """The library's factory, with an ``OutageBoundedDatastore``."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        built = self.datastore
        self.datastore = OutageBoundedDatastore.like(built)
        built.close()
