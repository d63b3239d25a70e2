"""The price list, packages, money and the support calendar (ledger.policy)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import (
    InvalidInputError,
    InvalidStoreUpdateError,
    LedgerError,
    PriceBelowMinimumError,
    UnknownCategoryError,
)
from ledger.policy import (
    CATEGORY_PRICES,
    COMPLEX_MODIFICATION_MINIMUM,
    DEFAULT_CALENDAR,
    FREE_CATEGORIES,
    MAX_CREDITS,
    PACKAGES,
    SUBSCRIPTION_CATEGORIES,
    Category,
    Package,
    SupportCalendar,
    custom_package,
    opening_price,
    parse_category,
    standard_package,
    store_update_price,
    usd,
    validate_credits,
    validate_price,
)

SAMARA = ZoneInfo("Europe/Samara")
BERLIN = ZoneInfo("Europe/Berlin")


def samara(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SAMARA)


def field_of(error: LedgerError) -> Any:
    """The input field an error names (errors carry it among their ``fields()``)."""
    return error.fields()["field"]


# --- categories and prices --------------------------------------------------

POLICY_PRICES = [
    ("functionality_explanation", 5),
    ("configuration", 10),
    ("installation", 20),
    ("investigation", 20),
    ("complex_modification", None),
    ("addon_update", 40),
    ("theme_update", 100),
    ("store_update", 20),
    ("security_fix", 0),
    ("compatibility_fix", 0),
]


def test_the_price_list_has_exactly_the_policy_categories() -> None:
    assert {c.value for c in Category} == {key for key, _ in POLICY_PRICES}
    assert set(CATEGORY_PRICES) == set(Category)


@pytest.mark.parametrize(("key", "price"), POLICY_PRICES)
def test_each_category_costs_what_the_policy_says(key: str, price: int | None) -> None:
    assert CATEGORY_PRICES[parse_category(key)] == price


def test_complex_modification_is_priced_by_the_specialist_from_20() -> None:
    assert CATEGORY_PRICES[Category.COMPLEX_MODIFICATION] is None
    assert COMPLEX_MODIFICATION_MINIMUM == 20


def test_addon_and_theme_updates_need_a_subscription() -> None:
    assert frozenset({Category.ADDON_UPDATE, Category.THEME_UPDATE}) == SUBSCRIPTION_CATEGORIES


def test_security_and_compatibility_fixes_are_free() -> None:
    assert frozenset({Category.SECURITY_FIX, Category.COMPATIBILITY_FIX}) == FREE_CATEGORIES
    assert all(CATEGORY_PRICES[c] == 0 for c in FREE_CATEGORIES)


def test_the_price_list_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        CATEGORY_PRICES[Category.CONFIGURATION] = 1  # type: ignore[index]


@pytest.mark.parametrize("value", ["Configuration", "", " configuration", "store-update", "x"])
def test_an_unknown_category_is_refused_with_the_known_keys(value: str) -> None:
    with pytest.raises(UnknownCategoryError) as caught:
        parse_category(value)
    assert field_of(caught.value) == "category"
    assert caught.value.fields()["category"] == value
    assert "functionality_explanation" in caught.value.detail
    assert "compatibility_fix" in caught.value.detail


def test_a_category_that_is_not_text_is_unknown() -> None:
    with pytest.raises(UnknownCategoryError):
        parse_category(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "price"), [p for p in POLICY_PRICES if p[0] != "store_update"])
def test_the_opening_price_is_the_category_price(key: str, price: int | None) -> None:
    assert opening_price(Category(key)) == price


def test_the_opening_price_accepts_a_category_key_as_text() -> None:
    assert opening_price("configuration") == 10  # type: ignore[arg-type]


def test_the_opening_price_of_a_store_update_is_computed_from_the_versions() -> None:
    price = opening_price(Category.STORE_UPDATE, from_version="4.4.1", to_version="4.4.4")
    assert price == 25


@pytest.mark.parametrize(
    ("versions", "missing"),
    [
        ({"to_version": "4.4.4"}, "from_version"),
        ({"from_version": "4.4.1"}, "to_version"),
        ({}, "from_version"),
    ],
)
def test_a_store_update_without_both_versions_is_refused(
    versions: dict[str, Any], missing: str
) -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        opening_price(Category.STORE_UPDATE, **versions)
    assert field_of(caught.value) == missing
    assert "needs" in caught.value.detail


@pytest.mark.parametrize("category", [c for c in Category if c is not Category.STORE_UPDATE])
@pytest.mark.parametrize("version_field", ["from_version", "to_version"])
def test_version_fields_are_refused_outside_a_store_update(
    category: Category, version_field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        opening_price(category, **{version_field: "4.4.1"})  # type: ignore[arg-type]
    assert field_of(caught.value) == version_field
    assert "only for store_update" in caught.value.detail


@pytest.mark.parametrize("category", sorted(FREE_CATEGORIES))
def test_a_free_request_with_third_party_code_opens_free_for_the_specialist_to_revise(
    category: Category,
) -> None:
    assert opening_price(category, third_party=True) == 0


def test_a_store_update_with_third_party_solutions_is_refused_at_opening() -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        opening_price(
            Category.STORE_UPDATE, from_version="4.4.1", to_version="4.4.2", third_party=True
        )
    assert field_of(caught.value) == "third_party"
    assert "complex_modification" in caught.value.detail


def test_third_party_must_be_true_or_false() -> None:
    with pytest.raises(InvalidInputError) as caught:
        opening_price(Category.INVESTIGATION, third_party="yes")  # type: ignore[arg-type]
    assert field_of(caught.value) == "third_party"


# --- store_update -----------------------------------------------------------


@pytest.mark.parametrize(
    ("from_version", "to_version", "price"),
    [
        ("4.4.1", "4.4.2", 20),
        ("4.4.1", "4.4.3", 20),
        ("4.4.1", "4.4.4", 25),
        ("4.4.0", "4.4.9", 55),
        ("4.4.1", "4.4.5", 30),
        ("0.0.0", "0.0.1", 20),
        ("4.4.1", "4.4.13", 70),
        ("10.20.30", "10.20.35", 35),
        ("4.4.9", "4.4.10", 20),
    ],
)
def test_a_store_update_costs_20_plus_5_per_patch_beyond_two(
    from_version: str, to_version: str, price: int
) -> None:
    assert store_update_price(from_version, to_version) == price


MALFORMED_VERSIONS = [
    "v4.4.1",
    "4.4",
    "4",
    "4.4.1.2",
    "4.4.-1",
    "4.4.x",
    "",
    " 4.4.1",
    "4.4.1\n",
    "4.04.1",
    "4.4.1-beta",
    "٤.4.1",
    "4..1",
    "1234567890.0.0",
]


@pytest.mark.parametrize("version", MALFORMED_VERSIONS)
def test_a_malformed_from_version_is_refused_with_the_expected_form(version: str) -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        store_update_price(version, "4.4.3")
    assert field_of(caught.value) == "from_version"
    assert "MAJOR.MINOR.PATCH" in caught.value.detail


@pytest.mark.parametrize("version", [*MALFORMED_VERSIONS, None, 443])
def test_a_malformed_to_version_is_refused_with_the_expected_form(version: Any) -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        store_update_price("4.4.1", version)
    assert field_of(caught.value) == "to_version"
    assert "MAJOR.MINOR.PATCH" in caught.value.detail


@pytest.mark.parametrize(
    ("from_version", "to_version"),
    [("4.4.3", "4.4.3"), ("4.4.3", "4.4.2"), ("4.5.0", "4.4.9"), ("5.0.0", "4.9.9")],
)
def test_a_store_update_to_a_lower_or_equal_version_is_refused(
    from_version: str, to_version: str
) -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        store_update_price(from_version, to_version)
    assert field_of(caught.value) == "to_version"
    assert "must be higher than from_version" in caught.value.detail


@pytest.mark.parametrize(
    ("from_version", "to_version"),
    [("4.4.9", "4.5.0"), ("4.4.1", "4.5.1"), ("4.4.1", "5.0.0"), ("4.4.1", "5.4.1")],
)
def test_a_store_update_across_minor_or_major_versions_points_to_complex_modification(
    from_version: str, to_version: str
) -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        store_update_price(from_version, to_version)
    assert field_of(caught.value) == "to_version"
    assert "open a complex_modification request instead" in caught.value.detail


def test_a_store_update_with_third_party_solutions_points_to_complex_modification() -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        store_update_price("4.4.1", "4.4.2", third_party=True)
    assert field_of(caught.value) == "third_party"
    assert "open a complex_modification request instead" in caught.value.detail


def test_a_store_update_priced_beyond_the_credit_bound_points_to_complex_modification() -> None:
    with pytest.raises(InvalidStoreUpdateError) as caught:
        store_update_price("0.0.0", "0.0.999999999")
    assert field_of(caught.value) == "to_version"
    assert "complex_modification" in caught.value.detail


def test_store_update_errors_are_invalid_input() -> None:
    assert issubclass(InvalidStoreUpdateError, InvalidInputError)


# --- prices and credit amounts ----------------------------------------------


@pytest.mark.parametrize(
    ("price", "minimum"), [(0, 0), (5, 0), (20, 20), (MAX_CREDITS, 0), (MAX_CREDITS, 20)]
)
def test_a_whole_price_within_bounds_is_accepted(price: int, minimum: int) -> None:
    assert validate_price("price", price, minimum=minimum) == price


@pytest.mark.parametrize(("price", "minimum"), [(19, 20), (0, 20), (-5, 20)])
def test_a_price_below_the_minimum_is_refused_with_both_numbers(price: int, minimum: int) -> None:
    with pytest.raises(PriceBelowMinimumError) as caught:
        validate_price("price", price, minimum=minimum)
    assert caught.value.fields() == {"field": "price", "price": price, "minimum": minimum}


@pytest.mark.parametrize(
    ("price", "words"),
    [
        (-1, "negative"),
        (MAX_CREDITS + 1, "at most"),
        (-MAX_CREDITS - 1, "at most"),
        (True, "whole number"),
        (20.0, "whole number"),
        ("20", "whole number"),
        (None, "whole number"),
    ],
)
def test_a_price_that_is_not_a_bounded_whole_number_is_refused(price: Any, words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_price("surcharge", price)
    assert type(caught.value) is InvalidInputError
    assert field_of(caught.value) == "surcharge"
    assert words in caught.value.detail


@pytest.mark.parametrize(
    ("credits", "allow_negative"),
    [(1, False), (MAX_CREDITS, False), (-5, True), (-MAX_CREDITS, True), (7, True)],
)
def test_non_zero_bounded_credits_are_accepted(credits: int, allow_negative: bool) -> None:
    assert validate_credits("credits", credits, allow_negative=allow_negative) == credits


@pytest.mark.parametrize(
    ("credits", "allow_negative", "words"),
    [
        (0, False, "zero"),
        (0, True, "zero"),
        (-1, False, "positive"),
        (MAX_CREDITS + 1, False, "at most"),
        (-MAX_CREDITS - 1, True, "at most"),
        (True, False, "whole number"),
        (2.0, False, "whole number"),
        ("3", False, "whole number"),
    ],
)
def test_credits_that_are_zero_unbounded_or_not_whole_are_refused(
    credits: Any, allow_negative: bool, words: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_credits("credits", credits, allow_negative=allow_negative)
    assert field_of(caught.value) == "credits"
    assert words in caught.value.detail


# --- packages and dollars ---------------------------------------------------


@pytest.mark.parametrize(("credits", "amount"), [(80, "90.00"), (160, "180.00"), (320, "360.00")])
def test_the_standard_packages_cost_what_the_policy_says(credits: int, amount: str) -> None:
    package = standard_package(credits)
    assert package == Package(credits, Decimal(amount), standard=True)
    assert str(package.amount_usd) == amount
    assert PACKAGES[credits] is package


@pytest.mark.parametrize("credits", [0, 1, 100, -80, 640, True, 80.0, "80", None])
def test_any_other_standard_package_is_refused_and_points_to_a_custom_one(credits: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        standard_package(credits)
    assert field_of(caught.value) == "package"
    assert "80, 160, 320" in caught.value.detail
    assert "custom" in caught.value.detail


@pytest.mark.parametrize(
    ("credits", "amount", "expected"),
    [
        (100, "112.50", "112.50"),
        (1, "0.01", "0.01"),
        (7, "7", "7.00"),
        (7, "7.5", "7.50"),
        (10, Decimal("1.500"), "1.50"),
        (10, Decimal("12.3"), "12.30"),
        (MAX_CREDITS, "1000000000", "1000000000.00"),
        (80, "100.00", "100.00"),
    ],
)
def test_a_custom_package_keeps_its_exact_dollar_amount(
    credits: int, amount: Decimal | str, expected: str
) -> None:
    package = custom_package(credits, amount)
    assert package == Package(credits, Decimal(expected), standard=False)
    assert str(package.amount_usd) == expected


def test_a_custom_package_equal_to_a_listed_one_is_the_listed_package() -> None:
    assert custom_package(80, "90") is PACKAGES[80]


BAD_AMOUNTS: list[Any] = [
    "0",
    "0.00",
    "-0",
    "-1",
    Decimal("-1"),
    Decimal(0),
    "1.005",
    Decimal("1.005"),
    "0.001",
    Decimal("1E-30"),
    1.5,
    90,
    None,
    "1000000000.01",
    Decimal("1E+12"),
    "99999999999999999999",
    "abc",
    "",
    " 90.00",
    "90,00",
    "1_000.00",
    "1e3",
    "$90",
    "NaN",
    "Infinity",
    "-Infinity",
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_a_custom_package_with_a_bad_amount_is_refused_naming_amount_usd(amount: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        custom_package(100, amount)
    assert field_of(caught.value) == "amount_usd"


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("0", "greater than 0"),
        ("-1", "greater than 0"),
        ("1.005", "more than two decimals"),
        ("1000000000.01", "at most"),
        ("abc", '"90.00"'),
        (1.5, '"90.00"'),
        (Decimal("NaN"), "finite"),
    ],
)
def test_a_refused_amount_says_what_is_expected(amount: Any, words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        usd(amount)
    assert words in caught.value.detail


@pytest.mark.parametrize("credits", [0, -1, MAX_CREDITS + 1, True, 1.5, "100"])
def test_a_custom_package_with_bad_credits_is_refused_naming_credits(credits: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        custom_package(credits, "10.00")
    assert field_of(caught.value) == "credits"


def test_dollars_are_exact_whatever_the_callers_decimal_context() -> None:
    with localcontext() as context:
        context.prec = 3
        amount = usd("123456789.12")
    assert amount == Decimal("123456789.12")
    assert amount.as_tuple().exponent == -2


def test_a_package_cannot_be_changed() -> None:
    with pytest.raises(AttributeError):
        PACKAGES[80].credits = 1  # type: ignore[misc]


# --- the support calendar: open or closed ------------------------------------

# 2026-11-25 is a Wednesday, 2026-11-27 a Friday, 2026-11-28 a Saturday.


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (samara(2026, 11, 25, 8, 59, 59), False),
        (samara(2026, 11, 25, 9, 0), True),
        (samara(2026, 11, 25, 12, 0), True),
        (samara(2026, 11, 25, 17, 59, 59), True),
        (samara(2026, 11, 25, 17, 59, 59, 999999), True),
        (samara(2026, 11, 25, 18, 0), False),
        (samara(2026, 11, 25, 23, 0), False),
        (samara(2026, 11, 27, 17, 0), True),
        (samara(2026, 11, 28, 12, 0), False),
        (samara(2026, 11, 29, 12, 0), False),
        (datetime(2026, 11, 25, 5, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 25, 4, 59, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 25, 14, 0, tzinfo=UTC), False),
    ],
)
def test_by_default_support_is_open_monday_to_friday_9_to_18_in_samara(
    at: datetime, is_open: bool
) -> None:
    assert DEFAULT_CALENDAR.is_open(at) is is_open


def test_the_default_calendar_is_what_the_policy_says() -> None:
    assert DEFAULT_CALENDAR.describe() == "Mon-Fri 09:00-18:00 Europe/Samara"
    assert SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Samara") == DEFAULT_CALENDAR
    assert DEFAULT_CALENDAR.zone() == SAMARA


def test_support_is_closed_on_a_holiday() -> None:
    calendar = SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Samara", "2026-12-31")
    assert not calendar.is_open(samara(2026, 12, 31, 12, 0))
    assert calendar.is_open(samara(2026, 12, 30, 12, 0))


def test_a_holiday_is_a_day_in_the_calendars_zone() -> None:
    calendar = SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Samara", "2026-12-31")
    # 2026-12-30 21:00 UTC is already 2026-12-31 01:00 in Samara; 05:00 UTC is 09:00 there.
    assert calendar.local_date(datetime(2026, 12, 30, 21, 0, tzinfo=UTC)) == date(2026, 12, 31)
    assert not calendar.is_open(datetime(2026, 12, 31, 5, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "method", [SupportCalendar.is_open, SupportCalendar.next_opening, SupportCalendar.local_date]
)
def test_a_naive_datetime_is_refused(method: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        method(DEFAULT_CALENDAR, datetime(2026, 11, 25, 12, 0))


# --- the support calendar: next opening --------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        samara(2026, 11, 27, 18, 0),
        samara(2026, 11, 27, 19, 30),
        samara(2026, 11, 28, 0, 0),
        samara(2026, 11, 29, 23, 59, 59),
        datetime(2026, 11, 29, 20, 0, tzinfo=UTC),
    ],
)
def test_from_friday_evening_support_next_opens_monday_at_9_in_samara(at: datetime) -> None:
    opening = DEFAULT_CALENDAR.next_opening(at)
    assert opening == samara(2026, 11, 30, 9, 0)
    assert opening is not None
    assert opening.tzinfo == SAMARA
    assert opening.utcoffset() == timedelta(hours=4)


def test_before_opening_time_support_next_opens_the_same_day() -> None:
    assert DEFAULT_CALENDAR.next_opening(samara(2026, 11, 25, 7, 0)) == samara(2026, 11, 25, 9, 0)


def test_while_support_is_open_the_next_opening_is_now() -> None:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    opening = DEFAULT_CALENDAR.next_opening(at)
    assert opening == at
    assert opening is not None
    assert opening.tzinfo == SAMARA


def test_from_a_holiday_support_next_opens_on_the_next_working_day() -> None:
    calendar = SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Samara", "2026-12-31,2027-01-01")
    # Thursday and Friday are holidays: the next opening is Monday 2027-01-04.
    assert calendar.next_opening(samara(2026, 12, 31, 10, 0)) == samara(2027, 1, 4, 9, 0)
    assert calendar.next_opening(samara(2026, 12, 30, 18, 0)) == samara(2027, 1, 4, 9, 0)


def test_under_24_7_support_is_always_open_and_has_no_next_opening() -> None:
    calendar = SupportCalendar.parse("24/7", "2026-12-31")
    assert calendar.always_open
    assert calendar.is_open(datetime(2026, 12, 31, 3, 0, tzinfo=UTC))
    assert calendar.is_open(samara(2026, 11, 28, 23, 59))
    assert calendar.next_opening(datetime(2026, 12, 31, 3, 0, tzinfo=UTC)) is None
    assert calendar.describe() == "24/7"


def test_a_whole_day_calendar_is_open_around_the_clock_except_on_holidays() -> None:
    calendar = SupportCalendar.parse("Mon-Sun 00:00-24:00 UTC", "2026-12-25")
    assert calendar.closes is None
    assert calendar.zone() is UTC
    for at in [
        datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
    ]:
        assert calendar.is_open(at)
        assert calendar.next_opening(at) == at
    assert not calendar.is_open(datetime(2026, 12, 25, 12, 0, tzinfo=UTC))
    assert calendar.next_opening(datetime(2026, 12, 25, 12, 0, tzinfo=UTC)) == datetime(
        2026, 12, 26, 0, 0, tzinfo=UTC
    )
    assert calendar.describe() == "Mon-Sun 00:00-24:00 UTC"


def test_opening_hours_follow_local_time_across_the_spring_dst_change() -> None:
    # Europe/Berlin moves from UTC+1 to UTC+2 on Sunday 2026-03-29 at 02:00.
    calendar = SupportCalendar.parse("Mon-Sun 09:00-18:00 Europe/Berlin")
    assert calendar.is_open(datetime(2026, 3, 28, 8, 0, tzinfo=UTC))  # 09:00 CET
    assert not calendar.is_open(datetime(2026, 3, 29, 6, 59, 59, tzinfo=UTC))  # 08:59:59 CEST
    assert calendar.is_open(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))  # 09:00 CEST
    opening = calendar.next_opening(datetime(2026, 3, 28, 17, 0, tzinfo=UTC))  # Sat 18:00 CET
    assert opening == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert opening is not None
    assert opening.utcoffset() == timedelta(hours=2)


def test_an_opening_time_skipped_by_the_dst_change_opens_at_the_change() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: the clock reads 03:00 at 01:00 UTC.
    calendar = SupportCalendar.parse("Sun 02:30-05:00 Europe/Berlin")
    opening = calendar.next_opening(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert opening is not None
    assert calendar.is_open(opening)
    assert not calendar.is_open(opening.astimezone(UTC) - timedelta(microseconds=1))


def test_an_opening_time_repeated_by_the_autumn_dst_change_opens_on_each_pass() -> None:
    # On 2026-10-25 Berlin's clock goes 02:59:59 CEST -> 02:00 CET (at 01:00 UTC).
    calendar = SupportCalendar.parse("Sun 02:30-05:00 Europe/Berlin")
    # An ambiguous local time never equals an instant in another zone (PEP 495),
    # so the openings are compared in UTC.
    first = calendar.next_opening(datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    assert first is not None
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    # 01:15 UTC reads 02:15 CET: closed again until the clock reads 02:30 once more.
    assert not calendar.is_open(datetime(2026, 10, 25, 1, 15, tzinfo=UTC))
    second = calendar.next_opening(datetime(2026, 10, 25, 1, 15, tzinfo=UTC))
    assert second is not None
    assert second.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert second.fold == 1


def test_the_local_date_is_the_day_in_the_calendars_zone() -> None:
    assert DEFAULT_CALENDAR.local_date(datetime(2026, 11, 27, 21, 0, tzinfo=UTC)) == date(
        2026, 11, 28
    )
    assert DEFAULT_CALENDAR.local_date(datetime(2026, 11, 27, 19, 59, tzinfo=UTC)) == date(
        2026, 11, 27
    )


# --- the support calendar: reading the configuration ---------------------------


@pytest.mark.parametrize(
    ("spec", "weekdays", "opens", "closes", "zone", "described"),
    [
        (
            "Mon-Fri 09:00-18:00 Europe/Samara",
            frozenset({0, 1, 2, 3, 4}),
            time(9),
            time(18),
            "Europe/Samara",
            "Mon-Fri 09:00-18:00 Europe/Samara",
        ),
        (
            "Mon-Sun 00:00-24:00 UTC",
            frozenset(range(7)),
            time(0),
            None,
            "UTC",
            "Mon-Sun 00:00-24:00 UTC",
        ),
        ("Sat 10:00-14:00 UTC", frozenset({5}), time(10), time(14), "UTC", "Sat 10:00-14:00 UTC"),
        (
            "Mon,Wed,Fri 08:00-12:30 America/New_York",
            frozenset({0, 2, 4}),
            time(8),
            time(12, 30),
            "America/New_York",
            "Mon,Wed,Fri 08:00-12:30 America/New_York",
        ),
        (
            "Sun-Thu 08:00-17:00 Asia/Jerusalem",
            frozenset({6, 0, 1, 2, 3}),
            time(8),
            time(17),
            "Asia/Jerusalem",
            "Mon-Thu,Sun 08:00-17:00 Asia/Jerusalem",
        ),
        (
            "  mon-tue, fri  09:00-18:00   UTC ",
            frozenset({0, 1, 4}),
            time(9),
            time(18),
            "UTC",
            "Mon-Tue,Fri 09:00-18:00 UTC",
        ),
        (
            "Wed-Wed 09:00-09:01 UTC",
            frozenset({2}),
            time(9),
            time(9, 1),
            "UTC",
            "Wed 09:00-09:01 UTC",
        ),
    ],
)
def test_support_hours_are_read_from_the_configuration(
    spec: str,
    weekdays: frozenset[int],
    opens: time,
    closes: time | None,
    zone: str,
    described: str,
) -> None:
    calendar = SupportCalendar.parse(spec)
    assert (calendar.weekdays, calendar.opens, calendar.closes, calendar.time_zone) == (
        weekdays,
        opens,
        closes,
        zone,
    )
    assert not calendar.always_open
    assert calendar.describe() == described
    assert SupportCalendar.parse(described) == calendar


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "expected form"),
        ("Mon-Fri", "expected form"),
        ("Mon-Fri 09:00-18:00", "expected form"),
        ("Mon-Fri 09:00 18:00 UTC", "expected form"),
        ("24/7 UTC", "expected form"),
        ("Mon-Fri 9:00-18:00 UTC", "HH:MM-HH:MM"),
        ("Mon-Fri 09:00-18 UTC", "HH:MM-HH:MM"),
        ("Mon-Fri 09:00 UTC", "HH:MM-HH:MM"),
        ("Mon-Fri 09:00-18:00-19:00 UTC", "HH:MM-HH:MM"),
        ("Mon-Fri 09:60-18:00 UTC", "HH:MM-HH:MM"),
        ("Mon-Fri 24:00-24:00 UTC", "24:00 only as the closing time"),
        ("Mon-Fri 09:00-24:30 UTC", "HH:MM-HH:MM"),
        ("Mon-Fri 18:00-09:00 UTC", "opening time must be before the closing time"),
        ("Mon-Fri 09:00-09:00 UTC", "opening time must be before the closing time"),
        ("Mon-Fri 09:00-18:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("Mon-Fri 09:00-18:00 +04:00", "unknown time zone"),
        ("Mon-Fri 09:00-18:00 europe/samara", "unknown time zone"),
        ("Monday-Friday 09:00-18:00 UTC", "unknown day 'Monday'"),
        ("Mon-Fri-Sat 09:00-18:00 UTC", "more than two days"),
        ("Mon,,Fri 09:00-18:00 UTC", "unknown day ''"),
        ("Mon- 09:00-18:00 UTC", "unknown day ''"),
    ],
)
def test_invalid_support_hours_are_refused_with_a_one_line_reason(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        SupportCalendar.parse(spec)
    message = str(caught.value)
    assert problem in message
    assert "\n" not in message


def test_24_7_is_read_from_the_configuration() -> None:
    calendar = SupportCalendar.parse(" 24/7 ")
    assert calendar.always_open
    assert calendar.describe() == "24/7"


@pytest.mark.parametrize(
    ("holidays", "dates"),
    [
        ("", set()),
        ("  ", set()),
        ("2026-12-31", {date(2026, 12, 31)}),
        ("2026-12-31,2027-01-01", {date(2026, 12, 31), date(2027, 1, 1)}),
        (" 2026-12-31 , ,2027-01-01,", {date(2026, 12, 31), date(2027, 1, 1)}),
    ],
)
def test_holidays_are_read_as_comma_separated_iso_dates(holidays: str, dates: set[date]) -> None:
    assert SupportCalendar.parse("Mon-Fri 09:00-18:00 UTC", holidays).holidays == dates


@pytest.mark.parametrize(
    "holidays", ["2026-13-01", "2026-02-30", "31.12.2026", "20261231", "2026-W01-1", "tomorrow"]
)
def test_an_invalid_holiday_is_refused_naming_it(holidays: str) -> None:
    with pytest.raises(ValueError) as caught:
        SupportCalendar.parse("Mon-Fri 09:00-18:00 UTC", f"2026-12-31,{holidays}")
    assert repr(holidays) in str(caught.value)
    assert "ISO dates" in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"weekdays": frozenset()}, "weekdays"),
        ({"weekdays": frozenset({7})}, "weekdays"),
        ({"time_zone": "Nowhere/City"}, "unknown time zone"),
        ({"opens": time(18), "closes": time(9)}, "before"),
        ({"opens": time(9, tzinfo=UTC)}, "without a time zone"),
        ({"holidays": frozenset({datetime(2026, 12, 31, tzinfo=UTC)})}, "dates"),
    ],
)
def test_an_invalid_calendar_cannot_be_built(fields: dict[str, Any], problem: str) -> None:
    values: dict[str, Any] = {
        "time_zone": "UTC",
        "weekdays": frozenset({0}),
        "opens": time(9),
        "closes": time(18),
    }
    with pytest.raises(ValueError, match=problem):
        SupportCalendar(**(values | fields))


def test_a_calendar_accepts_any_iterable_of_days_and_stays_hashable() -> None:
    calendar = SupportCalendar("UTC", [0, 1], time(9), time(18), {date(2026, 12, 31)})  # type: ignore[arg-type]
    assert calendar.weekdays == frozenset({0, 1})
    assert hash(calendar) == hash(SupportCalendar.parse("Mon-Tue 09:00-18:00 UTC", "2026-12-31"))


def test_the_utc_zone_is_the_fixed_utc_offset() -> None:
    assert SupportCalendar.parse("Mon 09:00-18:00 UTC").zone() == UTC


# --- properties ----------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Samara",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Apia",
    "America/St_Johns",
]

minutes_of_day = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def calendars(draw: st.DrawFn, *, with_holidays: bool = True) -> SupportCalendar:
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    opens = draw(minutes_of_day)
    later = st.integers(opens + 1, 24 * 60 - 1) if opens < 24 * 60 - 1 else st.nothing()
    closes = draw(st.none() | later)
    holidays = (
        draw(st.frozensets(st.dates(date(2000, 1, 1), date(2040, 12, 31)), max_size=20))
        if with_holidays
        else frozenset()
    )
    return SupportCalendar(
        draw(st.sampled_from(ZONES)),
        weekdays,
        time(*divmod(opens, 60)),
        None if closes is None else time(*divmod(closes, 60)),
        holidays,
    )


aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2040, 1, 1),
    timezones=st.sampled_from([UTC, SAMARA, BERLIN, ZoneInfo("America/New_York")]),
)


@settings(max_examples=300, deadline=None)
@given(calendar=calendars(), at=aware_datetimes)
def test_the_next_opening_is_the_first_open_instant_at_or_after_now(
    calendar: SupportCalendar, at: datetime
) -> None:
    opening = calendar.next_opening(at)
    assert opening is not None
    assert opening >= at
    assert calendar.is_open(opening)
    assert opening.tzinfo == calendar.zone()
    if calendar.is_open(at):
        assert opening.astimezone(UTC) == at.astimezone(UTC)
    else:
        # Nothing opens earlier: a microsecond before, support was still closed.
        assert not calendar.is_open(opening.astimezone(UTC) - timedelta(microseconds=1))
    assert calendar.next_opening(opening) == opening


@settings(max_examples=200, deadline=None)
@given(calendar=calendars(with_holidays=False))
def test_a_described_calendar_reads_back_as_the_same_calendar(calendar: SupportCalendar) -> None:
    assert SupportCalendar.parse(calendar.describe()) == calendar
