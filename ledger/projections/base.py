"""What every read model is, and its tracking row.

Invariants owned here:
- a read model is a set of tables it creates itself (``IF NOT EXISTS``) and
  one row in ``rm_tracking``: the global position up to which it has
  processed the event store, including the events it has no use for;
- a batch of events and the move of the tracking position are one
  transaction: the move is a compare-and-set (``UPDATE ... WHERE position =
  old``) done first, so it also takes the row lock that serialises every
  writer of that read model; a writer that finds the position moved rolls
  back, and nothing is ever counted twice or skipped;
- ``apply`` copies numbers from events and, where the aggregates have an
  ``apply`` method, runs that same method on a mirror of the row: no rule is
  decided here;
- a read model's tables have a ``schema_version``, stored in ``rm_schema``:
  when the code's version differs from the store's, its tables are dropped
  and created anew and its position goes back to zero, so the worker
  rebuilds it from the first event (a store from before ``rm_schema`` holds
  version 1 of every read model).
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from ledger.persistence.store import ColumnTypes, Cur, Store

TRACKING_TABLE = "rm_tracking"
SCHEMA_TABLE = "rm_schema"
#: The version of every read model's tables in a store from before ``rm_schema``.
FIRST_SCHEMA_VERSION = 1

log = logging.getLogger("ledger.projections")

#: An event and its global position in the store.
Positioned = tuple[int, Any]

#: From this many rows on, ``write_rows`` stages them with ``COPY`` on
#: PostgreSQL (below it, the pipelined ``executemany`` is as fast).
STAGE_MIN_ROWS = 100
_INSERT = re.compile(
    r"\s*INSERT INTO (?P<table>\w+) \((?P<columns>[^)]*)\)\s*VALUES\s*\([^)]*\)\s*(?P<rest>.*)",
    re.DOTALL,
)


class ReadModel(ABC):
    name: ClassVar[str]
    #: The event classes the model reads; the others only move its position.
    event_types: ClassVar[tuple[type, ...]]
    #: Its tables, emptied by a rebuild (children before parents).
    tables: ClassVar[tuple[str, ...]]
    #: Bump when the tables change: a store at another version rebuilds the model.
    schema_version: ClassVar[int] = FIRST_SCHEMA_VERSION

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def topics(cls) -> list[str]:
        return [get_topic(t) for t in cls.event_types]

    @abstractmethod
    def create_statements(self, t: ColumnTypes) -> list[str]: ...

    @abstractmethod
    def apply(self, cur: Cur, events: Sequence[Positioned]) -> None:
        """Write the effect of ``events`` (in store order) inside the open
        transaction ``cur``."""


def tracking_statements(t: ColumnTypes) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} ("
        f"read_model TEXT PRIMARY KEY, position {t.bigint} NOT NULL)"
    ]


def schema_statements(t: ColumnTypes) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
        f"read_model TEXT PRIMARY KEY, version {t.bigint} NOT NULL)"
    ]


def outdated(cur: Cur, models: Sequence[ReadModel]) -> dict[str, int]:
    """The read models whose stored schema version is not the code's, with
    the stored version."""
    stored = {
        str(name): int(version)
        for name, version in cur.run(f"SELECT read_model, version FROM {SCHEMA_TABLE}").all()
    }
    # A model with a tracking row but no version predates ``rm_schema``; one
    # with neither is new to this store and has nothing to rebuild.
    tracked = {str(row[0]) for row in cur.run(f"SELECT read_model FROM {TRACKING_TABLE}").all()}
    for name in tracked - stored.keys():
        stored[name] = FIRST_SCHEMA_VERSION
    return {
        m.name: stored[m.name]
        for m in models
        if stored.get(m.name, m.schema_version) != m.schema_version
    }


def migrate(cur: Cur, models: Sequence[ReadModel]) -> list[str]:
    """Drop the tables of every read model whose stored schema version is
    not the code's, and reset its position to zero (inside the DDL
    transaction, before the tables are created); return their names."""
    found = outdated(cur, models)
    for model in models:
        if model.name not in found:
            continue
        log.warning(
            "the %s read model's tables are at version %s, the code's at %s: rebuilding it",
            model.name,
            found[model.name],
            model.schema_version,
        )
        for table in model.tables:
            cur.run(f"DROP TABLE IF EXISTS {table}")
        reset_tracking(cur, model.name)
    cur.many(
        f"INSERT INTO {SCHEMA_TABLE} (read_model, version) VALUES (%s, %s) "
        "ON CONFLICT (read_model) DO UPDATE SET version = excluded.version",
        [(m.name, m.schema_version) for m in models],
    )
    return list(found)


def ensure_tracking(cur: Cur, names: Sequence[str]) -> None:
    cur.many(
        f"INSERT INTO {TRACKING_TABLE} (read_model, position) VALUES (%s, 0) "
        "ON CONFLICT (read_model) DO NOTHING",
        [(name,) for name in names],
    )


def tracking_positions(cur: Cur, names: Sequence[str]) -> dict[str, int]:
    rows = cur.run(f"SELECT read_model, position FROM {TRACKING_TABLE}").all()
    found = {str(name): int(position) for name, position in rows}
    return {name: found.get(name, 0) for name in names}


def move_tracking(cur: Cur, name: str, old: int, new: int) -> bool:
    """Compare-and-set: ``False`` when another writer moved it first."""
    cur.run(
        f"UPDATE {TRACKING_TABLE} SET position = %s WHERE read_model = %s AND position = %s",
        (new, name, old),
    )
    return cur.rowcount == 1


def reset_tracking(cur: Cur, name: str) -> None:
    cur.run(f"UPDATE {TRACKING_TABLE} SET position = 0 WHERE read_model = %s", (name,))


def write_rows(
    cur: Cur,
    store: Store,
    sql: str,
    rows: Sequence[Sequence[Any]],
    *,
    fresh: Collection[Any] = (),
) -> None:
    """The rows of one ``INSERT INTO t (columns) VALUES (%s, ...) [ON CONFLICT
    ...]`` statement, whose keys are unique among ``rows``.

    Below ``STAGE_MIN_ROWS`` rows, and on SQLite, that is ``cur.many``. From
    it on PostgreSQL, the rows whose first column (the key) is in ``fresh``
    (rows the caller knows the table cannot hold yet: the aggregate's first
    event is in this batch) are copied straight into the table (``COPY``,
    formatted in C); the others are copied into a temporary table of those
    columns, dropped at the end, and inserted from there by one ``INSERT ...
    SELECT`` with the same conflict clause. Either is one statement in place
    of one per row (where a rebuild spent most of its writing time,
    ``bench/results.md``, "Read-model rebuild"). Unique keys keep them the
    same: ``ON CONFLICT DO UPDATE`` may not meet one row twice in one
    statement."""
    found = _INSERT.fullmatch(sql)
    if store.backend == "sqlite" or len(rows) < STAGE_MIN_ROWS or found is None:
        cur.many(sql, rows)
        return
    table, rest = found["table"], found["rest"]
    columns = [c.strip() for c in found["columns"].split(",")]
    if fresh:
        cur.append(table, columns, [row for row in rows if row[0] in fresh])
        rows = [row for row in rows if row[0] not in fresh]
        if len(rows) < STAGE_MIN_ROWS:
            cur.many(sql, rows)
            return
    listed = ", ".join(columns)
    digest = hashlib.sha256(f"{table}({listed})".encode()).hexdigest()[:16]
    stage = f"rm_stage_{digest}"
    cur.run(
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
        f"SELECT {listed} FROM {table} WITH NO DATA"
    )
    cur.append(stage, columns, rows)
    cur.run(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {stage} {rest}")
    cur.run(f"DROP TABLE {stage}")
