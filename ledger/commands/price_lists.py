"""The command on the price lists: publish a new version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.aggregates import PriceLists
from ledger.commands.cycle import Command
from ledger.commands.results import PublishPriceListResult
from ledger.errors import InvalidInputError
from ledger.permissions import Action
from ledger.policy import price_list_from_data
from ledger.values import Actor

if TYPE_CHECKING:
    from ledger.application import Ledger


@dataclass(frozen=True)
class PublishPriceList(Command[PublishPriceListResult]):
    """Emits ``PriceListPublished`` (and ``PriceListsStarted`` with the first
    one): the next version, validated whole, in force from ``effective_from``
    (now when not given). Raises ``InvalidInputError`` naming the field (an
    incomplete or wrong list, an ``effective_from`` in the past or not after
    the latest version's)."""

    action = Action.PUBLISH_PRICE_LIST

    packages: Any
    categories: Any
    store_update: Any
    effective_from: datetime | None = None
    minimums: Any = None
    free_categories: Any = None
    subscription_categories: Any = None

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], PublishPriceListResult]:
        effective_from = at if self.effective_from is None else self.effective_from
        if not isinstance(effective_from, datetime):
            raise InvalidInputError("effective_from", "effective_from must be a time")
        lists = ledger._price_lists() or PriceLists.start(actor=actor, at=at)
        price_list = price_list_from_data(
            {
                "packages": self.packages,
                "categories": self.categories,
                "store_update": self.store_update,
                "minimums": self.minimums,
                "free_categories": self.free_categories,
                "subscription_categories": self.subscription_categories,
            },
            version=lists.latest.version + 1,
            effective_from=effective_from,
            previous=lists.latest,
        )
        lists.publish(price_list, actor=actor, at=at)
        return [lists], PublishPriceListResult(price_list.version, price_list.effective_from)
