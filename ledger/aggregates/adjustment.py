"""A large balance adjustment awaiting a second finance key (four eyes).

Invariants owned here: an adjustment whose size exceeds the limit changes no
balance when proposed; it is approved or rejected once, never by the key that
proposed it; its approval and the account's ``BalanceAdjusted`` are one
atomic append, and the balance rule (never below zero, holds respected) is
checked then, on the balance of that moment.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ledger.aggregates.account import CustomerAccount
from ledger.errors import AdjustmentDecidedError, FourEyesError
from ledger.validation import required_text
from ledger.values import Actor


class AdjustmentStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class Adjustment(Aggregate):
    class AdjustmentProposed(Aggregate.Created):
        account_id: UUID
        customer_id: str
        credits: int
        reason: str
        actor: Actor

    class AdjustmentApproved(Aggregate.Event):
        balance_after: int
        actor: Actor

        def apply(self, adjustment: Adjustment) -> None:
            adjustment.status = AdjustmentStatus.APPROVED
            adjustment.decided_by = self.actor

    class AdjustmentRejected(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, adjustment: Adjustment) -> None:
            adjustment.status = AdjustmentStatus.REJECTED
            adjustment.decided_by = self.actor

    def __init__(
        self, account_id: UUID, customer_id: str, credits: int, reason: str, actor: Actor
    ) -> None:
        self.account_id = account_id
        self.customer_id = customer_id
        self.credits = credits
        self.reason = reason
        self.proposed_by = actor
        self.status = AdjustmentStatus.PROPOSED
        self.decided_by: Actor | None = None

    @classmethod
    def propose(
        cls, account: CustomerAccount, credits: int, reason: str, *, actor: Actor, at: datetime
    ) -> Adjustment:
        """Emits ``AdjustmentProposed`` for credits the policy module validated."""
        return cls._create(
            cls.AdjustmentProposed,
            id=uuid4(),
            account_id=account.id,
            customer_id=account.customer_id,
            credits=credits,
            reason=required_text("reason", reason),
            actor=actor,
            timestamp=at,
        )

    def approve(self, account: CustomerAccount, *, actor: Actor, at: datetime) -> None:
        """Emits the account's ``BalanceAdjusted`` and ``AdjustmentApproved``.
        Raises ``AdjustmentDecidedError``, ``FourEyesError``,
        ``AdjustmentBelowZeroError``."""
        self._check_decidable(actor)
        account.adjust(self.credits, self.reason, actor=actor, at=at)
        self.trigger_event(
            self.AdjustmentApproved, balance_after=account.balance, actor=actor, timestamp=at
        )

    def reject(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Emits ``AdjustmentRejected`` (a reason is needed). Raises
        ``AdjustmentDecidedError``, ``FourEyesError``, ``InvalidInputError``."""
        self._check_decidable(actor)
        self.trigger_event(
            self.AdjustmentRejected,
            reason=required_text("reason", reason),
            actor=actor,
            timestamp=at,
        )

    def _check_decidable(self, actor: Actor) -> None:
        if self.status is not AdjustmentStatus.PROPOSED:
            raise AdjustmentDecidedError(self.id, self.status.value)
        if actor == self.proposed_by:
            raise FourEyesError(self.id, str(self.proposed_by))
