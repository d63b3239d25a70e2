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
  decided here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from ledger.persistence.store import ColumnTypes, Cur, Store

TRACKING_TABLE = "rm_tracking"

#: An event and its global position in the store.
Positioned = tuple[int, Any]


class ReadModel(ABC):
    name: ClassVar[str]
    #: The event classes the model reads; the others only move its position.
    event_types: ClassVar[tuple[type, ...]]
    #: Its tables, emptied by a rebuild (children before parents).
    tables: ClassVar[tuple[str, ...]]

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
