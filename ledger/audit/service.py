"""The audit service: the chain projection, verification, statements and
the export of every credit movement, over one ``Ledger``.

Everything here reads the event store itself (never a read model), because
it is what finance relies on to prove the read side right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount, Invoice, SupportRequest, account_id_for
from ledger.aggregates.account import HOLD_KINDS, MOVEMENT_KINDS, hold_reason
from ledger.application import Ledger
from ledger.audit.chain import ChainBreak, ChainHead, Verification, confirm, verify
from ledger.audit.statement import (
    Origin,
    Statement,
    build_statement,
    check_statement,
)
from ledger.audit.store import PAGE, ChainStore, stored_notifications, stored_rows
from ledger.errors import InvalidInputError, UnknownAccountError
from ledger.persistence.store import Store, as_uuid
from ledger.views import TRAIL_COLUMNS, plain

Progress = Callable[[int], None]

EXPORT_COLUMNS = TRAIL_COLUMNS


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
        chain, then check every snapshot against a replay of its aggregate's
        events up to its version; constant memory."""
        head = self.chain.head()
        # First the plain pass over tuples (``confirm``), then the judging
        # pass from where it stopped: nothing left on an untouched store but
        # the events stored after the head.
        confirmed = confirm(
            stored_rows(self.store, head.position, progress), self.chain.rows(head.position)
        )
        store: Iterator[Any] = stored_notifications(self.store, after=confirmed.position)
        if progress is not None:
            store = _counting(store, progress, confirmed.checked)
        result = verify(
            store,
            self.chain.entries(head.position, after=confirmed.position),
            head=head,
            locate=self.chain.locate,
            start=confirmed,
        )
        if not result.ok:
            return result
        checked, first = self.check_snapshots()
        return replace(result, snapshots_checked=checked, first_break=first)

    def check_snapshots(self) -> tuple[int, ChainBreak | None]:
        """How many snapshots were checked, and the one at the lowest position
        (that of the event it stands for) that differs from the replay of its
        aggregate's events, or cannot be read. A snapshot is a cache the
        ledger loads accounts from: a forged one would be believed.

        Each aggregate's events are replayed once, in version order, whatever
        its number of snapshots."""
        if self.ledger.snapshots is None:
            return 0, None
        snapshots = _snapshot_rows(self.store, self.ledger.snapshots.recorder)
        checked, first = 0, None
        current: tuple[UUID, int, Any] | None = None  # aggregate id, version, replay
        for originator_id, version, topic, state, position in snapshots:
            checked += 1
            if current is None or current[0] != originator_id:
                current = (originator_id, 0, None)
            _, replayed_to, aggregate = current
            if version > replayed_to:
                events = self.ledger.events.get(originator_id, gt=replayed_to, lte=version)
                for event in events:
                    aggregate = cast(Any, event).mutate(aggregate)
                current = (originator_id, version, aggregate)
            problem = self._snapshot_problem(
                StoredEvent(originator_id, version, topic, state), aggregate, position
            )
            if problem is not None and (first is None or problem.position < first.position):
                first = problem
        return checked, first

    def _snapshot_problem(
        self, stored: StoredEvent, aggregate: Any, position: int | None
    ) -> ChainBreak | None:
        """How the stored snapshot differs from the aggregate replayed to its
        version, or ``None``."""

        def problem(detail: str) -> ChainBreak:
            return ChainBreak(
                position or 0,
                "snapshot",
                f"the snapshot of aggregate {stored.originator_id} at version "
                f"{stored.originator_version} {detail}",
                originator_id=as_uuid(stored.originator_id),
                originator_version=stored.originator_version,
            )

        if position is None or aggregate is None or aggregate.version != stored.originator_version:
            return problem("stands for no stored event")
        mapper = self.ledger.mapper
        try:
            snapshot: Any = mapper.to_domain_event(stored)
            state, topic = dict(snapshot.state), str(snapshot.topic)
        except Exception as e:  # whatever it holds, an unreadable snapshot is a break
            return problem(f"cannot be read ({type(e).__name__}: {e})")
        snapshot_class: Any = getattr(type(aggregate), "Snapshot", self.ledger.snapshot_class)
        # Through the same transcoder both ways, so that types compare alike.
        expected: Any = mapper.to_domain_event(
            mapper.to_stored_event(snapshot_class.take(aggregate))
        )
        if topic != expected.topic:
            return problem(f"is of {topic}, its events make a {expected.topic}")
        differing = sorted(
            key
            for key in state.keys() | expected.state.keys()
            if state.get(key) != expected.state.get(key)
        )
        if differing:
            return problem(f"differs from the replay of its events in {', '.join(differing)}")
        return None

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
            origins=self._origin,
        )

    def _origin(self, aggregate_id: UUID) -> Origin | None:
        """The subject and category of a request, or the package of an
        invoice, from its first stored event."""
        found = self.ledger.recorder.select_events(aggregate_id, limit=1)
        if not found:
            return None
        first = self.ledger.mapper.to_domain_event(found[0])
        if isinstance(first, SupportRequest.RequestOpened):
            return Origin(subject=first.subject, category=str(first.category.value))
        if isinstance(first, Invoice.InvoiceIssued):
            return Origin(package=first.credits)
        return None

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
        page at a time, as flat rows of ``EXPORT_COLUMNS``: the movements of
        credits, and the holds as entries of zero credits with the credits
        held (the balance after is the account's balance then)."""
        # An account's Opened event precedes its movements in store order, so
        # the customer id of each account is known when its movements come,
        # and so is the balance when a hold comes.
        kinds: list[type[Any]] = [CustomerAccount.Opened, *MOVEMENT_KINDS, *HOLD_KINDS]
        topics = [get_topic(cls) for cls in kinds]
        customers: dict[UUID, str] = {}
        balances: dict[UUID, int] = {}
        start: int | None = None
        while True:
            page = self.ledger.recorder.select_notifications(
                start=start, limit=PAGE, stop=upto, topics=topics, inclusive_of_start=False
            )
            for notification in page:
                event = self.ledger.mapper.to_domain_event(notification)
                account_id = event.originator_id
                if isinstance(event, CustomerAccount.Opened):
                    customers[account_id] = event.customer_id
                    balances[account_id] = 0
                    continue
                row = _movement_row(
                    notification.id, event, customers[account_id], balances[account_id]
                )
                balances[account_id] = row["balance_after"]
                if (since is None or row["_at"] >= since) and (until is None or row["_at"] < until):
                    del row["_at"]
                    yield row
            if progress is not None and page:
                progress(page[-1].id)
            if len(page) < PAGE:
                return
            start = page[-1].id


def _movement_row(position: int, event: Any, customer_id: str, balance: int) -> dict[str, Any]:
    """A row of ``EXPORT_COLUMNS``; ``balance`` is the account's balance
    before the event."""
    data = event.__dict__
    row = {
        "_at": data["timestamp"],
        "position": position,
        "at": data["timestamp"].isoformat(),
        "customer_id": customer_id,
        "request_id": plain(data.get("request_id")) or "",
        "invoice_id": plain(data.get("invoice_id")) or "",
        "actor": str(data["actor"]),
    }
    hold = HOLD_KINDS.get(type(event))
    if hold is None:
        version = data.get("price_list_version")
        row |= {
            "kind": MOVEMENT_KINDS[type(event)],
            "amount": data["amount"],
            "balance_after": data["balance_after"],
            "reason": data.get("reason") or "",
            "price_list_version": "" if version is None else version,
            "held": "",
        }
    else:
        row |= {
            "kind": hold,
            "amount": 0,
            "balance_after": balance,
            "reason": hold_reason(event),
            "price_list_version": "",
            "held": data["amount"],
        }
    return row


def _snapshot_rows(
    store: Store, recorder: AggregateRecorder
) -> Iterator[tuple[UUID, int, str, Any, int | None]]:
    """Every snapshot, by aggregate and version, a page at a time, with the
    position of the event it stands for (``None``: no such event)."""
    table = str(getattr(recorder, "events_table_name", "snapshots"))
    after: tuple[Any, int] | None = None
    while True:
        where = "" if after is None else "WHERE (s.originator_id, s.originator_version) > (%s, %s)"
        with store.reading() as cur:
            rows = cur.run(
                "SELECT s.originator_id, s.originator_version, s.topic, s.state, "
                f"e.{store.id_column} FROM {table} s LEFT JOIN {store.events_table} e "
                "ON e.originator_id = s.originator_id "
                "AND e.originator_version = s.originator_version "
                f"{where} ORDER BY s.originator_id, s.originator_version LIMIT %s",
                (*(after or ()), PAGE),
            ).all()
        for originator_id, version, topic, state, position in rows:
            yield (
                as_uuid(originator_id),
                int(version),
                str(topic),
                bytes(state) if isinstance(state, bytes | memoryview) else state,
                None if position is None else int(position),
            )
        if len(rows) < PAGE:
            return
        after = (rows[-1][0], int(rows[-1][1]))


def _counting(items: Iterator[Any], progress: Progress, before: int = 0) -> Iterator[Any]:
    for count, item in enumerate(items, before + 1):
        if count % PAGE == 0:
            progress(count)
        yield item
