"""The price list and the support calendar: pure functions and frozen values.

Rules owned here (POLICY.md):

- the request categories and their prices at opening, with the minimum of a
  ``complex_modification`` (20), the categories that need an update
  subscription and the free ones;
- the ``store_update`` price: same ``MAJOR.MINOR``, a higher patch,
  ``20 + 5 * max(0, steps - 2)``; an update across minor or major versions, or
  one with third-party solutions, is refused with an error that says to open a
  ``complex_modification`` instead;
- the bounds of every credit amount in input (whole, at most
  ``MAX_CREDITS`` in absolute value) and of a price;
- the credit packages (80 / 160 / 320 credits for USD 90 / 180 / 360) and
  custom ones; dollars are ``Decimal`` exact to the cent and made only by
  ``usd``, never rounded silently, never from a float;
- the price list as a value (``PriceList``): the numbers above are version 1
  (``DEFAULT_PRICE_LIST``), the default of every rule that takes ``prices``;
  later versions are published as events (``ledger.aggregates.price_list``)
  and validated whole by ``price_list_from_data``;
- the working hours: a ``SupportCalendar`` (zone, week days, opening and
  closing time, holidays, or ``24/7``) that says whether support is open at
  an instant, when it next opens and when a number of open hours has passed
  (``add_open_hours``: when a hold lapses), DST-correct through ``zoneinfo``.

Nothing here does I/O or reads the clock: callers pass the instant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import (
    InvalidInputError,
    InvalidStoreUpdateError,
    PriceBelowMinimumError,
    UnknownCategoryError,
)

# --- categories and prices --------------------------------------------------


class Category(StrEnum):
    """A request category; the values are the keys of POLICY.md's table."""

    FUNCTIONALITY_EXPLANATION = "functionality_explanation"
    CONFIGURATION = "configuration"
    INSTALLATION = "installation"
    INVESTIGATION = "investigation"
    COMPLEX_MODIFICATION = "complex_modification"
    ADDON_UPDATE = "addon_update"
    THEME_UPDATE = "theme_update"
    STORE_UPDATE = "store_update"
    SECURITY_FIX = "security_fix"
    COMPATIBILITY_FIX = "compatibility_fix"


STORE_UPDATE_BASE_PRICE: Final = 20
STORE_UPDATE_INCLUDED_STEPS: Final = 2
STORE_UPDATE_STEP_PRICE: Final = 5

#: The price of each category at opening; ``None`` means the specialist sets it
#: (complex_modification). ``store_update`` shows its base price: the real one
#: depends on the versions (``store_update_price``).
CATEGORY_PRICES: Final[Mapping[Category, int | None]] = MappingProxyType(
    {
        Category.FUNCTIONALITY_EXPLANATION: 5,
        Category.CONFIGURATION: 10,
        Category.INSTALLATION: 20,
        Category.INVESTIGATION: 20,
        Category.COMPLEX_MODIFICATION: None,
        Category.ADDON_UPDATE: 40,
        Category.THEME_UPDATE: 100,
        Category.STORE_UPDATE: STORE_UPDATE_BASE_PRICE,
        Category.SECURITY_FIX: 0,
        Category.COMPATIBILITY_FIX: 0,
    }
)
COMPLEX_MODIFICATION_MINIMUM: Final = 20
SUBSCRIPTION_CATEGORIES: Final = frozenset({Category.ADDON_UPDATE, Category.THEME_UPDATE})
FREE_CATEGORIES: Final = frozenset({Category.SECURITY_FIX, Category.COMPATIBILITY_FIX})
#: Absolute bound on any credit amount (or price) in input (API.md, "Errors").
MAX_CREDITS: Final = 1_000_000_000

_TO_COMPLEX = "open a complex_modification request instead"


def parse_category(value: str) -> Category:
    """The category whose key is exactly ``value``; ``UnknownCategoryError`` otherwise."""
    if isinstance(value, str):
        try:
            return Category(value)
        except ValueError:
            pass
    raise UnknownCategoryError(str(value), known=[c.value for c in Category])


# --- store_update -----------------------------------------------------------

# ASCII digits only, no leading zeros, at most 9 digits a part.
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


def _parse_version(field_name: str, value: object) -> tuple[int, int, int]:
    match = _VERSION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidStoreUpdateError(
            field_name,
            f"{field_name} must be a version MAJOR.MINOR.PATCH of whole numbers, "
            f"such as 4.4.1 (no leading 'v', no extra parts), not {value!r}",
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _check_bool(field_name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(field_name, f"{field_name} must be true or false")
    return value


def store_update_price(
    from_version: str,
    to_version: str,
    *,
    third_party: bool = False,
    prices: PriceList | None = None,
) -> int:
    """The price of a store update from ``from_version`` to ``to_version``
    under ``prices`` (version 1 when not given).

    Raises ``InvalidStoreUpdateError`` naming the field: a malformed version;
    a target not higher than the source; an update across minor or major
    versions, or with third-party solutions (open a complex_modification).
    """
    source = _parse_version("from_version", from_version)
    target = _parse_version("to_version", to_version)
    if _check_bool("third_party", third_party):
        raise InvalidStoreUpdateError(
            "third_party",
            "an update with third-party solutions (add-ons, themes, modifications) "
            f"is not a store_update; {_TO_COMPLEX}",
        )
    if target <= source:
        raise InvalidStoreUpdateError(
            "to_version",
            f"to_version {to_version} must be higher than from_version {from_version}; "
            "a store_update only moves to a later patch version",
        )
    if target[:2] != source[:2]:
        raise InvalidStoreUpdateError(
            "to_version",
            f"an update from {from_version} to {to_version} crosses a minor or major "
            f"version, so it is not a store_update; {_TO_COMPLEX}",
        )
    steps = target[2] - source[2]
    formula = (prices or DEFAULT_PRICE_LIST).store_update
    price = formula.base + formula.per_step * max(0, steps - formula.included_steps)
    if price > MAX_CREDITS:
        raise InvalidStoreUpdateError(
            "to_version",
            f"an update over {steps} patch versions is too large for a store_update; {_TO_COMPLEX}",
        )
    return price


def opening_price(
    category: Category,
    *,
    from_version: str | None = None,
    to_version: str | None = None,
    third_party: bool = False,
    prices: PriceList | None = None,
) -> int | None:
    """The price of a request at opening under ``prices`` (version 1 when not
    given); ``None`` for a specialist-priced category (complex_modification).

    ``store_update`` needs both versions (``InvalidStoreUpdateError`` naming the
    missing one) and is priced by ``store_update_price``. Any other category
    refuses the version fields (``InvalidInputError``). ``third_party`` is
    accepted on the other categories: on a free one the specialist revises the
    price later (POLICY "Decision").
    """
    category = parse_category(category)
    _check_bool("third_party", third_party)
    if category is Category.STORE_UPDATE:
        if from_version is None:
            raise InvalidStoreUpdateError(
                "from_version", "a store_update needs from_version, such as 4.4.1"
            )
        if to_version is None:
            raise InvalidStoreUpdateError(
                "to_version", "a store_update needs to_version, such as 4.4.3"
            )
        return store_update_price(from_version, to_version, third_party=third_party, prices=prices)
    for name, value in (("from_version", from_version), ("to_version", to_version)):
        if value is not None:
            raise InvalidInputError(
                name, f"{name} is only for store_update requests; leave it out for {category}"
            )
    return (prices or DEFAULT_PRICE_LIST).categories[category]


# --- credit amounts ---------------------------------------------------------


def _check_whole(field_name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field_name, f"{field_name} must be a whole number of credits")
    if abs(value) > MAX_CREDITS:
        raise InvalidInputError(
            field_name, f"{field_name} must be at most {MAX_CREDITS:,} in absolute value"
        )
    return value


def validate_price(field: str, price: int, *, minimum: int = 0) -> int:
    """``price`` if it is a whole number within ``minimum..MAX_CREDITS``.

    Below a positive minimum: ``PriceBelowMinimumError``; otherwise
    ``InvalidInputError`` naming ``field``.
    """
    value = _check_whole(field, price)
    if value < minimum:
        if minimum > 0:
            raise PriceBelowMinimumError(field, value, minimum)
        raise InvalidInputError(field, f"{field} must not be negative")
    return value


def validate_credits(field: str, credits: int, *, allow_negative: bool = False) -> int:
    """``credits`` if it is a non-zero whole number, at most ``MAX_CREDITS`` in
    absolute value, and positive unless ``allow_negative``; else ``InvalidInputError``.
    """
    value = _check_whole(field, credits)
    if value == 0:
        raise InvalidInputError(field, f"{field} must not be zero")
    if value < 0 and not allow_negative:
        raise InvalidInputError(field, f"{field} must be a positive number of credits")
    return value


# --- money and packages -----------------------------------------------------

MAX_USD: Final = Decimal(1_000_000_000)
_CENT: Final = Decimal("0.01")
# Independent of the caller's decimal context; 50 digits hold any amount we accept.
_MONEY_CONTEXT: Final = Context(prec=50, rounding=ROUND_HALF_EVEN)
_AMOUNT_TEXT = re.compile(r"[+-]?[0-9]{1,40}(?:\.[0-9]{1,40})?")
_AMOUNT_FORM = 'a string such as "90.00"'


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _AMOUNT_TEXT.fullmatch(value):
        return Decimal(value)
    raise InvalidInputError(
        "amount_usd",
        f"amount_usd must be a dollar amount with at most two decimals, {_AMOUNT_FORM}",
    )


def usd(value: Decimal | str) -> Decimal:
    """A dollar amount, exact, with two decimals: the one place dollars are made.

    Accepts a ``Decimal`` or a plain decimal string; refuses (``InvalidInputError``
    on ``amount_usd``) floats, non-finite values, zero or less, more than two
    decimals (never rounded) and more than 1,000,000,000.
    """
    amount = _to_decimal(value)
    if not amount.is_finite():
        raise InvalidInputError("amount_usd", f"amount_usd must be a finite amount, {_AMOUNT_FORM}")
    if amount <= 0:
        raise InvalidInputError("amount_usd", "amount_usd must be greater than 0")
    if amount > MAX_USD:
        raise InvalidInputError("amount_usd", f"amount_usd must be at most {MAX_USD:,}")
    cents = amount.quantize(_CENT, context=_MONEY_CONTEXT)
    if cents != amount:
        raise InvalidInputError(
            "amount_usd",
            f"amount_usd {amount} has more than two decimals; state it exact to the cent",
        )
    return cents


@dataclass(frozen=True)
class Package:
    """Credits sold for an amount of dollars; ``standard`` for the listed packages."""

    credits: int
    amount_usd: Decimal
    standard: bool


PACKAGES: Final[Mapping[int, Package]] = MappingProxyType(
    {
        credits: Package(credits, Decimal(amount), standard=True)
        for credits, amount in ((80, "90.00"), (160, "180.00"), (320, "360.00"))
    }
)


def _listed(credits: object, prices: PriceList) -> Package | None:
    if isinstance(credits, bool) or not isinstance(credits, int):
        return None
    return prices.packages.get(credits)


def standard_package(credits: int, prices: PriceList | None = None) -> Package:
    """The listed package of ``credits`` in ``prices`` (version 1 when not
    given); ``InvalidInputError`` on ``package`` otherwise."""
    price_list = prices or DEFAULT_PRICE_LIST
    listed_package = _listed(credits, price_list)
    if listed_package is not None:
        return listed_package
    listed = ", ".join(str(c) for c in price_list.packages)
    raise InvalidInputError(
        "package",
        f"package must be one of {listed} credits; for another amount, issue a custom "
        "package with credits and amount_usd",
    )


def custom_package(
    credits: int, amount_usd: Decimal | str, prices: PriceList | None = None
) -> Package:
    """A package of any ``credits`` (> 0) for ``amount_usd`` (see ``usd``).

    A custom package equal to a listed one of ``prices`` (same credits and
    amount) is that listed package, ``standard`` included.
    """
    package = Package(validate_credits("credits", credits), usd(amount_usd), standard=False)
    listed = (prices or DEFAULT_PRICE_LIST).packages.get(package.credits)
    if listed is not None and listed.amount_usd == package.amount_usd:
        return listed
    return package


# --- the price list ---------------------------------------------------------


@dataclass(frozen=True)
class StoreUpdateFormula:
    """``base + per_step * max(0, steps - included_steps)`` credits."""

    base: int
    included_steps: int
    per_step: int


@dataclass(frozen=True)
class PriceList:
    """One version of the price list, in force from ``effective_from`` until
    the next version's ``effective_from``. The rules above read their numbers
    from it; version 1 (``DEFAULT_PRICE_LIST``) is POLICY.md's list."""

    version: int
    effective_from: datetime
    packages: Mapping[int, Package]
    categories: Mapping[Category, int | None]
    minimums: Mapping[Category, int]
    store_update: StoreUpdateFormula
    free_categories: frozenset[Category]
    subscription_categories: frozenset[Category]

    def minimum(self, category: Category) -> int:
        """The least price a specialist may set for ``category`` (0 when none)."""
        return self.minimums.get(category, 0)

    def to_data(self) -> dict[str, Any]:
        """The list as plain values (``amount_usd`` a ``Decimal``), in the
        shape ``price_list_from_data`` reads and events store."""
        return {
            "packages": [
                {"credits": p.credits, "amount_usd": p.amount_usd} for p in self.packages.values()
            ],
            "categories": {c.value: self.categories[c] for c in Category},
            "minimums": {c.value: m for c, m in self.minimums.items()},
            "store_update": {
                "base": self.store_update.base,
                "included_steps": self.store_update.included_steps,
                "per_step": self.store_update.per_step,
            },
            "free_categories": sorted(c.value for c in self.free_categories),
            "subscription_categories": sorted(c.value for c in self.subscription_categories),
        }


#: Version 1 is in force from the beginning of time.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

DEFAULT_PRICE_LIST: Final = PriceList(
    version=1,
    effective_from=EPOCH,
    packages=PACKAGES,
    categories=CATEGORY_PRICES,
    minimums=MappingProxyType({Category.COMPLEX_MODIFICATION: COMPLEX_MODIFICATION_MINIMUM}),
    store_update=StoreUpdateFormula(
        STORE_UPDATE_BASE_PRICE, STORE_UPDATE_INCLUDED_STEPS, STORE_UPDATE_STEP_PRICE
    ),
    free_categories=FREE_CATEGORIES,
    subscription_categories=SUBSCRIPTION_CATEGORIES,
)


def _credits_field(field_name: str, value: object) -> int:
    value = _check_whole(field_name, value)
    if value < 0:
        raise InvalidInputError(field_name, f"{field_name} must not be negative")
    return value


def _mapping(field_name: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(field_name, f"{field_name} must be an object")
    return value


def _category_key(field_name: str, key: str) -> Category:
    try:
        return Category(key)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise InvalidInputError(
            field_name, f"{field_name}: unknown category {key!r}; the categories are {known}"
        ) from None


def _category_set(field_name: str, value: object) -> frozenset[Category]:
    if not isinstance(value, list | tuple | frozenset | set) or not all(
        isinstance(v, str) for v in value
    ):
        raise InvalidInputError(field_name, f"{field_name} must be a list of category keys")
    return frozenset(_category_key(field_name, v) for v in value)


def _packages(value: object) -> Mapping[int, Package]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInputError("packages", "packages must be a non-empty list")
    packages: dict[int, Package] = {}
    for index, item in enumerate(value):
        field_name = f"packages[{index}]"
        entry = _mapping(field_name, item)
        if set(entry) != {"credits", "amount_usd"}:
            raise InvalidInputError(field_name, f"{field_name} needs credits and amount_usd only")
        credits = validate_credits(f"{field_name}.credits", entry["credits"])  # type: ignore[arg-type]
        if isinstance(entry["amount_usd"], float):
            amount: object = "float"
        else:
            amount = entry["amount_usd"]
        try:
            amount_usd = usd(amount)  # type: ignore[arg-type]
        except InvalidInputError as e:
            raise InvalidInputError(f"{field_name}.amount_usd", str(e)) from None
        if credits in packages:
            raise InvalidInputError(
                f"{field_name}.credits", f"a package of {credits} credits is listed twice"
            )
        packages[credits] = Package(credits, amount_usd, standard=True)
    return MappingProxyType(packages)


def price_list_from_data(
    data: Mapping[str, object], *, version: int, effective_from: datetime, previous: PriceList
) -> PriceList:
    """A price list validated whole from plain values (``to_data``'s shape).

    ``packages``, ``categories`` (every category, credits or null) and
    ``store_update`` are required; ``minimums``, ``free_categories`` and
    ``subscription_categories`` default to ``previous``'s. Raises
    ``InvalidInputError`` naming the first field at fault.
    """
    if effective_from.tzinfo is None or effective_from.utcoffset() is None:
        raise InvalidInputError("effective_from", "effective_from needs a time zone offset")
    known = {
        "packages",
        "categories",
        "minimums",
        "store_update",
        "free_categories",
        "subscription_categories",
    }
    for name in data:
        if name not in known:
            raise InvalidInputError(name, f"{name} is not a field of a price list")
    for name in ("packages", "categories", "store_update"):
        if data.get(name) is None:
            raise InvalidInputError(name, f"a price list needs {name}")
    packages = _packages(data["packages"])
    raw_formula = _mapping("store_update", data["store_update"])
    if set(raw_formula) != {"base", "included_steps", "per_step"}:
        raise InvalidInputError(
            "store_update", "store_update needs base, included_steps and per_step"
        )
    formula = StoreUpdateFormula(
        *(
            _credits_field(f"store_update.{name}", raw_formula[name])
            for name in ("base", "included_steps", "per_step")
        )
    )
    raw_categories = _mapping("categories", data["categories"])
    categories: dict[Category, int | None] = {}
    for key, price in raw_categories.items():
        category = _category_key(f"categories.{key}", key)
        categories[category] = None if price is None else _credits_field(f"categories.{key}", price)
    for category in Category:
        if category not in categories:
            raise InvalidInputError(
                f"categories.{category.value}",
                f"categories must price every category; {category.value} is missing "
                "(null for a price the specialist sets)",
            )
    if categories[Category.STORE_UPDATE] != formula.base:
        raise InvalidInputError(
            "categories.store_update", "categories.store_update must equal store_update.base"
        )
    minimums: Mapping[Category, int] = previous.minimums
    if data.get("minimums") is not None:
        minimums = MappingProxyType(
            {
                _category_key(f"minimums.{k}", k): _credits_field(f"minimums.{k}", v)
                for k, v in _mapping("minimums", data["minimums"]).items()
            }
        )
    free = previous.free_categories
    if data.get("free_categories") is not None:
        free = _category_set("free_categories", data["free_categories"])
    subscription = previous.subscription_categories
    if data.get("subscription_categories") is not None:
        subscription = _category_set("subscription_categories", data["subscription_categories"])
    for category in free:
        if categories[category] != 0:
            raise InvalidInputError(
                f"categories.{category.value}", f"{category.value} is free, so its price must be 0"
            )
    return PriceList(
        version=version,
        effective_from=effective_from,
        packages=packages,
        categories=MappingProxyType(categories),
        minimums=minimums,
        store_update=formula,
        free_categories=free,
        subscription_categories=subscription,
    )


def price_list_in_force(lists: Iterable[PriceList], at: datetime) -> PriceList:
    """The version in force at ``at``: the latest whose ``effective_from`` is
    not after it (``lists`` oldest first, version 1 first)."""
    chosen = DEFAULT_PRICE_LIST
    for price_list in lists:
        if price_list.effective_from <= at:
            chosen = price_list
    return chosen


# --- working hours ----------------------------------------------------------

DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_INDEX: Final = {name.lower(): index for index, name in enumerate(DAY_NAMES)}
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SPEC_FORM = (
    'expected "24/7" or "<Day>[-<Day>] HH:MM-HH:MM <IANA zone or UTC>", '
    'such as "Mon-Fri 09:00-18:00 Europe/Samara"'
)
_HOLIDAYS_FORM = "expected comma-separated ISO dates such as 2026-12-31,2027-01-01"
#: Bound on the bisection that finds an opening inside a DST gap (2**64 µs > any gap).
_GAP_SEARCH_STEPS: Final = 64
_SEARCH_DAYS: Final = 400


def _resolve_zone(name: str) -> ZoneInfo | timezone:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as Europe/Samara, or UTC"
        ) from None


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, not the naive {at.isoformat()}")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class SupportCalendar:
    """The working hours of support: when an answer (a charge) may be given.

    Open on ``weekdays`` (0 = Monday) from ``opens`` to ``closes`` (``None``:
    the end of the day), local wall time in ``time_zone``, except ``holidays``
    (local dates). ``always_open`` is "24/7": open always, holidays ignored.
    Opening hours never span midnight. Invalid values raise ``ValueError``.
    """

    time_zone: str
    weekdays: frozenset[int]
    opens: time
    closes: time | None
    holidays: frozenset[date] = frozenset()
    always_open: bool = False

    def __post_init__(self) -> None:
        # Accept any iterable for the sets, but keep the value hashable and immutable.
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        _resolve_zone(self.time_zone)
        if not self.weekdays or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in self.weekdays
        ):
            raise ValueError("weekdays must be a non-empty set of 0 (Monday) .. 6 (Sunday)")
        if not all(type(d) is date for d in self.holidays):
            raise ValueError("holidays must be dates")
        for name, value in (("opens", self.opens), ("closes", self.closes)):
            if value is not None and (not isinstance(value, time) or value.tzinfo is not None):
                raise ValueError(f"{name} must be a local time without a time zone")
        if self.closes is not None and self.opens >= self.closes:
            raise ValueError(
                f"opening time {self.opens:%H:%M} must be before closing time {self.closes:%H:%M}"
            )

    def zone(self) -> ZoneInfo | timezone:
        return _resolve_zone(self.time_zone)

    def local_date(self, at: datetime) -> date:
        """The calendar day of ``at`` in the calendar's zone (``at`` must be aware)."""
        return _utc(at).astimezone(self.zone()).date()

    def is_open(self, at: datetime) -> bool:
        """Whether support is open at ``at``; ``ValueError`` if ``at`` is naive."""
        local = _utc(at).astimezone(self.zone())
        if self.always_open:
            return True
        if local.date() in self.holidays or local.weekday() not in self.weekdays:
            return False
        wall = local.time().replace(tzinfo=None, fold=0)
        return self.opens <= wall and (self.closes is None or wall < self.closes)

    def next_opening(self, at: datetime) -> datetime | None:
        """When support is next open, in the calendar's zone.

        ``at`` itself if support is open then; otherwise the first instant after
        ``at`` at which it opens. ``None`` under 24/7, or when no opening is
        found within 400 days plus one per holiday. ``ValueError`` if naive.
        """
        start = _utc(at)
        if self.always_open:
            return None
        zone = self.zone()
        if self.is_open(start):
            return start.astimezone(zone)
        # A day earlier too: a backward DST shift at midnight can return to it.
        first_day = start.astimezone(zone).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS + len(self.holidays) + 1):
            day = first_day + timedelta(days=offset)
            if day in self.holidays or day.weekday() not in self.weekdays:
                continue
            for candidate in self._openings_on(day, zone):
                if candidate >= start and self.is_open(candidate):
                    return candidate.astimezone(zone)
        return None

    def add_open_hours(self, start: datetime, hours: int) -> datetime:
        """The instant when ``hours`` hours of open time have passed since ``start``.

        Only open time counts (week ends, holidays and the hours outside the
        opening hours do not); an hour is sixty real minutes, so a daylight
        saving shift inside an open period lengthens or shortens its wall
        time, never the hours counted. Under 24/7 every hour counts. From a
        closed instant the count starts at the next opening. In the
        calendar's zone. ``ValueError`` if ``start`` is naive, ``hours`` is
        negative, or the calendar never opens again.
        """
        if isinstance(hours, bool) or not isinstance(hours, int) or hours < 0:
            raise ValueError(f"hours must be a whole number of hours, 0 or more, not {hours!r}")
        zone = self.zone()
        at = _utc(start)
        remaining = timedelta(hours=hours)
        if self.always_open:
            return (at + remaining).astimezone(zone)
        while True:
            opening = self.next_opening(at)
            if opening is None:
                raise ValueError(f"the support calendar {self.describe()} never opens again")
            opening = opening.astimezone(UTC)
            closing = max(self._closing_after(opening, zone), opening)
            if closing - opening >= remaining:
                return (opening + remaining).astimezone(zone)
            remaining -= closing - opening
            # A closing at midnight may be the next day's opening: next_opening says.
            at = closing if closing > opening else opening + timedelta(microseconds=1)

    def _closing_after(self, opening: datetime, zone: ZoneInfo | timezone) -> datetime:
        """The UTC instant at which the open period holding ``opening`` closes."""
        day = opening.astimezone(zone).date()
        if self.closes is None:
            wall = datetime.combine(day + timedelta(days=1), time(0))
        else:
            wall = datetime.combine(day, self.closes)
        return wall.replace(tzinfo=zone).astimezone(UTC)

    def _openings_on(self, day: date, zone: ZoneInfo | timezone) -> list[datetime]:
        """The UTC instants at which the local wall clock reaches ``opens`` on ``day``:
        one, two in a backward shift (the time repeats), or the shift itself when
        a forward shift skips the opening time."""
        wall = datetime.combine(day, self.opens)
        resolved = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
        real = sorted({u for u in resolved if u.astimezone(zone).replace(tzinfo=None) == wall})
        if real:
            return real
        # In a gap: fold=1 lands before it, fold=0 after; find the shift by bisection.
        before, after = min(resolved), max(resolved)
        for _ in range(_GAP_SEARCH_STEPS):
            if after - before <= timedelta(microseconds=1):
                break
            middle = before + (after - before) / 2
            if middle.astimezone(zone).replace(tzinfo=None) >= wall:
                after = middle
            else:
                before = middle
        return [after]

    def describe(self) -> str:
        """A short text in the form ``parse`` reads, e.g. "Mon-Fri 09:00-18:00 Europe/Samara"."""
        if self.always_open:
            return "24/7"
        closes = "24:00" if self.closes is None else f"{self.closes:%H:%M}"
        return f"{_describe_days(self.weekdays)} {self.opens:%H:%M}-{closes} {self.time_zone}"

    @classmethod
    def parse(cls, spec: str, holidays: str = "") -> SupportCalendar:
        """Read ``LEDGER_SUPPORT_HOURS`` and ``LEDGER_HOLIDAYS`` (API.md, "Configuration").

        ``spec`` is "24/7" or "<days> HH:MM-HH:MM <zone>", where days are a day
        (``Mon``), a range (``Mon-Fri``) or a comma list of them (``Mon,Wed-Fri``).
        A range runs forward and may wrap the week: ``Sun-Thu`` is Sunday to
        Thursday. ``24:00`` is allowed only as the closing time. ``holidays``:
        comma-separated ISO dates, blanks ignored. Any error raises ``ValueError``
        with a one-line message.
        """
        if not isinstance(spec, str) or not isinstance(holidays, str):
            raise ValueError(f"the support hours must be text; {_SPEC_FORM}")
        holiday_dates = _parse_holidays(holidays)
        text = spec.strip()
        if text == "24/7":
            return cls("UTC", frozenset(range(7)), time(0), None, holiday_dates, always_open=True)
        parts = re.sub(r"\s*,\s*", ",", text).split()
        if len(parts) != 3:
            raise ValueError(f"support hours {spec!r} are not in the expected form; {_SPEC_FORM}")
        days, hours, zone_name = parts
        opens, closes = _parse_hours(hours)
        _resolve_zone(zone_name)
        return cls(zone_name, _parse_days(days), opens, closes, holiday_dates)


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        ends = item.split("-")
        if len(ends) > 2:
            raise ValueError(f"day range {item!r} has more than two days; expected e.g. Mon-Fri")
        start, end = _day_index(ends[0]), _day_index(ends[-1])
        days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    return frozenset(days)


def _day_index(name: str) -> int:
    index = _DAY_INDEX.get(name.lower())
    if index is None:
        raise ValueError(
            f"unknown day {name!r} in the support hours; expected Mon, Tue, Wed, Thu, Fri, "
            "Sat or Sun, a range such as Mon-Fri, or a comma list such as Mon,Wed,Fri"
        )
    return index


def _parse_hours(text: str) -> tuple[time, time | None]:
    opens_text, dash, closes_text = text.partition("-")
    form = "expected HH:MM-HH:MM such as 09:00-18:00 (24:00 only as the closing time)"
    opens_match = _HHMM.fullmatch(opens_text)
    closes_match = None if closes_text == "24:00" else _HHMM.fullmatch(closes_text)
    if not dash or opens_match is None or (closes_match is None and closes_text != "24:00"):
        raise ValueError(f"hours {text!r} are not valid; {form}")
    opens = time(int(opens_match[1]), int(opens_match[2]))
    closes = None if closes_match is None else time(int(closes_match[1]), int(closes_match[2]))
    if closes is not None and opens >= closes:
        raise ValueError(
            f"hours {text!r}: the opening time must be before the closing time "
            "(hours may not span midnight); " + form
        )
    return opens, closes


def _parse_holidays(text: str) -> frozenset[date]:
    result: set[date] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            if not _DATE.fullmatch(item):
                raise ValueError(item)
            result.add(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"holiday {item!r} is not a date; {_HOLIDAYS_FORM}") from None
    return frozenset(result)


def _describe_days(weekdays: Iterable[int]) -> str:
    runs: list[list[int]] = []
    for day in sorted(weekdays):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAY_NAMES[run[0]] if len(run) == 1 else f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}"
        for run in runs
    )


DEFAULT_CALENDAR: Final = SupportCalendar("Europe/Samara", frozenset(range(5)), time(9), time(18))
