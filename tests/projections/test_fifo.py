"""The liability values outstanding credits at what was paid, first-in first-out."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from ledger.application import Ledger
from ledger.bootstrap import Services
from ledger.projections.fifo import Lot, LotsExhaustedError, consume, liability, restore
from tests.projections.story import FINANCE, HELPDESK, SPECIALIST

ACCOUNT = uuid4()


def lots(*specs: tuple[int, str]) -> list[Lot]:
    return [
        Lot(i + 1, ACCOUNT, credits, Decimal(usd), credits)
        for i, (credits, usd) in enumerate(specs)
    ]


def test_a_charge_takes_the_oldest_credits_first() -> None:
    held = lots((80, "90.00"), (100, "50.00"))
    assert consume(held, 100) == [(1, 80), (2, 20)]
    assert [lot.remaining for lot in held] == [0, 80]
    assert liability(held) == Decimal("40.00")


def test_a_refund_returns_credits_to_the_lots_the_charge_took_them_from() -> None:
    held = lots((80, "90.00"), (100, "50.00"))
    taken = dict(consume(held, 100))
    by_id = {lot.lot: lot for lot in held}
    left = restore(by_id, taken, 30)  # the last-taken lot (the cheap one) first
    assert left == {1: 70, 2: 0}
    assert [lot.remaining for lot in held] == [10, 100]
    assert liability(held) == Decimal("61.25")  # 10 x 1.125 + 100 x 0.50


def test_goodwill_is_worth_nothing_and_a_negative_adjustment_consumes_fifo() -> None:
    held = lots((80, "90.00"))
    held.append(Lot(2, ACCOUNT, 20, Decimal(0), 20))
    assert liability(held) == Decimal("90.00")
    consume(held, 30)  # a correction of -30
    assert [lot.remaining for lot in held] == [50, 20]
    assert liability(held) == Decimal("56.25")


def test_unit_prices_that_do_not_divide_are_rounded_once_at_the_end() -> None:
    held = lots((3, "10.00"), (3, "10.00"), (3, "10.00"))
    for lot in held:
        lot.remaining = 1
    assert liability(held) == Decimal("10.00")  # 3 x 3.333... rounds once


def test_taking_more_than_the_lots_hold_is_a_bug_not_a_rounding() -> None:
    with pytest.raises(LotsExhaustedError):
        consume(lots((10, "10.00")), 11)
    with pytest.raises(LotsExhaustedError):
        restore({}, {}, 1)


def test_liability_with_mixed_packages_and_custom_prices(
    ledger: Ledger, services: Services
) -> None:
    def pay(customer: str, **kwargs: object) -> None:
        invoice = ledger.issue_invoice(customer, actor=FINANCE, **kwargs)  # type: ignore[arg-type]
        ledger.pay_invoice(invoice.invoice_id, "ref", actor=FINANCE)

    def charge(customer: str, category: str) -> object:
        request = ledger.open_request(customer, category, "helpdesk", "s", actor=HELPDESK)
        ledger.charge(request.request_id, actor=SPECIALIST)
        return request.request_id

    ledger.open_account("a", "A", actor=HELPDESK)
    ledger.open_account("b", "B", actor=HELPDESK)
    pay("a", credits=10, amount_usd="20.00")  # 2.00 a credit
    pay("a", package=160)  # 1.125
    pay("b", credits=30, amount_usd="10.00")  # 0.333...
    pay("b", package=320)  # 1.125
    ledger.adjust_balance("a", 5, "goodwill", actor=FINANCE)  # 0.00
    first = charge("a", "investigation")  # 20: 10 @ 2.00, then 10 @ 1.125
    charge("b", "installation")  # 20 @ 0.333
    charge("b", "investigation")  # 10 @ 0.333, 10 @ 1.125
    ledger.dispute(first, "no", actor=HELPDESK)  # type: ignore[arg-type]
    ledger.refund(first, 15, "partly", actor=SPECIALIST)  # type: ignore[arg-type]
    # back: 10 to the 1.125 lot (taken last), then 5 to the 2.00 lot
    ledger.adjust_balance("a", -12, "correction", actor=FINANCE)  # 5 @ 2.00, 7 @ 1.125
    services.projections.catch_up()
    summary = services.queries.summary()
    # a: 0 @ 2.00, 153 @ 1.125, 5 @ 0 -> 172.125 ; b: 310 @ 1.125 -> 348.75
    assert summary.liability_usd == Decimal("520.88")
    assert summary.credits_outstanding == 158 + 310
    assert summary.usd_received == Decimal("570.00")
    assert summary.credits_sold == 520
