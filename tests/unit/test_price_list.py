"""The price list as a value (issue 14): the rules of ``ledger.policy`` read
their numbers from a version; version 1 is POLICY.md's list, and a list is
validated whole, refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.errors import InvalidInputError
from ledger.policy import (
    CATEGORY_PRICES,
    DEFAULT_PRICE_LIST,
    PACKAGES,
    Category,
    PriceList,
    custom_package,
    opening_price,
    price_list_from_data,
    price_list_in_force,
    standard_package,
    store_update_price,
)

LATER = datetime(2026, 3, 9, tzinfo=UTC)


def data(**changes: Any) -> dict[str, Any]:
    base = DEFAULT_PRICE_LIST.to_data()
    base.update(changes)
    return base


def version_2() -> PriceList:
    return price_list_from_data(
        data(
            categories={**data()["categories"], "configuration": 12, "store_update": 30},
            store_update={"base": 30, "included_steps": 1, "per_step": 7},
            packages=[{"credits": 100, "amount_usd": "110.00"}],
            minimums={"complex_modification": 35},
        ),
        version=2,
        effective_from=LATER,
        previous=DEFAULT_PRICE_LIST,
    )


VERSIONS = [
    pytest.param(DEFAULT_PRICE_LIST, id="v1"),
    pytest.param(version_2(), id="v2"),
]


def test_version_1_is_the_policys_list() -> None:
    v1 = DEFAULT_PRICE_LIST
    assert (v1.version, v1.categories, v1.packages) == (1, CATEGORY_PRICES, PACKAGES)
    assert v1.minimum(Category.COMPLEX_MODIFICATION) == 20
    assert v1.minimum(Category.CONFIGURATION) == 0
    assert (
        price_list_from_data(v1.to_data(), version=1, effective_from=v1.effective_from, previous=v1)
        == v1
    )


@pytest.mark.parametrize("prices", VERSIONS)
@pytest.mark.parametrize("category", [c for c in Category if c is not Category.STORE_UPDATE])
def test_each_category_opens_at_its_versions_price(prices: PriceList, category: Category) -> None:
    assert opening_price(category, prices=prices) == prices.categories[category]


@pytest.mark.parametrize(("prices", "expected"), [(DEFAULT_PRICE_LIST, 30), (version_2(), 51)])
def test_the_store_update_formula_is_the_versions(prices: PriceList, expected: int) -> None:
    # 4.4.1 -> 4.4.5: four steps
    assert store_update_price("4.4.1", "4.4.5", prices=prices) == expected
    formula = prices.store_update
    assert expected == formula.base + formula.per_step * (4 - formula.included_steps)


@pytest.mark.parametrize("prices", VERSIONS)
def test_the_standard_packages_are_the_versions(prices: PriceList) -> None:
    for credits, package in prices.packages.items():
        assert standard_package(credits, prices) == package
        assert custom_package(credits, package.amount_usd, prices).standard
    with pytest.raises(InvalidInputError):
        standard_package(999, prices)


def test_a_package_of_one_version_is_custom_under_another() -> None:
    assert not custom_package(100, "110.00").standard
    assert custom_package(100, "110.00", version_2()).standard
    with pytest.raises(InvalidInputError):
        standard_package(80, version_2())


def test_the_version_in_force_is_the_latest_already_effective() -> None:
    lists = [DEFAULT_PRICE_LIST, version_2()]
    assert price_list_in_force(lists, LATER - timedelta(microseconds=1)).version == 1
    assert price_list_in_force(lists, LATER).version == 2


def _without(name: str) -> dict[str, Any]:
    values = data()
    del values[name]
    return values


INVALID = [
    (_without("packages"), "packages"),
    (_without("categories"), "categories"),
    (_without("store_update"), "store_update"),
    (data(packages=[]), "packages"),
    (data(packages=[{"credits": 0, "amount_usd": "1.00"}]), "packages[0].credits"),
    (data(packages=[{"credits": 80, "amount_usd": "0.00"}]), "packages[0].amount_usd"),
    (data(packages=[{"credits": 80, "amount_usd": "9.999"}]), "packages[0].amount_usd"),
    (data(packages=[{"credits": 80, "amount_usd": 90.0}]), "packages[0].amount_usd"),
    (
        data(packages=[{"credits": 80, "amount_usd": "9.00"}, {"credits": 80, "amount_usd": "1"}]),
        "packages[1].credits",
    ),
    (data(categories={**data()["categories"], "configuration": -1}), "categories.configuration"),
    (data(categories={**data()["categories"], "configuration": 1.5}), "categories.configuration"),
    (
        data(categories={**data()["categories"], "configuration": 10**10}),
        "categories.configuration",
    ),
    (data(categories={**data()["categories"], "haircut": 5}), "categories.haircut"),
    (
        data(categories={k: v for k, v in data()["categories"].items() if k != "installation"}),
        "categories.installation",
    ),
    (data(categories={**data()["categories"], "security_fix": 5}), "categories.security_fix"),
    (data(categories={**data()["categories"], "store_update": 21}), "categories.store_update"),
    (data(store_update={"base": 20, "included_steps": 2}), "store_update"),
    (
        data(store_update={"base": 20, "included_steps": -2, "per_step": 5}),
        "store_update.included_steps",
    ),
    (data(minimums={"complex_modification": -1}), "minimums.complex_modification"),
    (data(free_categories=["nothing"]), "free_categories"),
    (data(colour="red"), "colour"),
]


@pytest.mark.parametrize(("values", "field"), INVALID)
def test_an_invalid_list_is_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        price_list_from_data(values, version=2, effective_from=LATER, previous=DEFAULT_PRICE_LIST)
    assert info.value.field == field


def test_a_naive_effective_from_is_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        price_list_from_data(
            data(), version=2, effective_from=datetime(2026, 3, 9), previous=DEFAULT_PRICE_LIST
        )
    assert info.value.field == "effective_from"


def test_amounts_are_exact_decimals() -> None:
    assert version_2().packages[100].amount_usd == Decimal("110.00")
