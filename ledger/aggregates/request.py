"""A support request: its price, its agreement and its single charge.

Invariants owned here:
- a request is charged at most once, and only at a price nobody is still
  waiting to agree to (POLICY.md, "A request's life");
- a price is revised only before the charge, with a reason, and each
  revision is kept (old price, new price, reason, who, when);
- a raised price on an agreed request (accepted quote, complex modification)
  needs the client's acceptance again before the charge; so does a free fix
  (security, compatibility) that turns out to need paid work, because the
  policy says the client is told before any charge;
- refunds happen only while a dispute is open and never exceed, in total,
  what was charged.

The charge and the refund change the customer's account too: the command
methods take the account, change both in memory, and the application saves
both in one atomic append.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregates.account import CustomerAccount
from ledger.errors import (
    AlreadyChargedError,
    ChannelNotAllowedError,
    ConflictError,
    InvalidInputError,
    InvalidRequestStateError,
    OutsideWorkingHoursError,
    QuoteAwaitingAcceptanceError,
    QuotePendingError,
    RefundExceedsChargeError,
    RequestClosedError,
    SubscriptionRequiredError,
)
from ledger.policy import (
    DEFAULT_PRICE_LIST,
    Category,
    PriceList,
    SupportCalendar,
    opening_price,
    validate_credits,
    validate_price,
)
from ledger.validation import optional_text, required_text
from ledger.values import Actor

HELPDESK_CHANNEL = "helpdesk"


class RequestStatus(StrEnum):
    OPEN = "open"
    AWAITING_QUOTE = "awaiting_quote"
    QUOTED = "quoted"
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    CHARGED = "charged"
    DISPUTED = "disputed"
    REFUNDED = "refunded"
    DISPUTE_REJECTED = "dispute_rejected"
    REFERRED = "referred"
    DECLINED = "declined"
    CANCELLED = "cancelled"


S = RequestStatus
#: Before the charge: the price may still change.
PENDING = frozenset({S.OPEN, S.AWAITING_QUOTE, S.QUOTED, S.AWAITING_ACCEPTANCE})
#: The client is asked to agree to a price.
AWAITING_AGREEMENT = frozenset({S.QUOTED, S.AWAITING_ACCEPTANCE})
#: Charged, whatever happened to a dispute since.
AFTER_CHARGE = frozenset({S.CHARGED, S.DISPUTED, S.REFUNDED, S.DISPUTE_REJECTED})


class SupportRequest(Aggregate):
    """One question to technical support, priced in credits."""

    class RequestOpened(Aggregate.Created):
        account_id: UUID
        customer_id: str
        category: Category
        subject: str
        channel: str
        from_version: str | None
        to_version: str | None
        third_party: bool
        price: int | None
        price_list_version: int
        actor: Actor

        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no channel: the helpdesk was the only one."""
            state["channel"] = HELPDESK_CHANNEL

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Version 2 had no price list version: there was only version 1."""
            state["price_list_version"] = DEFAULT_PRICE_LIST.version

    class PreQuoteRequested(Aggregate.Event):
        note: str
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.status = S.AWAITING_QUOTE

    class RequestQuoted(Aggregate.Event):
        work_price: int
        surcharge: int
        price: int
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.price = self.price
            request.status = S.QUOTED

    class QuoteAccepted(Aggregate.Event):
        price: int
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.agreed_price = self.price
            request.status = S.OPEN

    class QuoteDeclined(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.status = S.DECLINED
            request.closed_at = self.timestamp

    class PriceRevised(Aggregate.Event):
        old_price: int
        new_price: int
        reason: str
        needs_acceptance: bool
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.price = self.new_price
            request.revisions += 1
            if self.needs_acceptance:
                request.status = S.AWAITING_ACCEPTANCE
            elif request.status is S.AWAITING_ACCEPTANCE:
                request.status = S.OPEN

    class AnswerCharged(Aggregate.Event):
        amount: int  # zero or negative: the credits taken from the account
        balance_after: int
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.charged = -self.amount
            request.status = S.CHARGED
            request.closed_at = self.timestamp

    class RequestReferred(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.status = S.REFERRED
            request.closed_at = self.timestamp

    class RequestCancelled(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.status = S.CANCELLED
            request.closed_at = self.timestamp

    class ChargeDisputed(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.status = S.DISPUTED

    class ChargeRefunded(Aggregate.Event):
        amount: int  # positive: the credits given back
        refunded_total: int
        reason: str
        balance_after: int
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.refunded = self.refunded_total
            request.status = S.REFUNDED

    class DisputeRejected(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, request: SupportRequest) -> None:
            request.status = S.DISPUTE_REJECTED

    def __init__(
        self,
        account_id: UUID,
        customer_id: str,
        category: Category,
        subject: str,
        channel: str,
        from_version: str | None,
        to_version: str | None,
        third_party: bool,
        price: int | None,
        price_list_version: int,
        actor: Actor,
    ) -> None:
        self.account_id = account_id
        self.customer_id = customer_id
        self.category = category
        self.subject = subject
        self.channel = channel
        self.from_version = from_version
        self.to_version = to_version
        self.third_party = third_party
        self.price = price
        self.price_list_version = price_list_version
        self.agreed_price: int | None = None
        self.status = S.OPEN
        self.revisions = 0
        self.charged: int | None = None
        self.refunded = 0
        self.closed_at: datetime | None = None

    # --- commands -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        account: CustomerAccount,
        category: Category,
        subject: str,
        channel: str,
        *,
        from_version: str | None = None,
        to_version: str | None = None,
        third_party: bool = False,
        prices: PriceList = DEFAULT_PRICE_LIST,
        actor: Actor,
        at: datetime,
    ) -> SupportRequest:
        """Emits ``RequestOpened`` with the category's price under ``prices``
        (the version in force at ``at``; ``None`` for a complex modification),
        recording that version. Raises ``ChannelNotAllowedError``,
        ``InvalidStoreUpdateError``, ``InvalidInputError``."""
        if channel != HELPDESK_CHANNEL:
            raise ChannelNotAllowedError(channel)
        price = opening_price(
            category,
            from_version=from_version,
            to_version=to_version,
            third_party=third_party,
            prices=prices,
        )
        return cls._create(
            cls.RequestOpened,
            account_id=account.id,
            customer_id=account.customer_id,
            category=category,
            subject=required_text("subject", subject),
            channel=channel,
            from_version=from_version,
            to_version=to_version,
            third_party=third_party,
            price=price,
            price_list_version=prices.version,
            actor=actor,
            timestamp=at,
        )

    def request_pre_quote(self, note: str | None, *, actor: Actor, at: datetime) -> None:
        """Emits ``PreQuoteRequested``: nothing may be charged before a quote
        is accepted."""
        if self.status is not S.OPEN or self.agreed_price is not None:
            self._refuse("ask for a pre-quote")
        self.trigger_event(
            self.PreQuoteRequested, note=optional_text("note", note), actor=actor, timestamp=at
        )

    def quote(
        self,
        work_price: int,
        surcharge: int,
        *,
        prices: PriceList | None = None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Emits ``RequestQuoted`` (price = work price + surcharge for the time
        spent pricing). Allowed after a pre-quote, or as the first price of a
        complex modification. ``prices``: the request's own version (the
        minimum). Raises ``PriceBelowMinimumError``."""
        first_complex_price = (
            self.category is Category.COMPLEX_MODIFICATION
            and self.status is S.OPEN
            and self.price is None
        )
        if self.status is not S.AWAITING_QUOTE and not first_complex_price:
            self._refuse("quote")
        work_price = validate_price("price", work_price, minimum=self._minimum_price(prices))
        surcharge = validate_price("surcharge", surcharge)
        total = validate_price("price", work_price + surcharge)
        self.trigger_event(
            self.RequestQuoted,
            work_price=work_price,
            surcharge=surcharge,
            price=total,
            actor=actor,
            timestamp=at,
        )

    def accept_quote(self, *, actor: Actor, at: datetime) -> None:
        """Emits ``QuoteAccepted`` for the price awaiting agreement."""
        if self.status not in AWAITING_AGREEMENT:
            self._refuse("accept a quote")
        assert self.price is not None  # a quote or a revision set it
        self.trigger_event(self.QuoteAccepted, price=self.price, actor=actor, timestamp=at)

    def decline_quote(self, reason: str | None, *, actor: Actor, at: datetime) -> None:
        """Emits ``QuoteDeclined``: the request closes at no cost."""
        if self.status not in AWAITING_AGREEMENT:
            self._refuse("decline a quote")
        self.trigger_event(
            self.QuoteDeclined, reason=optional_text("reason", reason), actor=actor, timestamp=at
        )

    def revise_price(
        self,
        new_price: int,
        reason: str,
        *,
        prices: PriceList | None = None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Emits ``PriceRevised``. A raise above an agreed price awaits the
        client's acceptance again. ``prices``: the request's own version (the
        minimum, the free categories). Raises ``PriceBelowMinimumError``,
        ``InvalidInputError`` (same price, no reason), ``RequestClosedError``."""
        if self.status not in PENDING or self.price is None:
            self._refuse("revise the price", changes_charge=True)
        new_price = validate_price("price", new_price, minimum=self._minimum_price(prices))
        reason = required_text("reason", reason)
        if new_price == self.price:
            raise InvalidInputError("price", f"the price is already {new_price} credits")
        # The client agreed to a price (accepted quote, complex modification),
        # or was promised a free fix: a higher price waits for their consent.
        agreed = self.agreed_price
        if agreed is None and self.category in self._prices(prices).free_categories:
            agreed = 0
        needs_acceptance = agreed is not None and new_price > agreed
        self.trigger_event(
            self.PriceRevised,
            old_price=self.price,
            new_price=new_price,
            reason=reason,
            needs_acceptance=needs_acceptance and self.status is not S.QUOTED,
            actor=actor,
            timestamp=at,
        )

    def charge(
        self,
        account: CustomerAccount,
        calendar: SupportCalendar,
        *,
        prices: PriceList | None = None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Emits ``AnswerCharged`` here and ``CreditsCharged`` on the account.
        ``prices``: the request's own version (which categories need an update
        subscription).

        Refusals, in this order (the state conflicts before the credits):
        ``AlreadyChargedError`` / ``RequestClosedError``,
        ``QuoteAwaitingAcceptanceError``, ``QuotePendingError``,
        ``OutsideWorkingHoursError``, ``SubscriptionRequiredError``,
        ``InsufficientCreditsError``.
        """
        self.check_chargeable("charge")
        if not calendar.is_open(at):
            raise OutsideWorkingHoursError(at, calendar.next_opening(at))
        if self.category in self._prices(
            prices
        ).subscription_categories and not account.has_subscription_on(calendar.local_date(at)):
            raise SubscriptionRequiredError(self.customer_id, self.category.value, at)
        assert self.price is not None  # checked above
        account.charge(
            self.id, self.price, price_list_version=self.price_list_version, actor=actor, at=at
        )
        self.trigger_event(
            self.AnswerCharged,
            amount=-self.price,
            balance_after=account.balance,
            actor=actor,
            timestamp=at,
        )

    def check_chargeable(self, action: str) -> None:
        """Raise unless the request's state lets it be charged (or started, the
        hold of a charge to come): ``QuoteAwaitingAcceptanceError``,
        ``QuotePendingError``, ``AlreadyChargedError`` / ``RequestClosedError``."""
        if self.status in AWAITING_AGREEMENT:
            raise QuoteAwaitingAcceptanceError(self.id, self.price)
        if self.status is S.AWAITING_QUOTE or (self.status is S.OPEN and self.price is None):
            raise QuotePendingError(self.id)
        if self.status is not S.OPEN:
            self._refuse(action, changes_charge=True)

    def refer(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Emits ``RequestReferred`` (to custom development); nothing charged."""
        if self.status not in PENDING:
            self._refuse("refer")
        self.trigger_event(
            self.RequestReferred, reason=required_text("reason", reason), actor=actor, timestamp=at
        )

    def cancel(self, reason: str | None, *, actor: Actor, at: datetime) -> None:
        """Emits ``RequestCancelled``; nothing charged."""
        if self.status not in PENDING:
            self._refuse("cancel")
        self.trigger_event(
            self.RequestCancelled,
            reason=optional_text("reason", reason),
            actor=actor,
            timestamp=at,
        )

    def dispute(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Emits ``ChargeDisputed``. Allowed once charged and no dispute is open."""
        if self.status not in AFTER_CHARGE or self.status is S.DISPUTED:
            self._refuse("dispute")
        self.trigger_event(
            self.ChargeDisputed, reason=required_text("reason", reason), actor=actor, timestamp=at
        )

    def refund(
        self, account: CustomerAccount, credits: int, reason: str, *, actor: Actor, at: datetime
    ) -> None:
        """Emits ``ChargeRefunded`` here and ``CreditsRefunded`` on the
        account; resolves the open dispute. Raises ``RefundExceedsChargeError``."""
        if self.status is not S.DISPUTED:
            self._refuse("refund")
        credits = validate_credits("credits", credits)
        reason = required_text("reason", reason)
        refundable = (self.charged or 0) - self.refunded
        if credits > refundable:
            raise RefundExceedsChargeError(self.id, credits, refundable)
        account.refund(
            self.id,
            credits,
            reason,
            price_list_version=self.price_list_version,
            actor=actor,
            at=at,
        )
        self.trigger_event(
            self.ChargeRefunded,
            amount=credits,
            refunded_total=self.refunded + credits,
            reason=reason,
            balance_after=account.balance,
            actor=actor,
            timestamp=at,
        )

    def reject_dispute(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Emits ``DisputeRejected``."""
        if self.status is not S.DISPUTED:
            self._refuse("reject a dispute")
        self.trigger_event(
            self.DisputeRejected, reason=required_text("reason", reason), actor=actor, timestamp=at
        )

    # --- helpers ------------------------------------------------------------

    def _minimum_price(self, prices: PriceList | None) -> int:
        return self._prices(prices).minimum(self.category)

    def _prices(self, prices: PriceList | None) -> PriceList:
        """The request's own price list: ``prices`` when given (it must be the
        version the request was opened under), version 1 otherwise."""
        chosen = DEFAULT_PRICE_LIST if prices is None else prices
        if chosen.version != self.price_list_version:
            raise ValueError(
                f"request {self.id} is priced by price list version "
                f"{self.price_list_version}, not {chosen.version}"
            )
        return chosen

    def _refuse(self, action: str, *, changes_charge: bool = False) -> NoReturn:
        """Raise the error ``REFUSALS`` gives for the current status."""
        raise REFUSALS[self.status](self, action, changes_charge)


#: Why a command refused in a status is refused, from
#: ``(request, action, changes_charge)``; ``changes_charge`` is set by the
#: commands that would charge again or change the charged price.
Refusal = Callable[[SupportRequest, str, bool], ConflictError]


def _not_now(request: SupportRequest, action: str, changes_charge: bool) -> ConflictError:
    return InvalidRequestStateError(request.id, request.status.value, action)


def _closed(request: SupportRequest, action: str, changes_charge: bool) -> ConflictError:
    return RequestClosedError(request.id, request.status.value)


def _charged(request: SupportRequest, action: str, changes_charge: bool) -> ConflictError:
    if changes_charge:
        return AlreadyChargedError(request.id, request.status.value)
    return _not_now(request, action, changes_charge)


#: Before the charge a refused command just does not fit the status; after
#: it, a second charge or a new price is refused as already charged; a
#: referred, declined or cancelled request is closed to everything.
REFUSALS: Mapping[RequestStatus, Refusal] = {
    S.OPEN: _not_now,
    S.AWAITING_QUOTE: _not_now,
    S.QUOTED: _not_now,
    S.AWAITING_ACCEPTANCE: _not_now,
    S.CHARGED: _charged,
    S.DISPUTED: _charged,
    S.REFUNDED: _charged,
    S.DISPUTE_REJECTED: _charged,
    S.REFERRED: _closed,
    S.DECLINED: _closed,
    S.CANCELLED: _closed,
}
