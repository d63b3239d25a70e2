"""The public event feed: every stored domain event as one integrator-facing
item, and the notifications derived from them.

Invariants owned here:
- the item shape ``{position, type, stream, stream_id, customer_id, at,
  actor, data}`` is mapped from each domain event *explicitly* (one entry per
  event class in ``EVENTS``): renaming a field inside an aggregate cannot
  change what integrators receive, and an event class without an entry is
  not published (a test fails until it gets one);
- notifications (``BalanceLow``, ``QuoteAwaitingAcceptance``) are derived
  from one event each, statelessly, and carry that event's position; at one
  position the event's own item comes first (``part`` 0), then its
  notification (``part`` 1), so ``(position, part)`` orders every item;
- the log is read through the application's recorder in store order, up to
  the ``max_notification_id`` taken first (every id up to it is committed or
  rolled back for good: the store serialises its writers), with the type
  filter pushed down to the recorder as topics; gaps are never assumed away;
- nothing is written here, and no rule is decided: the feed copies numbers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.aggregates import Adjustment, CustomerAccount, Invoice, PriceLists, SupportRequest
from ledger.aggregates.account import MOVEMENT_KINDS

#: The balance below which ``BalanceLow`` is raised (``LEDGER_LOW_BALANCE``).
DEFAULT_LOW_BALANCE = 20
#: Notifications read per recorder call, and recorder calls per page at most.
SCAN_BATCH = 500
MAX_SCANS = 20
CUSTOMER_CACHE_SIZE = 10_000

BALANCE_LOW = "BalanceLow"
QUOTE_AWAITING_ACCEPTANCE = "QuoteAwaitingAcceptance"
NOTIFICATION_TYPES: tuple[str, ...] = (BALANCE_LOW, QUOTE_AWAITING_ACCEPTANCE)

#: A cursor into the feed: the last item seen, as ``(position, part)``.
Cursor = tuple[int, int]


@dataclass(frozen=True)
class FeedItem:
    position: int
    type: str
    stream: str
    stream_id: UUID
    customer_id: str
    at: datetime
    actor: str
    data: dict[str, Any]
    part: int = 0

    @property
    def cursor(self) -> Cursor:
        return (self.position, self.part)

    def as_json(self) -> dict[str, Any]:
        """The item as integrators receive it (``part`` is internal)."""
        return {
            "position": self.position,
            "type": self.type,
            "stream": self.stream,
            "stream_id": str(self.stream_id),
            "customer_id": self.customer_id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "data": {k: _plain(v) for k, v in self.data.items()},
        }


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    #: Pass as ``after`` to continue: the last position read (even when no
    #: item there matched the filter).
    next_after: int


@dataclass(frozen=True)
class Published:
    """How one domain event class appears in the feed."""

    type: str
    stream: str
    data: Callable[[Any], dict[str, Any]]


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(value.value, str):  # StrEnum
        return value.value
    return value


A, R, INV, ADJ, PL = CustomerAccount, SupportRequest, Invoice, Adjustment, PriceLists

#: Every published domain event, with the public name and the public fields.
#: Keep this table explicit: it is the contract integrators code against.
EVENTS: Mapping[type, Published] = {
    A.Opened: Published("AccountOpened", "account", lambda e: {"name": e.name}),
    A.CreditsPurchased: Published(
        "CreditsPurchased",
        "account",
        lambda e: {
            "invoice_id": e.invoice_id,
            "amount": e.amount,
            "amount_usd": e.amount_usd,
            "balance_after": e.balance_after,
            "price_list_version": e.price_list_version,
        },
    ),
    A.BalanceAdjusted: Published(
        "BalanceAdjusted",
        "account",
        lambda e: {"amount": e.amount, "reason": e.reason, "balance_after": e.balance_after},
    ),
    A.CreditsCharged: Published(
        "CreditsCharged",
        "account",
        lambda e: {
            "request_id": e.request_id,
            "amount": e.amount,
            "balance_after": e.balance_after,
            "price_list_version": e.price_list_version,
        },
    ),
    A.CreditsRefunded: Published(
        "CreditsRefunded",
        "account",
        lambda e: {
            "request_id": e.request_id,
            "amount": e.amount,
            "reason": e.reason,
            "balance_after": e.balance_after,
            "price_list_version": e.price_list_version,
        },
    ),
    A.UpdateSubscriptionRecorded: Published(
        "SubscriptionRecorded",
        "account",
        lambda e: {"valid_from": e.period.valid_from, "valid_until": e.period.valid_until},
    ),
    R.RequestOpened: Published(
        "RequestOpened",
        "request",
        lambda e: {
            "category": e.category,
            "subject": e.subject,
            "channel": e.channel,
            "from_version": e.from_version,
            "to_version": e.to_version,
            "third_party": e.third_party,
            "price": e.price,
            "price_list_version": e.price_list_version,
        },
    ),
    R.PreQuoteRequested: Published("PreQuoteRequested", "request", lambda e: {"note": e.note}),
    R.RequestQuoted: Published(
        "RequestQuoted",
        "request",
        lambda e: {"work_price": e.work_price, "surcharge": e.surcharge, "price": e.price},
    ),
    R.QuoteAccepted: Published("QuoteAccepted", "request", lambda e: {"price": e.price}),
    R.QuoteDeclined: Published("QuoteDeclined", "request", lambda e: {"reason": e.reason}),
    R.PriceRevised: Published(
        "PriceRevised",
        "request",
        lambda e: {
            "old_price": e.old_price,
            "new_price": e.new_price,
            "reason": e.reason,
            "needs_acceptance": e.needs_acceptance,
        },
    ),
    R.AnswerCharged: Published(
        "AnswerCharged",
        "request",
        lambda e: {"amount": e.amount, "balance_after": e.balance_after},
    ),
    R.RequestReferred: Published("RequestReferred", "request", lambda e: {"reason": e.reason}),
    R.RequestCancelled: Published("RequestCancelled", "request", lambda e: {"reason": e.reason}),
    R.ChargeDisputed: Published("ChargeDisputed", "request", lambda e: {"reason": e.reason}),
    R.ChargeRefunded: Published(
        "ChargeRefunded",
        "request",
        lambda e: {
            "amount": e.amount,
            "refunded_total": e.refunded_total,
            "reason": e.reason,
            "balance_after": e.balance_after,
        },
    ),
    R.DisputeRejected: Published("DisputeRejected", "request", lambda e: {"reason": e.reason}),
    INV.InvoiceIssued: Published(
        "InvoiceIssued",
        "invoice",
        lambda e: {
            "credits": e.credits,
            "amount_usd": e.amount_usd,
            "standard_package": e.standard_package,
            "price_list_version": e.price_list_version,
        },
    ),
    INV.InvoicePaid: Published("InvoicePaid", "invoice", lambda e: {"payment_ref": e.payment_ref}),
    INV.InvoiceVoided: Published("InvoiceVoided", "invoice", lambda e: {"reason": e.reason}),
    # Holds (issue 15): no credits move; ``amount`` is what is (was) held.
    A.CreditsReserved: Published(
        "CreditsReserved",
        "account",
        lambda e: {"request_id": e.request_id, "amount": e.amount, "lapses_at": e.lapses_at},
    ),
    A.CreditsReleased: Published(
        "CreditsReleased",
        "account",
        lambda e: {"request_id": e.request_id, "amount": e.amount, "cause": e.cause},
    ),
    # Four-eyes adjustments (issue 15).
    ADJ.AdjustmentProposed: Published(
        "AdjustmentProposed",
        "adjustment",
        lambda e: {"credits": e.credits, "reason": e.reason},
    ),
    ADJ.AdjustmentApproved: Published(
        "AdjustmentApproved", "adjustment", lambda e: {"balance_after": e.balance_after}
    ),
    ADJ.AdjustmentRejected: Published(
        "AdjustmentRejected", "adjustment", lambda e: {"reason": e.reason}
    ),
    # Price lists (issue 14): the whole list, as ``GET /v1/price-list`` answers it.
    PL.PriceListPublished: Published(
        "PriceListPublished",
        "price_list",
        lambda e: {
            "version": e.price_list_version,
            "effective_from": e.effective_from,
            "packages": [
                {"credits": p["credits"], "amount_usd": _plain(Decimal(p["amount_usd"]))}
                for p in e.packages
            ],
            "categories": e.categories,
            "minimums": e.minimums,
            "store_update": e.store_update,
            "free_categories": e.free_categories,
            "subscription_categories": e.subscription_categories,
        },
    ),
}
#: The events never published: the price lists' stream start carries nothing
#: for integrators (its first ``PriceListPublished`` is in the same append).
UNPUBLISHED: frozenset[type] = frozenset({PL.PriceListsStarted})

EVENT_TYPES: tuple[str, ...] = tuple(p.type for p in EVENTS.values())
#: Every type a feed reader or a webhook may ask for.
FEED_TYPES: tuple[str, ...] = EVENT_TYPES + NOTIFICATION_TYPES

#: The events that move a balance (each carries ``amount`` and ``balance_after``).
MOVEMENTS: tuple[type, ...] = tuple(MOVEMENT_KINDS)
#: The events that may leave a price waiting for the client.
PRICE_OFFERS: tuple[type, ...] = (R.RequestQuoted, R.PriceRevised)
#: The events each notification is derived from.
SOURCES: Mapping[str, tuple[type, ...]] = {
    BALANCE_LOW: MOVEMENTS,
    QUOTE_AWAITING_ACCEPTANCE: PRICE_OFFERS,
}
_CLASS_BY_TYPE = {p.type: cls for cls, p in EVENTS.items()}


def topics_for(types: Iterable[str] | None) -> list[str]:
    """The recorder topics that can yield items of ``types`` (all when ``None``)."""
    wanted = FEED_TYPES if types is None else tuple(types)
    classes: set[type] = set()
    for name in wanted:
        if name in SOURCES:
            classes.update(SOURCES[name])
        else:
            classes.add(_CLASS_BY_TYPE[name])
    return sorted(get_topic(cls) for cls in classes)


def unknown_types(types: Iterable[str]) -> list[str]:
    return sorted(set(types) - set(FEED_TYPES))


def notifications(event: Any, low_balance: int) -> list[tuple[str, dict[str, Any]]]:
    """The notifications one event causes: ``(type, data)`` pairs."""
    if isinstance(event, MOVEMENTS):
        moved: Any = event
        before = moved.balance_after - moved.amount
        if before >= low_balance > moved.balance_after:
            data = {
                "balance": moved.balance_after,
                "previous_balance": before,
                "threshold": low_balance,
            }
            return [(BALANCE_LOW, data)]
    if isinstance(event, R.RequestQuoted):
        return [(QUOTE_AWAITING_ACCEPTANCE, {"price": event.price, "reason": "quoted"})]
    if isinstance(event, R.PriceRevised) and event.needs_acceptance:
        data = {"price": event.new_price, "previous_price": event.old_price, "reason": "raised"}
        return [(QUOTE_AWAITING_ACCEPTANCE, data)]
    return []


@dataclass
class Feed:
    """Reads the event log of one ``Ledger`` as feed items."""

    ledger: Any
    low_balance: int = DEFAULT_LOW_BALANCE
    _customers: OrderedDict[UUID, str] = field(default_factory=OrderedDict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def page(self, after: int, limit: int, types: Sequence[str] | None = None) -> FeedPage:
        """At most ``limit`` items after position ``after`` (a position's
        items are never split across pages, so a page may hold one more)."""
        items, scanned = self.items_after((after, 1_000), limit, types)
        return FeedPage(items, scanned)

    def position(self) -> int:
        return int(self.ledger.recorder.max_notification_id() or 0)

    def items_after(
        self, cursor: Cursor, limit: int, types: Sequence[str] | None = None
    ) -> tuple[list[FeedItem], int]:
        """Items strictly after ``cursor``, in order, and the last position read."""
        wanted = set(FEED_TYPES if types is None else types)
        topics = topics_for(wanted)
        stop = self.position()
        start, scanned = cursor[0], cursor[0]
        found: list[FeedItem] = []
        for _ in range(MAX_SCANS):
            if scanned >= stop:
                break
            notes = self.ledger.recorder.select_notifications(
                start, SCAN_BATCH, stop=stop, topics=topics
            )
            for note in notes:
                if len(found) >= limit and note.id > found[-1].position:
                    return found, found[-1].position
                event = self.ledger.mapper.to_domain_event(note)
                for item in self.items_of(note.id, event):
                    if item.type in wanted and item.cursor > cursor:
                        found.append(item)
            if len(notes) < SCAN_BATCH:
                scanned = stop
                break
            scanned = notes[-1].id
            start = scanned + 1
        if len(found) >= limit:
            return found, found[-1].position
        return found, max(scanned, cursor[0])

    def items_of(self, position: int, event: Any) -> list[FeedItem]:
        """The event's own item and its notifications (none for an
        unpublished event, such as a command receipt)."""
        published = EVENTS.get(type(event))
        if published is None:
            return []
        stream_id: UUID = event.originator_id
        base = {
            "position": position,
            "stream": published.stream,
            "stream_id": stream_id,
            "customer_id": self.customer_of(stream_id, event),
            "at": event.timestamp,
            "actor": str(event.__dict__.get("actor", "")),
        }
        items = [FeedItem(type=published.type, data=published.data(event), **base)]
        for part, (kind, data) in enumerate(notifications(event, self.low_balance), start=1):
            if published.stream == "request":
                data = {"request_id": stream_id, **data}
            items.append(FeedItem(type=kind, data=data, part=part, **base))
        return items

    def customer_of(self, stream_id: UUID, event: Any) -> str:
        """The customer of a stream: every stream's first event names it,
        and it never changes, so it is cached ("" for the price lists'
        stream, which belongs to no customer)."""
        customer = event.__dict__.get("customer_id")
        if customer is None:
            with self._guard:
                customer = self._customers.get(stream_id)
        if customer is None:
            first = list(self.ledger.events.get(stream_id, lte=1, limit=1))
            customer = str(getattr(first[0], "customer_id", "")) if first else ""
        with self._guard:
            self._customers[stream_id] = str(customer)
            self._customers.move_to_end(stream_id)
            if len(self._customers) > CUSTOMER_CACHE_SIZE:
                self._customers.popitem(last=False)
        return str(customer)
