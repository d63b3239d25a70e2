"""The commands on a customer's account: open it, adjust its balance, record
its update subscription."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregates import Adjustment, CustomerAccount, account_id_for
from ledger.commands.cycle import Command
from ledger.commands.results import (
    AdjustBalanceResult,
    OpenAccountResult,
    RecordSubscriptionResult,
)
from ledger.errors import AccountAlreadyExistsError
from ledger.permissions import Action
from ledger.policy import validate_credits
from ledger.values import Actor

if TYPE_CHECKING:
    from ledger.application import Ledger


def account_needs(customer_id: object) -> list[tuple[UUID, bool]]:
    """What a command on the account of ``customer_id`` needs (``Command.needs``):
    that account, whose type has snapshots (nothing for an id that is none)."""
    if not isinstance(customer_id, str) or not customer_id:
        return []
    return [(account_id_for(customer_id), True)]


@dataclass(frozen=True)
class OpenAccount(Command[OpenAccountResult]):
    """Emits ``CustomerAccount.Opened``. Raises ``AccountAlreadyExistsError``,
    ``InvalidInputError``."""

    action = Action.OPEN_ACCOUNT

    customer_id: str
    name: str

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return account_needs(self.customer_id)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], OpenAccountResult]:
        account = CustomerAccount.open(self.customer_id, self.name, actor=actor, at=at)
        if ledger._load(account.id, snapshots=True) is not None:
            raise AccountAlreadyExistsError(account.customer_id)
        return [account], OpenAccountResult(account.customer_id, account.name, 0)


@dataclass(frozen=True)
class AdjustBalance(Command[AdjustBalanceResult]):
    """Emits ``BalanceAdjusted`` (signed, not zero, with a reason); one larger
    than ``ledger.adjustment_limit`` in absolute size emits
    ``AdjustmentProposed`` instead and waits for another finance key
    (``ledger.commands.adjustments``). Raises ``AdjustmentBelowZeroError``,
    ``InvalidInputError``, ``UnknownAccountError``."""

    action = Action.ADJUST_BALANCE

    customer_id: str
    credits: int
    reason: str

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return account_needs(self.customer_id)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], AdjustBalanceResult]:
        account = ledger._account(self.customer_id)
        credits = validate_credits("credits", self.credits, allow_negative=True)
        if abs(credits) > ledger.adjustment_limit:
            proposal = Adjustment.propose(account, credits, self.reason, actor=actor, at=at)
            return [proposal], AdjustBalanceResult(
                account.customer_id,
                account.balance,
                status=proposal.status.value,
                adjustment_id=proposal.id,
            )
        account.adjust(credits, self.reason, actor=actor, at=at)
        return [account], AdjustBalanceResult(account.customer_id, account.balance)


@dataclass(frozen=True)
class RecordSubscription(Command[RecordSubscriptionResult]):
    """Emits ``UpdateSubscriptionRecorded`` for ``[valid_from, valid_until)``.
    Raises ``InvalidInputError``, ``UnknownAccountError``."""

    action = Action.RECORD_SUBSCRIPTION

    customer_id: str
    valid_from: date
    valid_until: date

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return account_needs(self.customer_id)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], RecordSubscriptionResult]:
        account = ledger._account(self.customer_id)
        account.record_subscription(self.valid_from, self.valid_until, actor=actor, at=at)
        return [account], RecordSubscriptionResult(
            account.customer_id, self.valid_from, self.valid_until
        )
