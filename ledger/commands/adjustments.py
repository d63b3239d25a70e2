"""The commands on a proposed adjustment (four eyes): another finance key
approves it, applying it to the account in the same append, or rejects it
with a reason. Adjustments are proposed by ``AdjustBalance`` when their size
exceeds ``ledger.adjustment_limit`` (``ledger.commands.accounts``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregates import CustomerAccount
from ledger.commands.cycle import Command
from ledger.commands.results import AdjustmentDecisionResult
from ledger.permissions import Action
from ledger.values import Actor

if TYPE_CHECKING:
    from ledger.application import Ledger


@dataclass(frozen=True)
class ApproveAdjustment(Command[AdjustmentDecisionResult]):
    """Emits ``AdjustmentApproved`` and the account's ``BalanceAdjusted`` in
    one append. Raises ``FourEyesError`` (the proposer's own key),
    ``AdjustmentDecidedError``, ``AdjustmentBelowZeroError`` (checked now),
    ``UnknownAdjustmentError``."""

    action = Action.DECIDE_ADJUSTMENT

    adjustment_id: UUID

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], AdjustmentDecisionResult]:
        adjustment = ledger._adjustment(self.adjustment_id)
        account = ledger._get(CustomerAccount, adjustment.account_id, adjustment.customer_id)
        adjustment.approve(account, actor=actor, at=at)
        return [adjustment, account], AdjustmentDecisionResult(
            adjustment.id, adjustment.customer_id, adjustment.status.value, account.balance
        )


@dataclass(frozen=True)
class RejectAdjustment(Command[AdjustmentDecisionResult]):
    """Emits ``AdjustmentRejected`` (with a reason); the balance is unchanged.
    Raises ``FourEyesError``, ``AdjustmentDecidedError``,
    ``InvalidInputError``, ``UnknownAdjustmentError``."""

    action = Action.DECIDE_ADJUSTMENT

    adjustment_id: UUID
    reason: str

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], AdjustmentDecisionResult]:
        adjustment = ledger._adjustment(self.adjustment_id)
        account = ledger._get(CustomerAccount, adjustment.account_id, adjustment.customer_id)
        adjustment.reject(self.reason, actor=actor, at=at)
        return [adjustment], AdjustmentDecisionResult(
            adjustment.id, adjustment.customer_id, adjustment.status.value, account.balance
        )
