"""What a command returns: plain values, each named for the command it
answers (``ChargeResult``), or for the change several commands share
(``RequestChangeResult``, ``InvoiceChangeResult``).

A receipt stores its result's import path (its topic) and fields, and an
idempotent retry rebuilds the result from them. Receipts stored before these
classes moved here name them ``ledger.application:<OldName>``: the aliases
below, registered when this module is imported (before any receipt can be
read), keep those receipts loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.utils import register_topic


@dataclass(frozen=True)
class OpenAccountResult:
    customer_id: str
    name: str
    balance: int
    position: int = 0


@dataclass(frozen=True)
class IssueInvoiceResult:
    invoice_id: UUID
    customer_id: str
    credits: int
    amount_usd: Decimal
    status: str
    position: int = 0


@dataclass(frozen=True)
class InvoiceChangeResult:
    """The answer to a payment or a void."""

    invoice_id: UUID
    customer_id: str
    status: str
    balance: int
    position: int = 0


@dataclass(frozen=True)
class StartResult:
    """The answer to a start: the hold on the account."""

    request_id: UUID
    customer_id: str
    held: int
    lapses_at: datetime
    balance: int
    available: int
    position: int = 0


@dataclass(frozen=True)
class AdjustBalanceResult:
    """Applied at once (``status`` "applied"), or proposed for a second
    finance key's approval (``status`` "proposed", with its ``adjustment_id``)."""

    customer_id: str
    balance: int
    position: int = 0
    status: str = "applied"
    adjustment_id: UUID | None = None


@dataclass(frozen=True)
class AdjustmentDecisionResult:
    """The answer to an approval (the balance after it) or a rejection."""

    adjustment_id: UUID
    customer_id: str
    status: str
    balance: int
    position: int = 0


@dataclass(frozen=True)
class RecordSubscriptionResult:
    customer_id: str
    valid_from: date
    valid_until: date
    position: int = 0


@dataclass(frozen=True)
class RequestChangeResult:
    """The answer to every request command but the quote, the charge and the refund."""

    request_id: UUID
    status: str
    price: int | None
    position: int = 0


@dataclass(frozen=True)
class QuoteResult:
    request_id: UUID
    status: str
    work_price: int
    surcharge: int
    price: int
    position: int = 0


@dataclass(frozen=True)
class ChargeResult:
    request_id: UUID
    charged: int
    balance: int
    position: int = 0


@dataclass(frozen=True)
class RefundResult:
    request_id: UUID
    refunded: int
    balance: int
    position: int = 0


@dataclass(frozen=True)
class PublishPriceListResult:
    version: int
    effective_from: datetime
    position: int = 0


# The topics under which receipts stored before the move name their results.
OLD_TOPICS: dict[str, type] = {
    "ledger.application:AccountOpened": OpenAccountResult,
    "ledger.application:InvoiceIssued": IssueInvoiceResult,
    "ledger.application:InvoiceSettled": InvoiceChangeResult,
    "ledger.application:BalanceChanged": AdjustBalanceResult,
    "ledger.application:SubscriptionRecorded": RecordSubscriptionResult,
    "ledger.application:RequestChanged": RequestChangeResult,
    "ledger.application:Quoted": QuoteResult,
    "ledger.application:Charged": ChargeResult,
    "ledger.application:Refunded": RefundResult,
}

for _topic, _cls in OLD_TOPICS.items():
    register_topic(_topic, _cls)
