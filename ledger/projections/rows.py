"""The rows the read models answer with: plain frozen values, never a live
object, and the error a read raises when a read model is behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ledger.errors import StoreUnavailableError
from ledger.values import Hold, SubscriptionPeriod
from ledger.views import RequestState


class ReadModelBehindError(StoreUnavailableError):
    """A read model has not processed ``position`` within the wait."""

    title = "Read model behind"
    read_model: str
    position: int
    processed: int

    def __init__(self, read_model: str, position: int, processed: int) -> None:
        super().__init__(
            f"the {read_model} read model has processed events up to {processed}, "
            f"not yet up to {position}",
            read_model=read_model,
            position=position,
            processed=processed,
        )


@dataclass(frozen=True)
class BalanceRow:
    customer_id: str
    name: str
    balance: int
    purchased: int
    charged: int
    refunded: int
    adjusted: int
    subscriptions: tuple[SubscriptionPeriod, ...]
    position: int
    #: The holds not yet released (some may have lapsed: see ``available``).
    holds: tuple[Hold, ...] = ()


@dataclass(frozen=True)
class MovementRow:
    position: int
    customer_id: str
    kind: str
    amount: int
    balance_after: int
    request_id: UUID | None
    invoice_id: UUID | None
    actor: str
    reason: str | None
    at: datetime
    #: The price list of the request charged or refunded, of the package bought.
    price_list_version: int | None = None
    #: The credits held or released, on a hold's row (its ``amount`` is 0).
    held: int | None = None


@dataclass(frozen=True)
class RequestRow(RequestState):
    """A request as the requests read model holds it, with the position of
    its last event and of its opening."""

    position: int
    opened_position: int


@dataclass(frozen=True)
class InvoiceRow:
    """An invoice as the invoices read model holds it."""

    invoice_id: UUID
    customer_id: str
    credits: int
    amount_usd: Decimal
    status: str
    payment_ref: str | None
    issued_at: datetime
    issued_position: int
    position: int
    #: The price list of a standard package; ``None`` for a custom one.
    price_list_version: int | None = None


@dataclass(frozen=True)
class SummaryRow:
    credits_sold: int
    usd_received: Decimal
    credits_charged: int
    credits_refunded: int
    credits_adjusted: int
    credits_outstanding: int
    liability_usd: Decimal
    position: int
