"""Schemas of the event feed and the webhooks (``shared/API-1.1.md``, "The
event feed", "Webhooks"), apart from ``api.schemas``.

``FeedItemOut`` is the one public shape of a feed item, documented with an
example per type: integrators code against it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ledger.aggregates import PRICE_LISTS_ID
from ledger.integrations.feed import FEED_TYPES, FeedItem
from ledger.integrations.webhooks import Attempt, Webhook

_ACCOUNT = "3f8a1c52-6d0e-5b7a-9c41-2e5f7a8b9c10"
_REQUEST = "9b2d4e6f-1a3c-4e5b-8d7f-0a1b2c3d4e5f"
_INVOICE = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
_ADJUSTMENT = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"
_STREAMS = {
    "account": _ACCOUNT,
    "request": _REQUEST,
    "invoice": _INVOICE,
    "adjustment": _ADJUSTMENT,
    "price_list": str(PRICE_LISTS_ID),
}
_R = {"request_id": _REQUEST}

#: One example per type: (stream, actor, data).
EXAMPLE_DATA: dict[str, tuple[str, str, dict[str, Any]]] = {
    "AccountOpened": ("account", "helpdesk:ana", {"name": "Acme Store"}),
    "CreditsReserved": (
        "account",
        "specialist:bo",
        {**_R, "amount": 25, "lapses_at": "2026-12-08T15:00:00+04:00"},
    ),
    "CreditsReleased": ("account", "specialist:bo", {**_R, "amount": 25, "cause": "charged"}),
    "AdjustmentProposed": ("adjustment", "finance:cy", {"credits": 150, "reason": "goodwill"}),
    "AdjustmentApproved": ("adjustment", "finance:dee", {"balance_after": 230}),
    "AdjustmentRejected": ("adjustment", "finance:dee", {"reason": "wrong account"}),
    "CreditsPurchased": (
        "account",
        "finance:cy",
        {
            "invoice_id": _INVOICE,
            "amount": 80,
            "amount_usd": "90.00",
            "balance_after": 80,
            "price_list_version": 1,
        },
    ),
    "BalanceAdjusted": (
        "account",
        "finance:cy",
        {"amount": 5, "reason": "goodwill", "balance_after": 85},
    ),
    "CreditsCharged": (
        "account",
        "specialist:bo",
        {**_R, "amount": -25, "balance_after": 60, "price_list_version": 1},
    ),
    "CreditsRefunded": (
        "account",
        "specialist:bo",
        {
            **_R,
            "amount": 10,
            "reason": "partly solved",
            "balance_after": 70,
            "price_list_version": 1,
        },
    ),
    "SubscriptionRecorded": (
        "account",
        "finance:cy",
        {"valid_from": "2026-01-01", "valid_until": "2027-01-01"},
    ),
    "RequestOpened": (
        "request",
        "helpdesk:ana",
        {
            "category": "store_update",
            "subject": "update to 4.4.4",
            "channel": "helpdesk",
            "from_version": "4.4.1",
            "to_version": "4.4.4",
            "third_party": False,
            "price": 25,
            "price_list_version": 1,
        },
    ),
    "PreQuoteRequested": ("request", "helpdesk:ana", {"note": "how much?"}),
    "RequestQuoted": (
        "request",
        "specialist:bo",
        {"work_price": 25, "surcharge": 5, "price": 30},
    ),
    "QuoteAccepted": ("request", "helpdesk:ana", {"price": 30}),
    "QuoteDeclined": ("request", "helpdesk:ana", {"reason": "too dear"}),
    "PriceRevised": (
        "request",
        "specialist:bo",
        {
            "old_price": 30,
            "new_price": 40,
            "reason": "third-party add-on",
            "needs_acceptance": True,
        },
    ),
    "AnswerCharged": ("request", "specialist:bo", {"amount": -25, "balance_after": 60}),
    "RequestReferred": ("request", "specialist:bo", {"reason": "custom development"}),
    "RequestCancelled": ("request", "helpdesk:ana", {"reason": "by mistake"}),
    "ChargeDisputed": ("request", "helpdesk:ana", {"reason": "not solved"}),
    "ChargeRefunded": (
        "request",
        "specialist:bo",
        {"amount": 10, "refunded_total": 10, "reason": "partly solved", "balance_after": 70},
    ),
    "DisputeRejected": ("request", "specialist:bo", {"reason": "as agreed"}),
    "InvoiceIssued": (
        "invoice",
        "finance:cy",
        {"credits": 80, "amount_usd": "90.00", "standard_package": True, "price_list_version": 1},
    ),
    "PriceListPublished": (
        "price_list",
        "admin:root",
        {
            "version": 2,
            "effective_from": "2026-03-09T00:00:00+04:00",
            "packages": [
                {"credits": 80, "amount_usd": "95.00"},
                {"credits": 160, "amount_usd": "180.00"},
            ],
            "categories": {"installation": 20, "configuration": 12, "investigation": None},
            "minimums": {"complex_modification": 30},
            "store_update": {"base": 25, "included_steps": 2, "per_step": 10},
            "free_categories": ["bug_fix"],
            "subscription_categories": ["store_update", "theme_update"],
        },
    ),
    "InvoicePaid": ("invoice", "finance:cy", {"payment_ref": "bank-2026-0001"}),
    "InvoiceVoided": ("invoice", "finance:cy", {"reason": "sent twice"}),
    "BalanceLow": (
        "account",
        "specialist:bo",
        {"balance": 15, "previous_balance": 40, "threshold": 20},
    ),
    "QuoteAwaitingAcceptance": (
        "request",
        "specialist:bo",
        {**_R, "price": 40, "previous_price": 30, "reason": "raised"},
    ),
}


def _example(position: int, type_: str) -> dict[str, Any]:
    stream, actor, data = EXAMPLE_DATA[type_]
    return {
        "position": position,
        "type": type_,
        "stream": stream,
        "stream_id": _STREAMS[stream],
        "customer_id": "" if stream == "price_list" else "C-1001",
        "at": "2026-03-02T10:15:00+00:00",
        "actor": actor,
        "data": data,
    }


FEED_EXAMPLES = [_example(i, t) for i, t in enumerate(FEED_TYPES, start=101)]


class FeedItemOut(BaseModel):
    """One stored event (or a notification derived from one) as integrators
    see it. ``data`` holds the type's own fields (see the examples, one per
    type); notifications carry the position of the event that caused them."""

    model_config = ConfigDict(json_schema_extra={"examples": FEED_EXAMPLES})  # type: ignore[dict-item]

    position: int = Field(description="the global position of the (causing) event")
    type: str = Field(description=f"one of {', '.join(FEED_TYPES)}")
    stream: Literal["account", "request", "invoice", "adjustment", "price_list"]
    stream_id: UUID
    customer_id: str
    at: datetime
    actor: str = Field(description="role:key-name of who caused it")
    data: dict[str, Any]


class FeedPageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": FEED_EXAMPLES[:2], "next_after": 102}]}  # type: ignore[dict-item]
    )

    items: list[FeedItemOut]
    next_after: int = Field(
        description="pass as ?after= for the next page: the last position read, "
        "even when nothing there matched the type filter"
    )


def from_item(item: FeedItem) -> FeedItemOut:
    return FeedItemOut.model_validate(item.as_json())


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://helpdesk.example/ledger-hook",
                    "types": ["BalanceLow", "QuoteAwaitingAcceptance"],
                }
            ]
        },
    )

    url: str = Field(max_length=2000, examples=["https://helpdesk.example/ledger-hook"])
    types: list[str] = Field(max_length=len(FEED_TYPES) * 2, examples=[["BalanceLow"]])


_WEBHOOK_EXAMPLE: dict[str, Any] = {
    "webhook_id": "7d9a4c2e-1f3b-4a5c-8e6d-0b1a2c3d4e5f",
    "url": "https://helpdesk.example/ledger-hook",
    "types": ["BalanceLow", "QuoteAwaitingAcceptance"],
    "status": "active",
    "created_at": "2026-03-01T09:00:00+00:00",
    "created_by": "admin:di",
    "disabled_at": None,
    "delivered_up_to": 102,
    "attempts": 0,
    "next_attempt_at": None,
    "failing_since": None,
    "last_error": None,
}


class WebhookOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_WEBHOOK_EXAMPLE]})

    webhook_id: UUID
    url: str
    types: list[str]
    status: Literal["active", "disabled", "failed"]
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    delivered_up_to: int = Field(description="the position of the last item delivered")
    attempts: int = Field(description="failed attempts at the item now due")
    next_attempt_at: datetime | None
    failing_since: datetime | None
    last_error: str | None


class WebhookCreatedOut(WebhookOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_WEBHOOK_EXAMPLE, "secret": "whsec_3q2+7w8Kx1nN0pRrT5vYbA=="}]
        }
    )

    secret: str = Field(description="shown once: keep it to verify Ledger-Signature")


class WebhookListOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_WEBHOOK_EXAMPLE], "next_cursor": None}]}
    )

    items: list[WebhookOut]
    next_cursor: str | None = None


class DeliveryOut(BaseModel):
    seq: int
    position: int
    type: str
    at: datetime
    outcome: Literal["delivered", "retrying", "given_up"]
    status_code: int | None
    error: str | None
    response_body: str | None = Field(description="at most 1 KiB of the answer")
    duration_ms: int
    next_retry_at: datetime | None


class DeliveryListOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "seq": 1,
                            "position": 101,
                            "type": "BalanceLow",
                            "at": "2026-03-02T10:15:01+00:00",
                            "outcome": "delivered",
                            "status_code": 204,
                            "error": None,
                            "response_body": "",
                            "duration_ms": 38,
                            "next_retry_at": None,
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[DeliveryOut]
    next_cursor: str | None


def from_webhook(webhook: Webhook) -> dict[str, Any]:
    return {
        "webhook_id": webhook.webhook_id,
        "url": webhook.url,
        "types": list(webhook.types),
        "status": webhook.status,
        "created_at": webhook.created_at,
        "created_by": webhook.created_by,
        "disabled_at": webhook.disabled_at,
        "delivered_up_to": webhook.position,
        "attempts": webhook.attempts,
        "next_attempt_at": webhook.next_attempt_at,
        "failing_since": webhook.failing_since,
        "last_error": webhook.last_error,
    }


def from_attempt(attempt: Attempt) -> DeliveryOut:
    return DeliveryOut(
        seq=attempt.seq,
        position=attempt.position,
        type=attempt.type,
        at=attempt.at,
        outcome=attempt.outcome,  # type: ignore[arg-type]
        status_code=attempt.status_code,
        error=attempt.error,
        response_body=attempt.response_body,
        duration_ms=attempt.duration_ms,
        next_retry_at=attempt.next_retry_at,
    )
