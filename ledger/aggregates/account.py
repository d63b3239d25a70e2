"""The customer account: the one place a balance lives.

Invariants owned here:
- the balance is an integer and never below zero;
- ``balance == purchased + adjusted - charged + refunded`` after every event;
- every event that moves credits carries the signed ``amount`` and the
  ``balance_after``, so an auditor can follow the balance event by event;
  every replay re-checks ``balance + amount == balance_after`` and that each
  event is the next version of the account (also the first one after a
  snapshot), and raises ``LedgerCorruptionError`` otherwise, so a changed
  event or snapshot is never served as a balance;
- one account per customer: the id is a ``uuid5`` of the customer's id, so a
  second account for the same customer collides in the store;
- holds: credits reserved for a request a specialist works on
  (``CreditsReserved``), ended by ``CreditsReleased`` with its cause. They
  move no credits (``amount`` is the credits held, never in the balance);
  ``available(at)`` is the balance less the holds live at ``at`` (a hold
  whose ``lapses_at`` is reached is not live, whether or not its release is
  written), and every charge, negative adjustment and hold can use only
  ``available`` (a charge of a held request takes its own hold first). Every
  command here first writes ``CreditsReleased(cause=lapsed)`` for the lapsed
  holds, in the same append, so every reservation has its end in the trail.

Rules are checked in the public command methods; the ``apply`` methods only
change state, because they run again on every replay (the one check they
make is of the stored history itself, above).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import (
    AdjustmentBelowZeroError,
    InsufficientCreditsError,
    InvalidInputError,
    LedgerCorruptionError,
)
from ledger.policy import DEFAULT_PRICE_LIST
from ledger.validation import customer_id as valid_customer_id
from ledger.validation import required_text
from ledger.values import Actor, Hold, ReleaseCause, SubscriptionPeriod

ACCOUNT_NAMESPACE = UUID("6f1c1b1e-3c52-4f5e-9a55-0d7a2c1f4b10")


def account_id_for(customer_id: str) -> UUID:
    return uuid5(ACCOUNT_NAMESPACE, customer_id)


def _priced_by_the_first_list(state: dict[str, Any]) -> None:
    """Upcasts a request's movement from before price lists were data: its
    request was priced by version 1, the only one there was."""
    state["price_list_version"] = DEFAULT_PRICE_LIST.version


def _balance_after(event: Any, account: Any) -> int:
    """The balance after a credit movement, checked against the one the event
    carries. ``account`` is the aggregate or a read model's mirror of it."""
    expected = account.balance + event.amount
    if event.balance_after != expected:
        raise LedgerCorruptionError(
            event.originator_id,
            account.customer_id,
            event.originator_version,
            "balance",
            expected,
            event.balance_after,
        )
    return int(expected)


class CustomerAccount(Aggregate):
    """A customer's prepaid support credits."""

    class Event(Aggregate.Event):
        """The base of the account's events (the library re-bases each one on it)."""

        def mutate(self, aggregate: Any) -> Any:
            # The library checks this too, but raises its own error: a gap here
            # is a changed history (a snapshot's version, a removed event).
            if aggregate is not None and self.originator_version != aggregate.version + 1:
                raise LedgerCorruptionError(
                    self.originator_id,
                    aggregate.customer_id,
                    self.originator_version,
                    "version",
                    aggregate.version + 1,
                    self.originator_version,
                )
            return super().mutate(aggregate)

    class Opened(Aggregate.Created):
        customer_id: str
        name: str
        actor: Actor

    class CreditsPurchased(Event):
        invoice_id: UUID
        amount: int
        amount_usd: Decimal
        balance_after: int
        #: The price list whose standard package was sold; ``None``: a custom one.
        price_list_version: int | None
        actor: Actor

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no price list version: there was only version 1,
            whose standard packages are exactly the purchases of a listed
            package's credits for its amount (a custom package equal to a
            listed one is that package); any other was custom."""
            listed = DEFAULT_PRICE_LIST.packages.get(state["amount"])
            standard = listed is not None and listed.amount_usd == Decimal(str(state["amount_usd"]))
            state["price_list_version"] = DEFAULT_PRICE_LIST.version if standard else None

        def apply(self, account: CustomerAccount) -> None:
            account.balance = _balance_after(self, account)
            account.purchased += self.amount

    class BalanceAdjusted(Event):
        amount: int
        reason: str
        balance_after: int
        actor: Actor

        def apply(self, account: CustomerAccount) -> None:
            account.balance = _balance_after(self, account)
            account.adjusted += self.amount

    class CreditsCharged(Event):
        request_id: UUID
        amount: int  # zero or negative: the credits taken
        balance_after: int
        #: The price list the request is priced by.
        price_list_version: int
        actor: Actor

        class_version = 2

        upcast_v1_v2 = staticmethod(_priced_by_the_first_list)

        def apply(self, account: CustomerAccount) -> None:
            account.balance = _balance_after(self, account)
            account.charged -= self.amount

    class CreditsRefunded(Event):
        request_id: UUID
        amount: int  # positive: the credits given back
        reason: str
        balance_after: int
        #: The price list the request is priced by.
        price_list_version: int
        actor: Actor

        class_version = 2

        upcast_v1_v2 = staticmethod(_priced_by_the_first_list)

        def apply(self, account: CustomerAccount) -> None:
            account.balance = _balance_after(self, account)
            account.refunded += self.amount

    class UpdateSubscriptionRecorded(Event):
        period: SubscriptionPeriod
        actor: Actor

        def apply(self, account: CustomerAccount) -> None:
            account.subscriptions = [*account.subscriptions, self.period]

    class CreditsReserved(Event):
        """Credits held for a request: ``amount`` is held, the balance unchanged."""

        request_id: UUID
        amount: int
        lapses_at: datetime
        actor: Actor

        def apply(self, account: CustomerAccount) -> None:
            hold = Hold(self.request_id, self.amount, self.lapses_at)
            account._holds = [*account.holds, hold]

    class CreditsReleased(Event):
        """A hold ended (``cause``); ``amount`` is what was held."""

        request_id: UUID
        amount: int
        cause: ReleaseCause
        actor: Actor

        def apply(self, account: CustomerAccount) -> None:
            account._holds = [h for h in account.holds if h.request_id != self.request_id]

    def __init__(self, customer_id: str, name: str, actor: Actor) -> None:
        self.customer_id = customer_id
        self.name = name
        self.balance = 0
        self.purchased = 0
        self.charged = 0
        self.refunded = 0
        self.adjusted = 0
        self.subscriptions: list[SubscriptionPeriod] = []
        # A list (as a snapshot stores it), replaced by each event, never changed in place.
        self._holds: list[Hold] = []

    @staticmethod
    def create_id(customer_id: str, **_: Any) -> UUID:
        return account_id_for(customer_id)

    # --- commands -----------------------------------------------------------

    @classmethod
    def open(cls, customer_id: str, name: str, *, actor: Actor, at: datetime) -> CustomerAccount:
        """Emits ``Opened``. The caller checks that the customer id is new."""
        customer_id = valid_customer_id(customer_id)  # the rule for new ids (NFKC, 64, ...)
        name = required_text("name", name, max_length=500)
        return cls._create(
            cls.Opened,
            id=account_id_for(customer_id),
            customer_id=customer_id,
            name=name,
            actor=actor,
            timestamp=at,
        )

    def purchase(
        self,
        invoice_id: UUID,
        credits: int,
        amount_usd: Decimal,
        *,
        price_list_version: int | None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Emits ``CreditsPurchased``: the credits of a paid invoice, with the
        version of the price list its package is from (``None``: custom)."""
        self.release_lapsed(actor=actor, at=at)
        self.trigger_event(
            self.CreditsPurchased,
            invoice_id=invoice_id,
            amount=credits,
            amount_usd=amount_usd,
            balance_after=self.balance + credits,
            price_list_version=price_list_version,
            actor=actor,
            timestamp=at,
        )

    def adjust(self, credits: int, reason: str, *, actor: Actor, at: datetime) -> None:
        """Emits ``BalanceAdjusted``. Raises ``AdjustmentBelowZeroError`` when a
        negative adjustment is more than the credits available."""
        reason = required_text("reason", reason)
        self.release_lapsed(actor=actor, at=at)
        available = self.available(at)
        if available + credits < 0:
            raise AdjustmentBelowZeroError(self.customer_id, self.balance, credits, available)
        self.trigger_event(
            self.BalanceAdjusted,
            amount=credits,
            reason=reason,
            balance_after=self.balance + credits,
            actor=actor,
            timestamp=at,
        )

    def charge(
        self,
        request_id: UUID,
        price: int,
        *,
        price_list_version: int,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Emits ``CreditsCharged``; a held request's hold is released first
        (``CreditsReleased``, cause ``charged``), so the charge may use it.
        Raises ``InsufficientCreditsError`` when the credits available do not
        cover the price."""
        self.release_lapsed(actor=actor, at=at)
        held = self.hold_of(request_id, at)
        available = self.available(at) + (held.amount if held else 0)
        if available < price:
            raise InsufficientCreditsError(self.customer_id, self.balance, price, available)
        if held is not None:
            self._release(held, ReleaseCause.CHARGED, actor=actor, at=at)
        self.trigger_event(
            self.CreditsCharged,
            request_id=request_id,
            amount=-price,
            balance_after=self.balance - price,
            price_list_version=price_list_version,
            actor=actor,
            timestamp=at,
        )

    def refund(
        self,
        request_id: UUID,
        credits: int,
        reason: str,
        *,
        price_list_version: int,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Emits ``CreditsRefunded``; the request guards how much may come back."""
        self.release_lapsed(actor=actor, at=at)
        self.trigger_event(
            self.CreditsRefunded,
            request_id=request_id,
            amount=credits,
            reason=reason,
            balance_after=self.balance + credits,
            price_list_version=price_list_version,
            actor=actor,
            timestamp=at,
        )

    def record_subscription(
        self, valid_from: date, valid_until: date, *, actor: Actor, at: datetime
    ) -> None:
        """Emits ``UpdateSubscriptionRecorded``. Raises ``InvalidInputError``."""
        if not valid_from < valid_until:
            raise InvalidInputError(
                "valid_until",
                f"valid_until ({valid_until}) must be after valid_from ({valid_from})",
            )
        self.release_lapsed(actor=actor, at=at)
        self.trigger_event(
            self.UpdateSubscriptionRecorded,
            period=SubscriptionPeriod(valid_from, valid_until),
            actor=actor,
            timestamp=at,
        )

    def reserve(
        self, request_id: UUID, credits: int, lapses_at: datetime, *, actor: Actor, at: datetime
    ) -> None:
        """Emits ``CreditsReserved`` for ``credits`` until ``lapses_at``;
        nothing when the request already holds that much (starting twice).
        Raises ``InsufficientCreditsError`` when the credits available do not
        cover it."""
        self.release_lapsed(actor=actor, at=at)
        held = self.hold_of(request_id, at)
        if held is not None and held.amount == credits:
            return
        available = self.available(at) + (held.amount if held else 0)
        if available < credits:
            raise InsufficientCreditsError(self.customer_id, self.balance, credits, available)
        if held is not None:
            self._release(held, ReleaseCause.REVISED, actor=actor, at=at)
        self.trigger_event(
            self.CreditsReserved,
            request_id=request_id,
            amount=credits,
            lapses_at=lapses_at,
            actor=actor,
            timestamp=at,
        )

    def resize(self, request_id: UUID, credits: int, *, actor: Actor, at: datetime) -> None:
        """A held request's price changed: ``CreditsReleased`` (cause
        ``revised``) and ``CreditsReserved`` of ``credits``, lapsing when the
        old hold did. Nothing when the request holds nothing. Raises
        ``InsufficientCreditsError`` when the account cannot cover a raise."""
        self.release_lapsed(actor=actor, at=at)
        held = self.hold_of(request_id, at)
        if held is not None:
            self.reserve(request_id, credits, held.lapses_at, actor=actor, at=at)

    def release(self, request_id: UUID, cause: ReleaseCause, *, actor: Actor, at: datetime) -> None:
        """Emits ``CreditsReleased`` when the request holds credits; nothing otherwise."""
        self.release_lapsed(actor=actor, at=at)
        held = self.hold_of(request_id, at)
        if held is not None:
            self._release(held, cause, actor=actor, at=at)

    def release_lapsed(self, *, actor: Actor, at: datetime) -> None:
        """Emits ``CreditsReleased`` (cause ``lapsed``) for each lapsed hold."""
        for hold in [h for h in self.holds if not h.is_live(at)]:
            self._release(hold, ReleaseCause.LAPSED, actor=actor, at=at)

    def _release(self, hold: Hold, cause: ReleaseCause, *, actor: Actor, at: datetime) -> None:
        self.trigger_event(
            self.CreditsReleased,
            request_id=hold.request_id,
            amount=hold.amount,
            cause=cause,
            actor=actor,
            timestamp=at,
        )

    # --- queries ------------------------------------------------------------

    @property
    def holds(self) -> tuple[Hold, ...]:
        """The holds not yet released (some may have lapsed). A snapshot taken
        before holds existed has none."""
        return tuple(self.__dict__.get("_holds", ()))

    def available(self, at: datetime) -> int:
        """The balance less the holds live at ``at``."""
        return available(self.balance, self.holds, at)

    def hold_of(self, request_id: UUID, at: datetime) -> Hold | None:
        """The request's hold if it is live at ``at``."""
        return next((h for h in self.holds if h.request_id == request_id and h.is_live(at)), None)

    def has_subscription_on(self, day: date) -> bool:
        return has_subscription_on(self.subscriptions, day)

    def current_subscription(self, day: date) -> SubscriptionPeriod | None:
        """The period covering ``day``, else the latest one, else ``None``."""
        return current_subscription(self.subscriptions, day)


def available(balance: int, holds: Iterable[Hold], at: datetime) -> int:
    """``balance`` less the holds live at ``at``: the aggregate's rule, also
    for the read side, which holds the same holds in a row."""
    return balance - sum(h.amount for h in holds if h.is_live(at))


# The subscription rules over an account's periods, for the aggregate and for
# the read side, which holds the same periods in a row.


def has_subscription_on(periods: Iterable[SubscriptionPeriod], day: date) -> bool:
    return any(period.covers(day) for period in periods)


def current_subscription(
    periods: Iterable[SubscriptionPeriod], day: date
) -> SubscriptionPeriod | None:
    """The period covering ``day``, else the latest one, else ``None``."""
    periods = list(periods)
    covering = [p for p in periods if p.covers(day)]
    if covering:
        return max(covering, key=lambda p: p.valid_until)
    return max(periods, key=lambda p: p.valid_until, default=None)


# How the audit trail names the account's events (the movements read model,
# ``ledger export-audit``, the movements CSV and statements).

#: The events that move credits, by kind.
MOVEMENT_KINDS: dict[type[Any], str] = {
    CustomerAccount.CreditsPurchased: "purchase",
    CustomerAccount.CreditsCharged: "charge",
    CustomerAccount.CreditsRefunded: "refund",
    CustomerAccount.BalanceAdjusted: "adjustment",
}
#: The holds: in the trail as entries of zero credits with the credits held,
#: so finance sees every reservation and its end without taking them for money.
HOLD_KINDS: dict[type[Any], str] = {
    CustomerAccount.CreditsReserved: "reservation",
    CustomerAccount.CreditsReleased: "release",
}


def hold_reason(event: Any) -> str:
    """The trail's reason of a hold entry: when a reservation lapses, why a
    release happened."""
    if isinstance(event, CustomerAccount.CreditsReserved):
        return f"lapses at {event.lapses_at.isoformat(timespec='seconds')}"
    return str(event.cause)
