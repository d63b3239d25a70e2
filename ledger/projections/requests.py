"""The ``requests`` read model: one row per support request, for the helpdesk.

Invariants owned here: each row equals the request aggregate replayed up to
the row's ``position``: status, price, agreed price, revisions, charged,
refunded and closing time are changed by the aggregate's own event
``apply`` methods, run on a mirror of the row; the opening fields (the price
list version among them) are copied from ``RequestOpened``, with its position
(``opened_position``, which never changes: the requests list pages newest
first by it).

Its queries (``get``, ``list_requests``) take an open read cursor: the facade
``ledger.projections.queries.ReadQueries`` opens it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from ledger.aggregates import RequestStatus, SupportRequest
from ledger.persistence.store import MAX_IN_LIST, ColumnTypes, Cur, Store, as_time, as_uuid
from ledger.projections.base import Positioned, ReadModel, write_rows
from ledger.projections.rows import RequestRow

TABLE = "rm_requests"
COLUMNS = (
    "request_id, customer_id, category, subject, status, price, agreed_price, charged, "
    "refunded, revisions, from_version, to_version, third_party, opened_at, closed_at, position, "
    "opened_position, price_list_version"
)
# The filters of the list, each with an index that ends in ``opened_position``.
LIST_FILTERS = ("status", "customer_id", "category")

R = SupportRequest


class _Request:
    """Stands in for a ``SupportRequest`` while its events' ``apply`` run: the
    fields of a ``RequestRow`` (``ledger.views.RequestState`` and the
    position, the one definition of a request's state) as attributes, with
    the status as the enum member (``apply`` compares with ``is``). Built
    from a stored row or from ``RequestOpened`` and written back as the
    table's values directly: a rebuild makes one per request
    (``bench/results.md``, "Read-model rebuild")."""

    position: int
    opened_position: int

    def __init__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @classmethod
    def of_row(cls, row: RequestRow) -> _Request:
        return cls({**vars(row), "status": RequestStatus(row.status)})

    def values(self, s: Store) -> tuple[Any, ...]:
        """The row's values in the order of ``COLUMNS``."""
        d = self.__dict__
        return (
            s.uuid(d["request_id"]),
            d["customer_id"],
            d["category"],
            d["subject"],
            d["status"].value,
            d["price"],
            d["agreed_price"],
            d["charged"],
            d["refunded"],
            d["revisions"],
            d["from_version"],
            d["to_version"],
            s.boolean(d["third_party"]),
            s.time(d["opened_at"]),
            s.time(d["closed_at"]),
            d["position"],
            d["opened_position"],
            d["price_list_version"],
        )


class Requests(ReadModel):
    name = "requests"
    event_types = (
        R.RequestOpened,
        R.PreQuoteRequested,
        R.RequestQuoted,
        R.QuoteAccepted,
        R.QuoteDeclined,
        R.PriceRevised,
        R.AnswerCharged,
        R.RequestReferred,
        R.RequestCancelled,
        R.ChargeDisputed,
        R.ChargeRefunded,
        R.DisputeRejected,
    )
    tables = (TABLE,)
    # 2: ``opened_position`` and the list's indexes; 3: ``price_list_version``.
    schema_version = 3

    def create_statements(self, t: ColumnTypes) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"request_id {t.uuid} PRIMARY KEY, customer_id TEXT NOT NULL, "
            "category TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL, "
            f"price {t.bigint}, agreed_price {t.bigint}, charged {t.bigint}, "
            f"refunded {t.bigint} NOT NULL, revisions {t.bigint} NOT NULL, "
            f"from_version TEXT, to_version TEXT, third_party {t.boolean} NOT NULL, "
            f"opened_at {t.time} NOT NULL, closed_at {t.time}, position {t.bigint} NOT NULL, "
            f"opened_position {t.bigint} NOT NULL UNIQUE, "
            f"price_list_version {t.bigint} NOT NULL)",
            *(
                f"CREATE INDEX IF NOT EXISTS {TABLE}_{column} ON {TABLE} "
                f"({column}, opened_position)"
                for column in LIST_FILTERS
            ),
        ]

    def apply(self, cur: Cur, events: Sequence[Positioned]) -> None:
        opened = {e.originator_id for _, e in events if isinstance(e, R.RequestOpened)}
        requests = self._load(cur, {e.originator_id for _, e in events} - opened)
        for position, event in events:
            if isinstance(event, R.RequestOpened):
                request = requests[event.originator_id] = _opened(event, position)
            else:
                request = requests[event.originator_id]
                event.apply(request)  # the aggregate's own change of state
            request.position = position
        s = self.store
        write_rows(
            cur,
            s,
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (request_id) DO UPDATE SET status = excluded.status, "
            "price = excluded.price, agreed_price = excluded.agreed_price, "
            "charged = excluded.charged, refunded = excluded.refunded, "
            "revisions = excluded.revisions, closed_at = excluded.closed_at, "
            "position = excluded.position",
            [request.values(s) for request in requests.values()],
            fresh={s.uuid(i) for i in opened},
        )

    def _load(self, cur: Cur, request_ids: set[UUID]) -> dict[UUID, _Request]:
        found: dict[UUID, _Request] = {}
        ids = sorted(request_ids)
        for i in range(0, len(ids), MAX_IN_LIST):
            condition, params = self.store.in_list(
                "request_id", [self.store.uuid(r) for r in ids[i : i + MAX_IN_LIST]]
            )
            for row in cur.run(f"SELECT {COLUMNS} FROM {TABLE} WHERE {condition}", params).all():
                found[as_uuid(row[0])] = _Request.of_row(request_row(row))
        return found


def _opened(event: Any, position: int) -> _Request:
    """The request as ``RequestOpened`` at ``position`` opens it."""
    return _Request(
        {
            "request_id": event.originator_id,
            "customer_id": event.customer_id,
            "category": str(getattr(event.category, "value", event.category)),
            "subject": event.subject,
            "status": RequestStatus.OPEN,
            "price": event.price,
            "agreed_price": None,
            "charged": None,
            "refunded": 0,
            "revisions": 0,
            "from_version": event.from_version,
            "to_version": event.to_version,
            "third_party": bool(event.third_party),
            "opened_at": event.timestamp,
            "closed_at": None,
            "price_list_version": event.price_list_version,
            "position": position,
            "opened_position": position,
        }
    )


def request_row(row: Sequence[Any]) -> RequestRow:
    """A row of ``SELECT {COLUMNS}`` as a ``RequestRow``."""
    return RequestRow(
        request_id=as_uuid(row[0]),
        customer_id=str(row[1]),
        category=str(row[2]),
        subject=str(row[3]),
        status=str(row[4]),
        price=None if row[5] is None else int(row[5]),
        agreed_price=None if row[6] is None else int(row[6]),
        charged=None if row[7] is None else int(row[7]),
        refunded=int(row[8]),
        revisions=int(row[9]),
        from_version=row[10],
        to_version=row[11],
        third_party=bool(row[12]),
        opened_at=as_time(row[13]),
        closed_at=None if row[14] is None else as_time(row[14]),
        position=int(row[15]),
        opened_position=int(row[16]),
        price_list_version=int(row[17]),
    )


# --- queries ------------------------------------------------------------------


def get(cur: Cur, store: Store, request_id: UUID) -> RequestRow | None:
    """The row of one support request, if it is known."""
    row = cur.run(
        f"SELECT {COLUMNS} FROM {TABLE} WHERE request_id = %s", (store.uuid(request_id),)
    ).one()
    return None if row is None else request_row(row)


def list_requests(
    cur: Cur,
    store: Store,
    *,
    statuses: Sequence[str],
    customer_id: str | None,
    category: str | None,
    before: int | None,
    limit: int,
) -> list[RequestRow]:
    """Requests newest first (by opening position) before ``before``; any of
    ``statuses`` (none: every status), of one customer, of one category."""
    conditions: list[str] = []
    params: list[Any] = []
    if before is not None:
        conditions.append("opened_position < %s")
        params.append(before)
    if len(statuses) == 1:  # then the (status, opened_position) index gives the order
        conditions.append("status = %s")
        params.append(statuses[0])
    elif statuses:
        condition, values = store.in_list("status", list(statuses))
        conditions.append(condition)
        params += values
    for column, value in (("customer_id", customer_id), ("category", category)):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    rows = cur.run(
        f"SELECT {COLUMNS} FROM {TABLE} {where}ORDER BY opened_position DESC LIMIT %s",
        [*params, limit],
    ).all()
    return [request_row(r) for r in rows]


def count_by_status(cur: Cur, store: Store, statuses: Sequence[str]) -> dict[str, int]:
    """How many requests are in each of ``statuses`` (the work queues' counts;
    the ``(status, opened_position)`` index answers it)."""
    condition, values = store.in_list("status", list(statuses))
    rows = cur.run(
        f"SELECT status, count(*) FROM {TABLE} WHERE {condition} GROUP BY status", values
    ).all()
    found = {str(status): int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in statuses}
