"""The commands on a support request, in the order of its life: open it,
ask for a pre-quote, quote, accept or decline the quote, start the work
(which holds its price on the account), revise the price (which resizes the
hold), charge the answer (which debits the account and takes the hold),
refer it to custom development, cancel it (both release the hold), dispute
the charge, refund it or reject the dispute.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregates import PRICE_LISTS_ID, CustomerAccount, SupportRequest
from ledger.commands.accounts import account_needs
from ledger.commands.cycle import Command
from ledger.commands.results import (
    ChargeResult,
    QuoteResult,
    RefundResult,
    RequestChangeResult,
    StartResult,
)
from ledger.permissions import Action
from ledger.policy import parse_category
from ledger.values import Actor, ReleaseCause

if TYPE_CHECKING:
    from ledger.application import Ledger


@dataclass(frozen=True)
class OpenRequest(Command[RequestChangeResult]):
    """Emits ``RequestOpened`` priced by its category under the price list in
    force now, and recording that version. Raises
    ``ChannelNotAllowedError``, ``UnknownCategoryError``,
    ``InvalidStoreUpdateError``, ``InvalidInputError``, ``UnknownAccountError``."""

    action = Action.OPEN_REQUEST

    customer_id: str
    category: str
    channel: str
    subject: str
    from_version: str | None = None
    to_version: str | None = None
    third_party: bool = False

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return [*account_needs(self.customer_id), (PRICE_LISTS_ID, False)]

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], RequestChangeResult]:
        account = ledger._account(self.customer_id)
        prices = ledger._price_list_at(at)
        request = SupportRequest.open(
            account,
            parse_category(self.category),
            self.subject,
            self.channel,
            from_version=self.from_version,
            to_version=self.to_version,
            third_party=self.third_party,
            prices=prices,
            actor=actor,
            at=at,
        )
        return [request], _changed(request)


@dataclass(frozen=True)
class _RequestChange(Command[RequestChangeResult]):
    """A command that changes one request and nothing else."""

    request_id: UUID

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_needs(self.request_id)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], RequestChangeResult]:
        request = ledger._request(self.request_id)
        self.change(request, actor, at)
        return [request], _changed(request)

    @abstractmethod
    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        """Ask the request to change (it raises when a rule forbids it)."""


@dataclass(frozen=True)
class _HoldEndingChange(_RequestChange):
    """A request change that ends the request's hold on the account (if any)
    in the same append: ``CreditsReleased`` with ``cause``."""

    cause: ClassVar[ReleaseCause]

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_and_account_needs(self.request_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], RequestChangeResult]:
        request = ledger._request(self.request_id)
        self.change(request, actor, at)
        account = ledger._get(CustomerAccount, request.account_id, request.customer_id)
        account.release(request.id, self.cause, actor=actor, at=at)
        return [request, account], _changed(request)


@dataclass(frozen=True)
class RequestPreQuote(_RequestChange):
    """Emits ``PreQuoteRequested``. Raises ``InvalidRequestStateError``,
    ``RequestClosedError``, ``UnknownRequestError``."""

    action = Action.REQUEST_PRE_QUOTE

    note: str | None = None

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.request_pre_quote(self.note, actor=actor, at=at)


@dataclass(frozen=True)
class Quote(Command[QuoteResult]):
    """Emits ``RequestQuoted`` (price = work price + surcharge). Raises
    ``PriceBelowMinimumError``, ``InvalidInputError``,
    ``InvalidRequestStateError``, ``UnknownRequestError``."""

    action = Action.QUOTE

    request_id: UUID
    price: int
    surcharge: int = 0

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_needs(self.request_id)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], QuoteResult]:
        request = ledger._request(self.request_id)
        prices = ledger._price_list(request.price_list_version)
        request.quote(self.price, self.surcharge, prices=prices, actor=actor, at=at)
        assert request.price is not None  # just quoted
        return [request], QuoteResult(
            request.id, request.status.value, self.price, self.surcharge, request.price
        )


@dataclass(frozen=True)
class AcceptQuote(_RequestChange):
    """Emits ``QuoteAccepted``. Raises ``InvalidRequestStateError``,
    ``RequestClosedError``, ``UnknownRequestError``."""

    action = Action.ACCEPT_QUOTE

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.accept_quote(actor=actor, at=at)


@dataclass(frozen=True)
class DeclineQuote(_HoldEndingChange):
    """Emits ``QuoteDeclined``: closed, nothing charged; releases the hold
    (``CreditsReleased``, cause ``declined``). Raises
    ``InvalidRequestStateError``, ``RequestClosedError``, ``UnknownRequestError``."""

    action = Action.DECLINE_QUOTE
    cause = ReleaseCause.DECLINED

    reason: str | None = None

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.decline_quote(self.reason, actor=actor, at=at)


@dataclass(frozen=True)
class RevisePrice(Command[RequestChangeResult]):
    """Emits ``PriceRevised`` (the minimum of the request's own price list
    version); a held request's hold is resized to the new price in the same
    append (``CreditsReleased``, cause ``revised``, and ``CreditsReserved``).
    Raises ``PriceBelowMinimumError``, ``InvalidInputError``,
    ``AlreadyChargedError``, ``RequestClosedError``, ``UnknownRequestError``;
    ``InsufficientCreditsError`` when the account cannot cover the raise of a
    held price."""

    action = Action.REVISE_PRICE

    request_id: UUID
    price: int
    reason: str

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_and_account_needs(self.request_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], RequestChangeResult]:
        request = ledger._request(self.request_id)
        prices = ledger._price_list(request.price_list_version)
        request.revise_price(self.price, self.reason, prices=prices, actor=actor, at=at)
        assert request.price is not None  # just revised
        account = ledger._get(CustomerAccount, request.account_id, request.customer_id)
        account.resize(request.id, request.price, actor=actor, at=at)
        return [request, account], _changed(request)


@dataclass(frozen=True)
class StartWork(Command[StartResult]):
    """A specialist starts work: emits the account's ``CreditsReserved`` of
    the request's price, lapsing after ``ledger.hold_working_hours`` open
    hours of the support calendar; nothing new when the request already
    holds its price. Raises ``QuotePendingError`` (no price yet),
    ``QuoteAwaitingAcceptanceError``, ``AlreadyChargedError`` /
    ``RequestClosedError``, ``UnknownRequestError``; then
    ``InsufficientCreditsError`` when the credits available do not cover it."""

    action = Action.START_WORK

    request_id: UUID

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_and_account_needs(self.request_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], StartResult]:
        request = ledger._request(self.request_id)
        request.check_chargeable("start")
        assert request.price is not None  # checked above
        account = ledger._get(CustomerAccount, request.account_id, request.customer_id)
        lapses_at = ledger.calendar.add_open_hours(at, ledger.hold_working_hours)
        account.reserve(request.id, request.price, lapses_at, actor=actor, at=at)
        hold = account.hold_of(request.id, at)
        assert hold is not None  # just reserved, or already held
        return [account], StartResult(
            request.id,
            request.customer_id,
            hold.amount,
            hold.lapses_at,
            account.balance,
            account.available(at),
        )


@dataclass(frozen=True)
class Charge(Command[ChargeResult]):
    """Emits ``AnswerCharged`` and the account's ``CreditsCharged`` in one
    append. Raises, state conflicts first: ``AlreadyChargedError``,
    ``RequestClosedError``, ``QuoteAwaitingAcceptanceError``,
    ``QuotePendingError``, ``OutsideWorkingHoursError``,
    ``SubscriptionRequiredError``; then ``InsufficientCreditsError``. A held
    request's hold is released (cause ``charged``) in the same append, so its
    charge may use the credits held for it; any other charge may use only
    the credits available."""

    action = Action.CHARGE

    request_id: UUID

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_and_account_needs(self.request_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], ChargeResult]:
        request = ledger._request(self.request_id)
        account = ledger._get(CustomerAccount, request.account_id, request.customer_id)
        prices = ledger._price_list(request.price_list_version)
        request.charge(account, ledger.calendar, prices=prices, actor=actor, at=at)
        return [request, account], ChargeResult(request.id, request.charged or 0, account.balance)


@dataclass(frozen=True)
class Refer(_HoldEndingChange):
    """Emits ``RequestReferred`` (to custom development); releases the hold
    (cause ``referred``). Raises ``InvalidRequestStateError``,
    ``RequestClosedError``, ``UnknownRequestError``."""

    action = Action.REFER
    cause = ReleaseCause.REFERRED

    reason: str

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.refer(self.reason, actor=actor, at=at)


@dataclass(frozen=True)
class Cancel(_HoldEndingChange):
    """Emits ``RequestCancelled``; releases the hold (cause ``cancelled``).
    Raises ``InvalidRequestStateError``, ``RequestClosedError``,
    ``UnknownRequestError``."""

    action = Action.CANCEL
    cause = ReleaseCause.CANCELLED

    reason: str | None = None

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.cancel(self.reason, actor=actor, at=at)


@dataclass(frozen=True)
class Dispute(_RequestChange):
    """Emits ``ChargeDisputed``. Raises ``InvalidRequestStateError``,
    ``RequestClosedError``, ``UnknownRequestError``."""

    action = Action.DISPUTE

    reason: str

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.dispute(self.reason, actor=actor, at=at)


@dataclass(frozen=True)
class Refund(Command[RefundResult]):
    """Emits ``ChargeRefunded`` and the account's ``CreditsRefunded`` in one
    append; resolves the open dispute. Raises ``RefundExceedsChargeError``,
    ``InvalidInputError``, ``InvalidRequestStateError``, ``UnknownRequestError``."""

    action = Action.RESOLVE_DISPUTE

    request_id: UUID
    credits: int
    reason: str

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _request_and_account_needs(self.request_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], RefundResult]:
        request = ledger._request(self.request_id)
        account = ledger._get(CustomerAccount, request.account_id, request.customer_id)
        request.refund(account, self.credits, self.reason, actor=actor, at=at)
        return [request, account], RefundResult(request.id, request.refunded, account.balance)


@dataclass(frozen=True)
class RejectDispute(_RequestChange):
    """Emits ``DisputeRejected``. Raises ``InvalidRequestStateError``,
    ``UnknownRequestError``."""

    action = Action.RESOLVE_DISPUTE

    reason: str

    def change(self, request: SupportRequest, actor: Actor, at: datetime) -> None:
        request.reject_dispute(self.reason, actor=actor, at=at)


def _changed(request: SupportRequest) -> RequestChangeResult:
    return RequestChangeResult(request.id, request.status.value, request.price)


def _request_needs(request_id: UUID) -> list[tuple[UUID, bool]]:
    """What a command on one request alone needs (``Command.needs``)."""
    return [(request_id, False)]


def _request_and_account_needs(
    request_id: UUID, loaded: Mapping[UUID, Aggregate | None]
) -> list[tuple[UUID, bool]]:
    """What a command on a request and its account needs: the request, then
    the account it names (``Command.needs``)."""
    if request_id not in loaded:
        return [(request_id, False)]
    request = loaded[request_id]
    return [(request.account_id, True)] if isinstance(request, SupportRequest) else []
