"""The bodies and answers of ``/v1/price-list`` and ``/v1/price-lists``
(API-1.1.md, "Price lists"). The shape is ``PriceList.to_data``'s; the rules
of a whole list (every category, sane figures) are the policy's, which
answers 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from api.schemas import MAX_INT, Body, Out, UsdIn, UsdOut
from ledger.policy import PriceList

Count = Annotated[int, Field(strict=True, ge=0, le=MAX_INT)]
CategoryKey = Annotated[str, Field(strict=True, max_length=100)]


class PackageIn(Body):
    credits: Annotated[int, Field(strict=True, ge=1, le=MAX_INT)]
    amount_usd: UsdIn


class StoreUpdateFormula(Body):
    base: Count
    included_steps: Count
    per_step: Count


class PublishPriceListIn(Body):
    """A new version: ``effective_from`` (ISO 8601 with an offset, now or
    later; now when left out), and the whole list."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "effective_from": "2026-03-09T00:00:00+04:00",
                    "packages": [
                        {"credits": 80, "amount_usd": "95.00"},
                        {"credits": 160, "amount_usd": "180.00"},
                        {"credits": 320, "amount_usd": "360.00"},
                    ],
                    "categories": {
                        "functionality_explanation": 5,
                        "configuration": 12,
                        "installation": 20,
                        "investigation": 20,
                        "complex_modification": None,
                        "addon_update": 40,
                        "theme_update": 100,
                        "store_update": 20,
                        "security_fix": 0,
                        "compatibility_fix": 0,
                    },
                    "store_update": {"base": 20, "included_steps": 2, "per_step": 5},
                }
            ]
        },
    )

    effective_from: Annotated[str, Field(strict=True, max_length=64)] | None = None
    packages: Annotated[list[PackageIn], Field(min_length=1, max_length=100)]
    categories: Annotated[dict[CategoryKey, Count | None], Field(max_length=100)]
    store_update: StoreUpdateFormula
    minimums: Annotated[dict[CategoryKey, Count], Field(max_length=100)] | None = None
    free_categories: Annotated[list[CategoryKey], Field(max_length=100)] | None = None
    subscription_categories: Annotated[list[CategoryKey], Field(max_length=100)] | None = None


class PackageOut(Out):
    credits: int
    amount_usd: UsdOut


class StoreUpdateOut(Out):
    base: int
    included_steps: int
    per_step: int


_LIST_EXAMPLE: dict[str, Any] = {
    "version": 1,
    "effective_from": "2026-01-01T00:00:00+00:00",
    "packages": [{"credits": 80, "amount_usd": "90.00"}],
    "categories": {"configuration": 10, "complex_modification": None},
    "minimums": {"complex_modification": 20},
    "store_update": {"base": 20, "included_steps": 2, "per_step": 5},
    "free_categories": ["security_fix"],
    "subscription_categories": ["theme_update"],
}


class PriceListOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [_LIST_EXAMPLE]})
    version: int
    effective_from: datetime
    packages: list[PackageOut]
    categories: dict[str, int | None]
    minimums: dict[str, int]
    store_update: StoreUpdateOut
    free_categories: list[str]
    subscription_categories: list[str]

    @classmethod
    def of(cls, price_list: PriceList) -> PriceListOut:
        return cls.model_validate(
            {
                "version": price_list.version,
                "effective_from": price_list.effective_from,
                **price_list.to_data(),
            }
        )


class PriceListsOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [{"versions": [_LIST_EXAMPLE]}]})
    versions: list[PriceListOut] = Field(description="every version, oldest first")


class PriceListPublishedOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"version": 2, "effective_from": "2027-01-04T00:00:00+04:00", "position": 30}
            ]
        }
    )
    version: int
    effective_from: datetime
    position: int
