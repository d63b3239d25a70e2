"""The audit service: the chain projection, verification, statements and
the export of every credit movement, over one ``Ledger``.

Everything here reads the event store itself (never a read model), because
it is what finance relies on to prove the read side right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.application import Ledger
from ledger.audit.chain import ChainHead, Verification, verify
from ledger.audit.statement import MOVEMENT_KINDS, Statement, build_statement, check_statement
from ledger.audit.store import PAGE, ChainStore, stored_events
from ledger.errors import InvalidInputError, UnknownAccountError
from ledger.persistence.store import Store
from ledger.views import plain

Progress = Callable[[int], None]

EXPORT_COLUMNS = (
    "position",
    "at",
    "customer_id",
    "kind",
    "amount",
    "balance_after",
    "request_id",
    "invoice_id",
    "actor",
    "reason",
)


class Audit:
    def __init__(self, ledger: Ledger, store: Store) -> None:
        """``store``: the ledger's own tables (shared with the read models),
        built and closed by ``ledger.bootstrap``."""
        self.ledger = ledger
        self.store = store
        self.chain = ChainStore(ledger.recorder, store)

    def close(self) -> None:
        """Close the chain's writer (the store is its owner's to close)."""
        self.chain.close()

    def catch_up(self, batch: int = PAGE) -> int:
        """Chain every event stored after the head (the chain projection)."""
        return self.chain.catch_up(batch)

    def head(self) -> ChainHead:
        return self.chain.head()

    def lag(self) -> int:
        return self.ledger.position() - self.head().position

    def verify(self, progress: Progress | None = None) -> Verification:
        """Recompute the chain from the store and compare it with the recorded
        chain; constant memory."""
        head = self.chain.head()
        store: Iterator[Any] = stored_events(self.ledger.recorder)
        if progress is not None:
            store = _counting(store, progress)
        return verify(store, self.chain.entries(head.position), head=head, locate=self.chain.locate)

    def statement(
        self, customer_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> Statement:
        """Raises ``UnknownAccountError``, ``InvalidInputError``."""
        for field, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise InvalidInputError(field, f"{field} needs a time zone offset")
        if since is not None and until is not None and since >= until:
            raise InvalidInputError("until", "until must be after since")
        account_id = account_id_for(customer_id)
        stored = self.ledger.recorder.select_events(account_id)
        if not stored:
            raise UnknownAccountError(customer_id)
        self.catch_up()
        positions = self.ledger.recorder.positions_of(account_id)  # type: ignore[attr-defined]
        return build_statement(
            account_events=((s, positions[s.originator_version]) for s in stored),
            mapper=self.ledger.mapper,
            customer_id=customer_id,
            account_id=account_id,
            since=since,
            until=until,
            head=self.chain.head(),
            issued_at=self.ledger.clock(),
        )

    def check_statement(self, content: dict[str, Any]) -> list[str]:
        return check_statement(content, self.ledger.recorder)

    def movements(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        upto: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every credit movement in store order, read from the event store a
        page at a time, as flat rows of ``EXPORT_COLUMNS``."""
        # An account's Opened event precedes its movements in store order, so
        # the customer id of each account is known when its movements come.
        kinds: list[type[Any]] = [CustomerAccount.Opened, *MOVEMENT_KINDS]
        topics = [get_topic(cls) for cls in kinds]
        customers: dict[UUID, str] = {}
        start: int | None = None
        while True:
            page = self.ledger.recorder.select_notifications(
                start=start, limit=PAGE, stop=upto, topics=topics, inclusive_of_start=False
            )
            for notification in page:
                event = self.ledger.mapper.to_domain_event(notification)
                if isinstance(event, CustomerAccount.Opened):
                    customers[event.originator_id] = event.customer_id
                    continue
                row = _movement_row(notification.id, event, customers[event.originator_id])
                if (since is None or row["_at"] >= since) and (until is None or row["_at"] < until):
                    del row["_at"]
                    yield row
            if progress is not None and page:
                progress(page[-1].id)
            if len(page) < PAGE:
                return
            start = page[-1].id


def _movement_row(position: int, event: Any, customer_id: str) -> dict[str, Any]:
    data = event.__dict__
    return {
        "_at": data["timestamp"],
        "position": position,
        "at": data["timestamp"].isoformat(),
        "customer_id": customer_id,
        "kind": MOVEMENT_KINDS[type(event)],
        "amount": data["amount"],
        "balance_after": data["balance_after"],
        "request_id": plain(data.get("request_id")) or "",
        "invoice_id": plain(data.get("invoice_id")) or "",
        "actor": str(data["actor"]),
        "reason": data.get("reason") or "",
    }


def _counting(items: Iterator[Any], progress: Progress) -> Iterator[Any]:
    for count, item in enumerate(items, 1):
        if count % PAGE == 0:
            progress(count)
        yield item
