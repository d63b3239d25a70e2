"""Plain values that queries return: never an aggregate, never a live object.

``plain()`` turns a value stored in an event (UUID, Decimal, date, enum,
``Actor``, ...) into what JSON and CSV can carry: strings, ints, bools.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from ledger.aggregates import Adjustment, CustomerAccount, Invoice, SupportRequest
from ledger.values import Actor, SubscriptionPeriod

_EVENT_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)


def plain(value: Any) -> Any:
    """A JSON-ready copy of a stored value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Actor):
        return str(value)
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class AccountView:
    customer_id: str
    name: str
    balance: int
    purchased: int
    charged: int
    refunded: int
    adjusted: int
    update_subscription: SubscriptionPeriod | None
    subscription_active: bool
    version: int
    #: The balance less the credits held for requests being worked on.
    available: int


#: The audit trail's columns, in the order of its files (the movements CSV
#: and ``ledger export-audit``): a ``MovementRow`` without its account.
TRAIL_COLUMNS = (
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
    "price_list_version",
    "held",
)


@dataclass(frozen=True)
class RequestState:
    """A request's state: what the helpdesk sees of it, wherever it is read from."""

    request_id: UUID
    customer_id: str
    category: str
    subject: str
    status: str
    price: int | None
    agreed_price: int | None
    charged: int | None
    refunded: int
    revisions: int
    from_version: str | None
    to_version: str | None
    third_party: bool
    opened_at: datetime
    closed_at: datetime | None
    #: The price list the request is priced by (the one in force when it was opened).
    price_list_version: int


@dataclass(frozen=True)
class RequestView(RequestState):
    """A request replayed from the event store, at its aggregate version."""

    version: int


@dataclass(frozen=True)
class InvoiceView:
    invoice_id: UUID
    customer_id: str
    credits: int
    amount_usd: Decimal
    status: str
    payment_ref: str | None
    issued_at: datetime
    price_list_version: int | None = None


@dataclass(frozen=True)
class HistoryEntry:
    position: int | None
    version: int
    type: str
    at: datetime
    actor: str
    data: dict[str, Any]
    state: RequestView


@dataclass(frozen=True)
class SupportHours:
    open: bool
    now: datetime
    next_open: datetime | None
    time_zone: str
    hours: str


def account_view(account: CustomerAccount, today: date, at: datetime) -> AccountView:
    """The account's view; ``available`` counts the holds live at ``at``."""
    return AccountView(
        customer_id=account.customer_id,
        name=account.name,
        balance=account.balance,
        purchased=account.purchased,
        charged=account.charged,
        refunded=account.refunded,
        adjusted=account.adjusted,
        update_subscription=account.current_subscription(today),
        subscription_active=account.has_subscription_on(today),
        version=account.version,
        available=account.available(at),
    )


def request_view(request: SupportRequest) -> RequestView:
    return RequestView(
        request_id=request.id,
        customer_id=request.customer_id,
        category=request.category.value,
        subject=request.subject,
        status=request.status.value,
        price=request.price,
        agreed_price=request.agreed_price,
        charged=request.charged,
        refunded=request.refunded,
        revisions=request.revisions,
        from_version=request.from_version,
        to_version=request.to_version,
        third_party=request.third_party,
        opened_at=request.created_on,
        closed_at=request.closed_at,
        version=request.version,
        price_list_version=request.price_list_version,
    )


def invoice_view(invoice: Invoice) -> InvoiceView:
    return InvoiceView(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        credits=invoice.credits,
        amount_usd=invoice.amount_usd,
        status=invoice.status.value,
        payment_ref=invoice.payment_ref,
        issued_at=invoice.created_on,
        price_list_version=invoice.price_list_version,
    )


def event_data(event: DomainEventProtocol[UUID]) -> dict[str, Any]:
    """An event's own fields, JSON-ready, without the envelope."""
    return {
        name: plain(value)
        for name, value in event.__dict__.items()
        if name not in _EVENT_ENVELOPE and name != "actor"
    }


def history(
    events: Iterable[DomainEventProtocol[UUID]], positions: Mapping[int, int]
) -> Iterator[HistoryEntry]:
    """Replay a request event by event, yielding its state after each."""
    request: Any = None
    for event in events:
        request = event.mutate(request)  # type: ignore[attr-defined]
        yield HistoryEntry(
            position=positions.get(event.originator_version),
            version=event.originator_version,
            type=type(event).__name__,
            at=event.timestamp,  # type: ignore[attr-defined]
            actor=str(event.__dict__.get("actor", "")),
            data=event_data(event),
            state=request_view(request),
        )


@dataclass(frozen=True)
class AdjustmentView:
    """A large adjustment and its decision, if any (four eyes)."""

    adjustment_id: UUID
    customer_id: str
    credits: int
    reason: str
    status: str
    proposed_by: str
    decided_by: str | None


def adjustment_view(adjustment: Adjustment) -> AdjustmentView:
    return AdjustmentView(
        adjustment_id=adjustment.id,
        customer_id=adjustment.customer_id,
        credits=adjustment.credits,
        reason=adjustment.reason,
        status=adjustment.status.value,
        proposed_by=str(adjustment.proposed_by),
        decided_by=None if adjustment.decided_by is None else str(adjustment.decided_by),
    )
