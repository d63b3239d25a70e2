"""Request and response schemas of the HTTP contract (``shared/API.md``), apart
from the domain.

Invariants owned here:
- bodies are strict: unknown fields, ``"5"`` for an integer and ``true`` for
  an integer are refused (422 naming the field);
- integers in input are at most 1,000,000,000 in absolute value;
- text is free of control characters and lone surrogates (the stores cannot
  carry them), so odd input is a 422, never a 500;
- USD amounts are strings with two decimals, in and out; times carry an offset.

Every response is built one way: ``Schema.model_validate(value)``, from the
value the application or a read model returned. ``Out`` reads the value's
attributes (``from_attributes``) and the field types convert (``Decimal``
dollars to text, periods and nested values to their schemas), so a router
never lists fields. The one answer that joins a value with something else,
an account (its totals and the subscription the domain picks for a day),
says how in its own constructors (``AccountOut.now``, ``AccountOut.at``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ledger.aggregates.account import available, current_subscription, has_subscription_on
from ledger.projections import BalanceRow
from ledger.views import AccountView

MAX_INT = 1_000_000_000
MAX_TEXT = 2000
_CENT = Decimal("0.01")


def _clean_text(value: str) -> str:
    for c in value:
        code = ord(c)
        if (code < 32 and c not in "\t\n\r") or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            raise ValueError("must not contain control characters")
    return value


def _iso_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date string such as 2026-01-01")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_text), Field(strict=False)]
Int = Annotated[int, Field(strict=True, ge=-MAX_INT, le=MAX_INT)]
Credits = Annotated[int, Field(strict=True, ge=-MAX_INT, le=MAX_INT)]
Text = Annotated[str, Field(strict=True, max_length=MAX_TEXT), AfterValidator(_clean_text)]
ShortText = Annotated[str, Field(strict=True, max_length=200), AfterValidator(_clean_text)]
UsdIn = Annotated[
    str,
    Field(
        strict=True,
        pattern=r"^[0-9]{1,10}\.[0-9]{2}$",
        description='US dollars, a string with two decimals, e.g. "90.00"',
        examples=["90.00"],
    ),
]


def usd_text(amount: Decimal) -> str:
    return str(amount.quantize(_CENT))


def _usd_out(value: object) -> object:
    return usd_text(value) if isinstance(value, Decimal) else value


UsdOut = Annotated[
    str,
    BeforeValidator(_usd_out),
    Field(description='US dollars, two decimals, e.g. "90.00"', examples=["90.00"]),
]


class Body(BaseModel):
    """Base of every request body: strict, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": list(examples)})


# --- request bodies -----------------------------------------------------------------


class OpenAccountIn(Body):
    model_config = _examples({"customer_id": "C-1001", "name": "Acme Store"})
    customer_id: Annotated[ShortText, Field(min_length=1, description="The helpdesk's own id")]
    name: Annotated[Text, Field(min_length=1)]


class IssueInvoiceIn(Body):
    model_config = _examples({"package": 80}, {"credits": 50, "amount_usd": "60.00"})
    package: Int | None = Field(None, description="80, 160 or 320 credits")
    credits: Credits | None = Field(None, description="custom package: credits")
    amount_usd: UsdIn | None = None


class PayInvoiceIn(Body):
    model_config = _examples({"payment_ref": "bank-2026-0042"})
    payment_ref: Annotated[Text, Field(min_length=1)]


class ReasonIn(Body):
    model_config = _examples({"reason": "issued twice"})
    reason: Annotated[Text, Field(min_length=1)]


class OptionalReasonIn(Body):
    model_config = _examples({"reason": "the client solved it"}, {})
    reason: Text | None = None


class NoteIn(Body):
    model_config = _examples({"note": "client wants the price first"}, {})
    note: Text | None = None


class SubscriptionIn(Body):
    model_config = _examples({"valid_from": "2026-01-01", "valid_until": "2027-01-01"})
    valid_from: IsoDate
    valid_until: IsoDate


class AdjustmentIn(Body):
    model_config = _examples({"credits": 10, "reason": "goodwill after an outage"})
    credits: Credits = Field(description="signed, not 0")
    reason: Annotated[Text, Field(min_length=1)]


class OpenRequestIn(Body):
    model_config = _examples(
        {
            "customer_id": "C-1001",
            "category": "store_update",
            "channel": "helpdesk",
            "subject": "Update to 4.4.4",
            "from_version": "4.4.1",
            "to_version": "4.4.4",
        },
        {
            "customer_id": "C-1001",
            "category": "configuration",
            "channel": "helpdesk",
            "subject": "Shipping rates",
        },
    )
    customer_id: Annotated[ShortText, Field(min_length=1)]
    category: ShortText
    channel: ShortText = Field(description='must be "helpdesk"')
    subject: Annotated[Text, Field(min_length=1)]
    from_version: ShortText | None = None
    to_version: ShortText | None = None
    third_party: Annotated[bool, Field(strict=True)] = False


class QuoteIn(Body):
    model_config = _examples({"price": 30, "surcharge": 5})
    price: Credits = Field(description="the price of the work")
    surcharge: Credits = Field(0, description="for the time spent pricing")


class RevisePriceIn(Body):
    model_config = _examples({"price": 40, "reason": "third-party add-on involved"})
    price: Credits
    reason: Annotated[Text, Field(min_length=1)]


class RefundIn(Body):
    model_config = _examples({"credits": 25, "reason": "the update did not work"})
    credits: Credits
    reason: Annotated[Text, Field(min_length=1)]


# --- responses ----------------------------------------------------------------------


_EXAMPLE_DIGEST = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"


def _out_examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(
        extra="forbid", from_attributes=True, json_schema_extra={"examples": list(examples)}
    )


class Out(BaseModel):
    """Base of every response: built with ``model_validate`` from a value's attributes."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class Period(Out):
    valid_from: date
    valid_until: date


class AccountOpenedOut(Out):
    model_config = _out_examples(
        {"customer_id": "C-1001", "name": "Acme Store", "balance": 0, "position": 1}
    )
    customer_id: str
    name: str
    balance: int
    position: int


class AccountOut(Out):
    model_config = _out_examples(
        {
            "customer_id": "C-1001",
            "name": "Acme Store",
            "balance": 55,
            "available": 55,
            "purchased": 80,
            "charged": 25,
            "refunded": 0,
            "adjusted": 0,
            "update_subscription": {"valid_from": "2026-01-01", "valid_until": "2027-01-01"},
            "subscription_active": True,
            "as_of": None,
            "position": 7,
        }
    )
    customer_id: str
    name: str
    balance: int
    available: int = Field(description="the balance less the credits held for requests at work")
    purchased: int
    charged: int
    refunded: int
    adjusted: int
    update_subscription: Period | None
    subscription_active: bool
    as_of: datetime | None = Field(None, description="set for ?as_of reads")
    position: int | None = Field(None, description="the read model's position")

    @classmethod
    def now(cls, row: BalanceRow, today: date, at: datetime) -> AccountOut:
        """From the balances read model, with the subscription the domain
        picks for ``today`` and the credits available at ``at``."""
        return cls.model_validate(
            {
                **_values(row, but="subscriptions", also="holds"),
                "available": available(row.balance, row.holds, at),
                "update_subscription": current_subscription(row.subscriptions, today),
                "subscription_active": has_subscription_on(row.subscriptions, today),
            }
        )

    @classmethod
    def at(cls, view: AccountView, moment: datetime) -> AccountOut:
        """Replayed from the event store as it was at ``moment`` (``?as_of``)."""
        return cls.model_validate({**_values(view, but="version"), "as_of": moment})


def _values(value: Any, *, but: str, also: str = "") -> dict[str, Any]:
    """A dataclass value's fields but one (or two), by name."""
    return {f.name: getattr(value, f.name) for f in fields(value) if f.name not in (but, also)}


class InvoiceOut(Out):
    model_config = _out_examples(
        {
            "invoice_id": "0e7c1a52-3b7d-4e8f-a4c6-9a1b2c3d4e5f",
            "customer_id": "C-1001",
            "credits": 80,
            "amount_usd": "90.00",
            "status": "issued",
            "position": 2,
        }
    )
    invoice_id: UUID
    customer_id: str
    credits: int
    amount_usd: UsdOut
    status: str
    position: int


class InvoiceSettledOut(Out):
    model_config = _out_examples(
        {
            "invoice_id": "0e7c1a52-3b7d-4e8f-a4c6-9a1b2c3d4e5f",
            "customer_id": "C-1001",
            "status": "paid",
            "balance": 80,
            "position": 4,
        }
    )
    invoice_id: UUID
    customer_id: str
    status: str
    balance: int
    position: int


class InvoiceViewOut(Out):
    model_config = _out_examples(
        {
            "invoice_id": "0e7c1a52-3b7d-4e8f-a4c6-9a1b2c3d4e5f",
            "customer_id": "C-1001",
            "credits": 80,
            "amount_usd": "90.00",
            "status": "paid",
            "payment_ref": "bank-2026-0042",
            "issued_at": "2026-03-02T10:15:00Z",
            "price_list_version": 1,
        }
    )
    invoice_id: UUID
    customer_id: str
    credits: int
    amount_usd: UsdOut
    status: str
    payment_ref: str | None
    issued_at: datetime
    price_list_version: int | None = Field(
        description="the price list that listed a standard package; null for a custom one"
    )


class BalanceOut(Out):
    model_config = _out_examples({"customer_id": "C-1001", "balance": 90, "position": 9})
    customer_id: str
    balance: int
    position: int


class AdjustmentProposedOut(Out):
    """202: the adjustment exceeds the limit and awaits another finance key."""

    model_config = _out_examples(
        {
            "adjustment_id": "00000000-0000-4000-8000-0000000000a1",
            "status": "proposed",
            "position": 12,
        }
    )

    adjustment_id: UUID
    status: Literal["proposed"]
    position: int


class AdjustmentDecidedOut(Out):
    model_config = _out_examples(
        {
            "adjustment_id": "00000000-0000-4000-8000-0000000000a1",
            "customer_id": "C-1001",
            "status": "approved",
            "balance": 255,
            "position": 13,
        }
    )
    adjustment_id: UUID
    customer_id: str
    status: str
    balance: int
    position: int


class AdjustmentOut(Out):
    adjustment_id: UUID
    customer_id: str
    credits: int
    reason: str
    status: str
    proposed_by: str
    decided_by: str | None


class AdjustmentsOut(Out):
    model_config = _out_examples(
        {
            "adjustments": [
                {
                    "adjustment_id": "00000000-0000-4000-8000-0000000000a1",
                    "customer_id": "C-1001",
                    "credits": 200,
                    "reason": "goodwill after the outage",
                    "status": "proposed",
                    "proposed_by": "finance:cy",
                    "decided_by": None,
                }
            ]
        }
    )
    adjustments: list[AdjustmentOut]


class SubscriptionOut(Out):
    model_config = _out_examples(
        {
            "customer_id": "C-1001",
            "valid_from": "2026-01-01",
            "valid_until": "2027-01-01",
            "position": 5,
        }
    )
    customer_id: str
    valid_from: date
    valid_until: date
    position: int


class RequestChangedOut(Out):
    model_config = _out_examples(
        {
            "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
            "status": "open",
            "price": 25,
            "position": 6,
        }
    )
    request_id: UUID
    status: str
    price: int | None
    position: int


class QuotedOut(Out):
    model_config = _out_examples(
        {
            "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
            "status": "quoted",
            "work_price": 30,
            "surcharge": 5,
            "price": 35,
            "position": 8,
        }
    )
    request_id: UUID
    status: str
    work_price: int
    surcharge: int
    price: int = Field(description="work price + surcharge: what will be charged")
    position: int


class StartedOut(Out):
    model_config = _out_examples(
        {
            "request_id": "00000000-0000-4000-8000-0000000000b2",
            "customer_id": "C-1001",
            "held": 25,
            "lapses_at": "2026-12-08T15:00:00+04:00",
            "balance": 80,
            "available": 55,
            "position": 11,
        }
    )
    request_id: UUID
    customer_id: str
    held: int = Field(description="the credits held for the request")
    lapses_at: datetime
    balance: int
    available: int
    position: int


class ChargedOut(Out):
    model_config = _out_examples(
        {
            "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
            "charged": 25,
            "balance": 55,
            "position": 7,
        }
    )
    request_id: UUID
    charged: int
    balance: int
    position: int


class RefundedOut(Out):
    model_config = _out_examples(
        {
            "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
            "refunded": 25,
            "balance": 80,
            "position": 11,
        }
    )
    request_id: UUID
    refunded: int = Field(description="credits refunded on this request in total")
    balance: int
    position: int


class RequestState(Out):
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
    price_list_version: int = Field(
        description="the price list the request is priced by: the one in force when it was "
        "opened (GET /v1/price-list?at=opened_at)"
    )


class RequestOut(RequestState):
    model_config = _out_examples(
        {
            "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
            "customer_id": "C-1001",
            "category": "store_update",
            "subject": "Update to 4.4.4",
            "status": "charged",
            "price": 25,
            "agreed_price": 25,
            "charged": 25,
            "refunded": 0,
            "revisions": 0,
            "from_version": "4.4.1",
            "to_version": "4.4.4",
            "third_party": False,
            "opened_at": "2026-03-02T10:20:00Z",
            "closed_at": "2026-03-02T11:05:00Z",
            "price_list_version": 1,
            "position": 7,
        }
    )
    position: int = Field(description="the read model's position")


class HistoryStateOut(RequestState):
    """The request's state after one event of its history."""


class HistoryEventOut(Out):
    position: int | None
    version: int
    type: str
    at: datetime
    actor: str
    data: dict[str, Any]
    state: HistoryStateOut


class HistoryOut(Out):
    model_config = _out_examples(
        {
            "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
            "events": [
                {
                    "position": 6,
                    "version": 1,
                    "type": "RequestOpened",
                    "at": "2026-03-02T10:20:00Z",
                    "actor": "helpdesk:ana",
                    "data": {"category": "store_update", "subject": "Update to 4.4.4"},
                    "state": {
                        "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
                        "customer_id": "C-1001",
                        "category": "store_update",
                        "subject": "Update to 4.4.4",
                        "status": "open",
                        "price": 25,
                        "agreed_price": None,
                        "charged": None,
                        "refunded": 0,
                        "revisions": 0,
                        "from_version": "4.4.1",
                        "to_version": "4.4.4",
                        "third_party": False,
                        "opened_at": "2026-03-02T10:20:00Z",
                        "closed_at": None,
                        "price_list_version": 1,
                    },
                }
            ],
        }
    )
    request_id: UUID
    events: list[HistoryEventOut]


class MovementOut(Out):
    position: int
    at: datetime
    customer_id: str
    kind: str = Field(
        description="purchase, charge, refund, adjustment; reservation and release for holds"
    )
    amount: int = Field(description="the signed credits moved (0 for a hold)")
    balance_after: int
    request_id: UUID | None = None
    invoice_id: UUID | None = None
    actor: str
    reason: str | None = None
    price_list_version: int | None = Field(
        default=None,
        description="the price list of the request charged or refunded, or of the package "
        "bought; none for an adjustment, a custom package or a hold",
    )
    held: int | None = Field(
        default=None, description="on a reservation or a release: the credits held"
    )


class MovementsOut(Out):
    model_config = _out_examples(
        {
            "items": [
                {
                    "position": 4,
                    "at": "2026-03-02T10:16:00Z",
                    "customer_id": "C-1001",
                    "kind": "purchase",
                    "amount": 80,
                    "balance_after": 80,
                    "request_id": None,
                    "invoice_id": "0e7c1a52-3b7d-4e8f-a4c6-9a1b2c3d4e5f",
                    "actor": "finance:cy",
                    "reason": None,
                    "price_list_version": 1,
                    "held": None,
                },
                {
                    "position": 7,
                    "at": "2026-03-02T11:05:00Z",
                    "customer_id": "C-1001",
                    "kind": "charge",
                    "amount": -25,
                    "balance_after": 55,
                    "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
                    "invoice_id": None,
                    "actor": "specialist:bo",
                    "reason": None,
                    "price_list_version": 1,
                    "held": None,
                },
            ],
            "next_after": None,
        }
    )
    items: list[MovementOut]
    next_after: int | None = Field(
        description="pass as ?page_after= for the next page; null on the last page"
    )


class SummaryOut(Out):
    model_config = _out_examples(
        {
            "credits_sold": 80,
            "usd_received": "90.00",
            "credits_charged": 25,
            "credits_refunded": 0,
            "credits_adjusted": 0,
            "credits_outstanding": 55,
            "liability_usd": "61.88",
            "position": 7,
        }
    )
    credits_sold: int
    usd_received: UsdOut
    credits_charged: int
    credits_refunded: int
    credits_adjusted: int
    credits_outstanding: int
    liability_usd: UsdOut
    position: int


class SupportHoursOut(Out):
    model_config = _out_examples(
        {
            "open": False,
            "now": "2026-03-07T10:00:00+04:00",
            "next_open": "2026-03-09T09:00:00+04:00",
            "time_zone": "Europe/Samara",
            "hours": "Mon-Fri 09:00-18:00 Europe/Samara",
        }
    )
    open: bool
    now: datetime
    next_open: datetime | None
    time_zone: str
    hours: str


class HealthOut(Out):
    model_config = _out_examples({"status": "ok"})
    status: str


class ReadyOut(Out):
    model_config = _out_examples(
        {"status": "ready"}, {"status": "ready", "position": 7, "lag": {"balances": 0}}
    )
    status: str
    #: ``position``, ``lag`` and ``details`` are given to the admin role only.
    position: int | None = None
    lag: dict[str, int] | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Problem(BaseModel):
    """RFC 9457 problem details; the rule's own fields are extension members."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://ledger.example/problems/unknown-account",
                    "title": "Unknown account",
                    "status": 404,
                    "detail": "no account for customer 'C-1001'",
                    "customer_id": "C-1001",
                }
            ]
        },
    )
    type: str
    title: str
    status: int
    detail: str


class PaymentRequiredProblem(Problem):
    """402: the balance does not cover the price."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://ledger.example/problems/insufficient-credits",
                    "title": "Not enough credits",
                    "status": 402,
                    "detail": "the balance of 10 credits does not cover the price of 25 credits",
                    "customer_id": "C-1001",
                    "balance": 10,
                    "price": 25,
                }
            ]
        },
    )
    customer_id: str
    balance: int = Field(description="the account's balance, in credits")
    price: int = Field(description="the price to charge, in credits")


class ForbiddenProblem(Problem):
    """403: the key's role may not do this; ``allowed_roles`` may."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://ledger.example/problems/permission-denied",
                    "title": "Not allowed for this role",
                    "status": 403,
                    "detail": "role 'helpdesk' may not charge; allowed: specialist, admin",
                    "role": "helpdesk",
                    "action": "charge",
                    "allowed_roles": ["specialist", "admin"],
                }
            ]
        },
    )
    role: str
    action: str
    allowed_roles: list[str]


# --- audit ---------------------------------------------------------------------------


class ChainHeadOut(Out):
    position: int
    count: int
    hash: str


class ChainBreakOut(Out):
    position: int
    kind: Literal["changed", "missing", "inserted", "reordered", "unreadable", "snapshot"]
    detail: str


class VerificationOut(Out):
    model_config = _out_examples(
        {
            "ok": True,
            "head": {"position": 7, "count": 7, "hash": _EXAMPLE_DIGEST},
            "checked": 7,
            "unchained": 0,
            "first_break": None,
        }
    )
    ok: bool
    head: ChainHeadOut
    checked: int
    unchained: int
    first_break: ChainBreakOut | None


class StatementLineOut(Out):
    position: int
    version: int
    at: str
    kind: str
    amount: int
    balance_after: int
    request_id: str | None
    invoice_id: str | None
    actor: str
    reason: str | None
    event_digest: str
    #: The request's subject and category (charges and refunds), the
    #: invoice's package in credits (purchases).
    subject: str | None = None
    category: str | None = None
    package: int | None = None
    #: What the movement was, in words a customer reads.
    description: str = ""


class StatementOut(Out):
    model_config = _out_examples(
        {
            "customer_id": "C-1001",
            "account_id": "2d1f0a9e-6b3c-4f7a-8e21-5c4d3b2a1f00",
            "name": "Acme Store",
            "since": None,
            "until": None,
            "opening_balance": 0,
            "closing_balance": 55,
            "lines": [
                {
                    "position": 7,
                    "version": 3,
                    "at": "2026-03-02T11:05:00+00:00",
                    "kind": "charge",
                    "amount": -25,
                    "balance_after": 55,
                    "request_id": "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10",
                    "invoice_id": None,
                    "actor": "specialist:bo",
                    "reason": None,
                    "event_digest": _EXAMPLE_DIGEST,
                }
            ],
            "chain_head": {"position": 7, "count": 7, "hash": _EXAMPLE_DIGEST},
            "issued_at": "2026-03-31T12:00:00+00:00",
            "digest": _EXAMPLE_DIGEST,
        }
    )
    customer_id: str
    account_id: str
    name: str
    since: str | None
    until: str | None
    opening_balance: int
    closing_balance: int
    lines: list[StatementLineOut]
    chain_head: ChainHeadOut
    issued_at: str
    digest: str
