"""Domain errors, each named after the rule it guards.

Every error carries what a person needs to act on it (the balance and the
price, when support next opens, ...) as attributes, and ``fields()`` returns
them as plain JSON-ready values so an outer layer can show them without
knowing each class. The *kind* of an error (invalid input, unknown id,
state conflict, not enough credits, storage unavailable, a corrupted
history) is its base class;
the HTTP layer maps kinds to statuses from one table.

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    title = "Ledger error"

    def __init__(self, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self._fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def code(self) -> str:
        """A stable, kebab-case name of the rule, e.g. ``insufficient-credits``."""
        name = type(self).__name__.removesuffix("Error")
        return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")

    def fields(self) -> dict[str, Any]:
        return {name: _plain(value) for name, value in self._fields.items()}


# --- kinds -----------------------------------------------------------------


class InvalidInputError(LedgerError):
    """The command's input breaks a rule by itself, whatever the state."""

    title = "Invalid input"
    field: str

    def __init__(self, field: str, detail: str, **fields: Any) -> None:
        super().__init__(detail, field=field, **fields)


class NotFoundError(LedgerError):
    title = "Not found"


class ConflictError(LedgerError):
    """The command is refused in the current state of the ledger."""

    title = "Conflict"


class PaymentRequiredError(LedgerError):
    title = "Not enough credits"


class ForbiddenError(LedgerError):
    title = "Forbidden"


class StoreUnavailableError(LedgerError):
    title = "Store unavailable"


# --- invalid input ---------------------------------------------------------


class ChannelNotAllowedError(InvalidInputError):
    title = "Support is available through the helpdesk only"

    def __init__(self, channel: str) -> None:
        super().__init__(
            "channel",
            f"requests are accepted through the helpdesk only, not {channel!r}",
            channel=channel,
        )


class InvalidStoreUpdateError(InvalidInputError):
    title = "Not a store update"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(field, detail)


class UnknownCategoryError(InvalidInputError):
    title = "Unknown request category"

    def __init__(self, category: str, known: list[str]) -> None:
        super().__init__(
            "category",
            f"unknown category {category!r}; one of: {', '.join(known)}",
            category=category,
        )


class PriceBelowMinimumError(InvalidInputError):
    title = "Price below the minimum"

    def __init__(self, field: str, price: int, minimum: int) -> None:
        super().__init__(
            field,
            f"{field} {price} is below the minimum of {minimum} credits",
            price=price,
            minimum=minimum,
        )


class RefundExceedsChargeError(InvalidInputError):
    title = "Refund above what was charged"

    def __init__(self, request_id: UUID, credits: int, refundable: int) -> None:
        super().__init__(
            "credits",
            f"a refund of {credits} credits exceeds the {refundable} credits "
            "still refundable on this request",
            request_id=request_id,
            credits=credits,
            refundable=refundable,
        )


class IdempotencyKeyReusedError(InvalidInputError):
    title = "Idempotency key reused with another command"

    def __init__(self, key: str) -> None:
        super().__init__(
            "Idempotency-Key",
            "this idempotency key was already used for a different command",
            key=key,
        )


# --- roles -----------------------------------------------------------------


class PermissionDeniedError(ForbiddenError):
    title = "Not allowed for this role"

    def __init__(self, role: str, action: str, allowed: list[str] | None = None) -> None:
        allowed = allowed or []
        who = f"; allowed: {', '.join(allowed)}" if allowed else ""
        super().__init__(
            f"role {role!r} may not {action.replace('_', ' ')}{who}",
            role=role,
            action=action,
            allowed_roles=allowed,
        )


# --- unknown ids -----------------------------------------------------------


class UnknownAccountError(NotFoundError):
    title = "Unknown account"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"no account for customer {customer_id!r}", customer_id=customer_id)


class UnknownRequestError(NotFoundError):
    title = "Unknown request"

    def __init__(self, request_id: UUID | str) -> None:
        super().__init__(f"no support request {request_id}", request_id=request_id)


class UnknownInvoiceError(NotFoundError):
    title = "Unknown invoice"

    def __init__(self, invoice_id: UUID | str) -> None:
        super().__init__(f"no invoice {invoice_id}", invoice_id=invoice_id)


# --- state conflicts -------------------------------------------------------


class AccountAlreadyExistsError(ConflictError):
    title = "Account already exists"

    def __init__(self, customer_id: str) -> None:
        super().__init__(
            f"an account for customer {customer_id!r} already exists", customer_id=customer_id
        )


class InvoiceAlreadyPaidError(ConflictError):
    title = "Invoice already paid"

    def __init__(self, invoice_id: UUID) -> None:
        super().__init__(f"invoice {invoice_id} is already paid", invoice_id=invoice_id)


class InvoiceVoidedError(ConflictError):
    title = "Invoice voided"

    def __init__(self, invoice_id: UUID) -> None:
        super().__init__(f"invoice {invoice_id} was voided", invoice_id=invoice_id)


class AdjustmentBelowZeroError(ConflictError):
    title = "Adjustment would make the balance negative"

    def __init__(self, customer_id: str, balance: int, credits: int) -> None:
        super().__init__(
            f"an adjustment of {credits} credits would take the balance of {balance} below zero",
            customer_id=customer_id,
            balance=balance,
            credits=credits,
        )


class RequestClosedError(ConflictError):
    """The request is charged, referred, declined or cancelled."""

    title = "Request already closed"

    def __init__(self, request_id: UUID, status: str) -> None:
        super().__init__(
            f"request {request_id} is {status}; this is no longer possible",
            request_id=request_id,
            status=status,
        )


class AlreadyChargedError(RequestClosedError):
    title = "Request already charged"


class QuoteAwaitingAcceptanceError(ConflictError):
    title = "Price awaits the client's acceptance"

    def __init__(self, request_id: UUID, price: int | None) -> None:
        super().__init__(
            f"request {request_id} has a price of {price} credits that the client "
            "has not accepted yet",
            request_id=request_id,
            price=price,
        )


class QuotePendingError(ConflictError):
    """A pre-quote was asked for, or a complex modification has no price yet."""

    title = "No agreed price yet"

    def __init__(self, request_id: UUID) -> None:
        super().__init__(
            f"request {request_id} has no quoted price yet; a specialist must quote it first",
            request_id=request_id,
        )


class InvalidRequestStateError(ConflictError):
    """A request command that its current status does not allow."""

    title = "Not allowed in the request's current state"

    def __init__(self, request_id: UUID, status: str, action: str) -> None:
        super().__init__(
            f"cannot {action}: request {request_id} is {status}",
            request_id=request_id,
            status=status,
            action=action,
        )


class OutsideWorkingHoursError(ConflictError):
    next_opening: datetime | None
    title = "Outside working hours"

    def __init__(self, at: datetime, next_opening: datetime | None) -> None:
        super().__init__(
            f"support is closed at {at.isoformat()}; it next opens at "
            f"{next_opening.isoformat() if next_opening else 'an unknown time'}",
            at=at,
            next_opening=next_opening,
        )


class SubscriptionRequiredError(ConflictError):
    title = "Update subscription required"

    def __init__(self, customer_id: str, category: str, at: datetime) -> None:
        super().__init__(
            f"a {category} request needs an active update subscription; customer "
            f"{customer_id!r} has none at {at.isoformat()}",
            customer_id=customer_id,
            category=category,
            at=at,
        )


class ConcurrencyConflictError(ConflictError):
    title = "Concurrent update"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"the ledger was changed concurrently {attempts} times in a row; try again",
            attempts=attempts,
        )


# --- corruption ------------------------------------------------------------


class LedgerCorruptionError(LedgerError):
    """An account's stored history does not add up at ``version``: a credit
    movement's ``balance_after`` is not the balance before it plus its
    ``amount``, or the event after a snapshot is not the snapshot's next
    version (``expected`` and ``found`` are balances in the first case,
    versions in the second; ``what`` says which).

    A kind of its own: an event or a snapshot was changed or removed outside
    the ledger. Retrying cannot help; an operator compares the store with its
    hash chain (``ledger verify``) and restores it."""

    title = "Ledger corrupted"
    account_id: UUID
    customer_id: str
    version: int
    what: str
    expected: int
    found: int

    def __init__(
        self, account_id: UUID, customer_id: str, version: int, what: str, expected: int, found: int
    ) -> None:
        super().__init__(
            f"the history of the account of customer {customer_id!r} does not add up at "
            f"version {version}: expected {what} {expected}, found {found}; "
            "it was changed outside the ledger (run `ledger verify`)",
            account_id=account_id,
            customer_id=customer_id,
            version=version,
            what=what,
            expected=expected,
            found=found,
        )


class ProjectionFailedError(LedgerError):
    """A read model cannot apply an event (a programming error, or an event
    the model's rules cannot take, such as FIFO finding no lot): its worker
    stopped after a few attempts instead of retrying forever. ``position`` is
    the event's place in the store (``None`` when the failure is not one
    event's); ``error`` is what the read model raised."""

    title = "Read model stopped"
    read_model: str
    position: int | None
    error: str

    def __init__(self, read_model: str, position: int | None, error: str) -> None:
        at = f"the event at position {position}" if position is not None else "its next event"
        super().__init__(
            f"the {read_model} read model cannot apply {at} and has stopped: {error}",
            read_model=read_model,
            position=position,
            error=error,
        )


# --- not enough credits ----------------------------------------------------


class InsufficientCreditsError(PaymentRequiredError):
    customer_id: str
    balance: int
    price: int

    def __init__(self, customer_id: str, balance: int, price: int) -> None:
        super().__init__(
            f"the balance of {balance} credits does not cover the price of {price} credits",
            customer_id=customer_id,
            balance=balance,
            price=price,
        )
