"""The price lists: one stream of published versions.

Invariants owned here:
- version 1 is the policy's list (``ledger.policy.DEFAULT_PRICE_LIST``),
  implicit: it is in force on a store where nobody published anything, and
  nothing is written to make it so (a read never writes);
- each published version is the next number, takes effect strictly after the
  latest one and not before the moment it is published, and carries the whole
  list, so an event alone says what a version priced;
- a published version is never changed: a mistake is corrected by publishing
  another.

The stream has one fixed id (``PRICE_LISTS_ID``, a ``uuid5``), so two
concurrent publishers collide in the store and one of them decides again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidInputError
from ledger.policy import (
    DEFAULT_PRICE_LIST,
    Category,
    Package,
    PriceList,
    StoreUpdateFormula,
)
from ledger.values import Actor

PRICE_LISTS_ID = uuid5(NAMESPACE_URL, "urn:ledger:price-lists")


class PriceLists(Aggregate):
    """Every version of the price list, oldest first (version 1 implicit)."""

    class PriceListsStarted(Aggregate.Created):
        """The stream's first event, written with the first published version."""

        actor: Actor

    class PriceListPublished(Aggregate.Event):
        price_list_version: int
        effective_from: datetime
        packages: list[dict[str, Any]]
        categories: dict[str, int | None]
        minimums: dict[str, int]
        store_update: dict[str, int]
        free_categories: list[str]
        subscription_categories: list[str]
        actor: Actor

        def apply(self, lists: PriceLists) -> None:
            lists.versions.append(price_list_of(self))

    def __init__(self, actor: Actor) -> None:
        self.versions: list[PriceList] = [DEFAULT_PRICE_LIST]

    @classmethod
    def start(cls, *, actor: Actor, at: datetime) -> PriceLists:
        return cls._create(cls.PriceListsStarted, id=PRICE_LISTS_ID, actor=actor, timestamp=at)

    @property
    def latest(self) -> PriceList:
        return self.versions[-1]

    def publish(self, price_list: PriceList, *, actor: Actor, at: datetime) -> None:
        """Emits ``PriceListPublished``. Raises ``InvalidInputError`` on
        ``effective_from`` when it is before ``at`` or not after the latest
        version's, and on ``version`` when it is not the next number."""
        if price_list.version != self.latest.version + 1:
            raise InvalidInputError(
                "version", f"the next price list is version {self.latest.version + 1}"
            )
        if price_list.effective_from < at:
            raise InvalidInputError(
                "effective_from",
                f"effective_from {price_list.effective_from.isoformat()} is in the past; "
                "a price list takes effect now or later",
            )
        if price_list.effective_from <= self.latest.effective_from:
            raise InvalidInputError(
                "effective_from",
                f"effective_from must be after {self.latest.effective_from.isoformat()}, "
                f"when version {self.latest.version} takes effect",
            )
        data = price_list.to_data()
        self.trigger_event(
            self.PriceListPublished,
            price_list_version=price_list.version,
            effective_from=price_list.effective_from,
            packages=data["packages"],
            categories=data["categories"],
            minimums=data["minimums"],
            store_update=data["store_update"],
            free_categories=data["free_categories"],
            subscription_categories=data["subscription_categories"],
            actor=actor,
            timestamp=at,
        )


def price_list_of(event: PriceLists.PriceListPublished) -> PriceList:
    """The list an event published, as it was validated then (not again)."""
    return PriceList(
        version=event.price_list_version,
        effective_from=event.effective_from,
        packages=MappingProxyType(
            {
                int(p["credits"]): Package(
                    int(p["credits"]), Decimal(p["amount_usd"]), standard=True
                )
                for p in event.packages
            }
        ),
        categories=MappingProxyType({Category(k): v for k, v in event.categories.items()}),
        minimums=MappingProxyType({Category(k): v for k, v in event.minimums.items()}),
        store_update=StoreUpdateFormula(
            event.store_update["base"],
            event.store_update["included_steps"],
            event.store_update["per_step"],
        ),
        free_categories=frozenset(Category(c) for c in event.free_categories),
        subscription_categories=frozenset(Category(c) for c in event.subscription_categories),
    )
