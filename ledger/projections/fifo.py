"""Valuing outstanding credits at what was paid for them: first-in first-out.

The rule (a reporting decision; the policy is silent on it):

- **Lots.** Every paid invoice (``CreditsPurchased``) opens a lot on the
  customer's account: its credits and the USD paid for them. A positive
  adjustment (``BalanceAdjusted`` > 0: goodwill, correction) opens a lot
  worth USD 0. Lots are per account and ordered by the position of the
  event that opened them.
- **Consumption.** A charge (``CreditsCharged``) and a negative adjustment
  take credits from the account's oldest lots that still have credits
  (first in, first out). What a charge took is remembered per request and
  lot.
- **Refunds.** A refund (``CreditsRefunded``) gives credits back to the lots
  that request's charge took them from, at those lots' prices, the
  last-taken lot first (undoing the charge in reverse), and those lots are
  again the first to be consumed if they are the oldest.
- **Value.** A lot's remaining credits are worth ``amount_usd * remaining /
  credits`` (its own unit price, exact in ``Decimal``); the liability is the
  sum over all lots, rounded to the cent (half up) once, at the end.

So the remaining credits of an account always equal its balance (every
movement goes through a lot), and a USD 0 goodwill lot lowers the average
value of a balance without changing any paid lot's price.

The functions here are pure; ``ledger.projections.summary`` stores the lots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

CENT = Decimal("0.01")


@dataclass
class Lot:
    lot: int  # the position of the event that opened it
    account_id: UUID
    credits: int
    amount_usd: Decimal
    remaining: int

    def value(self) -> Decimal:
        return self.amount_usd * self.remaining / self.credits


class LotsExhaustedError(RuntimeError):
    """More credits were taken than the lots hold: the events and the lots
    disagree (the balance is never negative, so this is a bug, or a stored
    value was changed). The summary read model adds the account and the
    position of the event it could not apply."""

    def __init__(
        self, message: str, *, account_id: UUID | None = None, position: int | None = None
    ) -> None:
        where = []
        if account_id is not None:
            where.append(f"account {account_id}")
        if position is not None:
            where.append(f"event at position {position}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.reason = message
        self.account_id = account_id
        self.position = position


def consume(lots: Iterable[Lot], credits: int) -> list[tuple[int, int]]:
    """Take ``credits`` from the oldest lots with credits left (``lots`` in
    opening order); return ``(lot, credits taken)`` in the order taken."""
    taken: list[tuple[int, int]] = []
    left = credits
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            lot.remaining -= take
            left -= take
            taken.append((lot.lot, take))
    if left:
        raise LotsExhaustedError(f"{left} of {credits} credits found no lot")
    return taken


def restore(lots: dict[int, Lot], taken: dict[int, int], credits: int) -> dict[int, int]:
    """Give ``credits`` back to the lots in ``taken`` (lot -> credits still
    refundable), last-taken lot first; return the new ``taken``."""
    left = credits
    after = dict(taken)
    for lot_id in sorted(taken, reverse=True):
        if left == 0:
            break
        give = min(after[lot_id], left)
        lots[lot_id].remaining += give
        after[lot_id] -= give
        left -= give
    if left:
        raise LotsExhaustedError(f"{left} of {credits} refunded credits were never charged")
    return after


def liability(lots: Iterable[Lot]) -> Decimal:
    total = sum((lot.value() for lot in lots if lot.remaining), Decimal(0))
    return total.quantize(CENT, rounding=ROUND_HALF_UP)
