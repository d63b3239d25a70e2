"""Webhook delivery to real HTTP receivers on 127.0.0.1: signed, in order
per webhook, retried after failures and timeouts without a gap, one webhook
independent of another, stopped by disabling, given up after the limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import uuid4

from ledger.application import Ledger
from ledger.integrations.delivery import verify
from ledger.integrations.service import Integrations
from ledger.integrations.webhooks import DELIVERED, FAILED, GIVEN_UP, RETRYING
from ledger.values import Actor, Role
from tests.support.receiver import Receiver, receiver

ADMIN = Actor(Role.ADMIN, "di")
HELPDESK = Actor(Role.HELPDESK, "ana")
FINANCE = Actor(Role.FINANCE, "cy")
SPECIALIST = Actor(Role.SPECIALIST, "bo")
ACCOUNT_TYPES = ["AccountOpened", "CreditsPurchased", "CreditsCharged", "BalanceLow"]


def activity(ledger: Ledger, charges: int = 3) -> str:
    """An account bought 80 credits and paid for ``charges`` store updates of
    25 credits: 80 -> 55 -> 30 -> 5 (BalanceLow at the third)."""
    customer = f"C-{uuid4().hex[:8]}"
    ledger.open_account(customer, "Acme", actor=HELPDESK)
    invoice = ledger.issue_invoice(customer, package=80, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "pay-1", actor=FINANCE)
    for _ in range(charges):
        request = ledger.open_request(
            customer,
            "store_update",
            "helpdesk",
            "update",
            from_version="4.4.1",
            to_version="4.4.4",
            actor=HELPDESK,
        )
        ledger.charge(request.request_id, actor=SPECIALIST)
    return customer


def expected(integrations: Integrations, after: int, types: list[str]) -> list[int]:
    return [i.position for i in integrations.feed.page(after, 500, types).items]


def has(count: int) -> Callable[[Receiver], bool]:
    return lambda r: len(r.got) >= count


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_deliveries_are_signed_and_in_order(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    integrations = integrations_for().start()
    with receiver() as rec:
        registered = integrations.webhooks.register(rec.url, ACCOUNT_TYPES, actor=ADMIN)
        start = registered.webhook.position
        activity(ledger)
        want = expected(integrations, start, ACCOUNT_TYPES)
        assert len(want) == 6  # opened, purchased, 3 charges, BalanceLow
        rec.wait_for(has(len(want)))
        time.sleep(0.2)
        assert rec.positions() == want
        for got in rec.got:
            assert verify(registered.secret, got.body, got.headers["Ledger-Signature"], time.time())
            assert not verify("whsec_wrong", got.body, got.headers["Ledger-Signature"], time.time())
            assert got.headers["Ledger-Event-Position"] == str(got.item["position"])
        assert [r.item["type"] for r in rec.got][-2:] == ["CreditsCharged", "BalanceLow"]
        assert rec.got[-1].item["data"] == {"balance": 5, "previous_balance": 30, "threshold": 20}


def test_a_receiver_that_fails_three_times_gets_everything_in_order_once_it_recovers(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    integrations = integrations_for().start()
    with receiver(script=[500, 500, 500]) as rec:
        registered = integrations.webhooks.register(rec.url, ACCOUNT_TYPES, actor=ADMIN)
        activity(ledger)
        want = expected(integrations, registered.webhook.position, ACCOUNT_TYPES)
        rec.wait_for(has(len(want)))
        time.sleep(0.2)
        assert rec.positions() == want  # every event, in order, no gap, no repeat
        webhook_id = registered.webhook.webhook_id
        eventually(lambda: integrations.webhooks.get(webhook_id).position == want[-1])
        log = integrations.webhooks.deliveries(registered.webhook.webhook_id, limit=500)
        outcomes = [a.outcome for a in reversed(log)]
        assert outcomes[:4] == [RETRYING, RETRYING, RETRYING, DELIVERED]
        assert {a.position for a in log[-4:]} == {want[0]}
        assert log[-1].status_code == 500 and log[-1].next_retry_at is not None
        assert outcomes.count(DELIVERED) == len(want)


def test_a_hanging_receiver_is_cut_at_the_timeout_and_retried(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    integrations = integrations_for(webhook_timeout_s=0.3).start()
    with receiver(script=["hang"], hang_s=3.0) as rec:
        registered = integrations.webhooks.register(rec.url, ["AccountOpened"], actor=ADMIN)
        started = time.monotonic()
        activity(ledger, charges=0)
        rec.wait_for(has(1))
        assert time.monotonic() - started < 2.5  # not held by the hanging answer
        webhook_id = registered.webhook.webhook_id
        eventually(lambda: integrations.webhooks.deliveries(webhook_id)[0].outcome == DELIVERED)
        log = integrations.webhooks.deliveries(webhook_id)
        first, last = log[-1], log[0]
        assert first.outcome == RETRYING and first.status_code is None
        assert first.error is not None and "Timeout" in first.error
        assert last.outcome == DELIVERED


def test_a_failing_webhook_does_not_delay_another(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    integrations = integrations_for(webhook_timeout_s=0.3).start()
    with receiver(script=["hang"] * 1000, hang_s=1.0) as bad, receiver() as good:
        integrations.webhooks.register(bad.url, ACCOUNT_TYPES, actor=ADMIN)
        registered = integrations.webhooks.register(good.url, ACCOUNT_TYPES, actor=ADMIN)
        activity(ledger)
        want = expected(integrations, registered.webhook.position, ACCOUNT_TYPES)
        good.wait_for(has(len(want)), timeout_s=5)
        assert good.positions() == want
        assert bad.got == []


def test_disabling_stops_deliveries_and_keeps_the_record(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    integrations = integrations_for().start()
    with receiver() as rec:
        registered = integrations.webhooks.register(rec.url, ["AccountOpened"], actor=ADMIN)
        activity(ledger, charges=0)
        rec.wait_for(has(1))
        webhook = integrations.webhooks.disable(registered.webhook.webhook_id)
        assert webhook.status == "disabled" and webhook.disabled_at is not None
        activity(ledger, charges=0)
        time.sleep(0.5)
        assert len(rec.got) == 1
        assert [w.status for w in integrations.webhooks.all()] == ["disabled"]


def test_a_webhook_gives_up_after_the_limit_and_replay_restarts_it(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    integrations = integrations_for(webhook_give_up_s=0.3).start()
    with receiver(script=[503] * 1000) as rec:
        registered = integrations.webhooks.register(rec.url, ["AccountOpened"], actor=ADMIN)
        webhook_id = registered.webhook.webhook_id
        activity(ledger, charges=0)
        deadline = time.monotonic() + 10
        while integrations.webhooks.get(webhook_id).status != FAILED:
            assert time.monotonic() < deadline, "never gave up"
            time.sleep(0.05)
        assert integrations.webhooks.deliveries(webhook_id)[0].outcome == GIVEN_UP
        ready = integrations.readiness()
        assert [f["webhook_id"] for f in ready["failed"]] == [str(webhook_id)]
        assert "503" in ready["failed"][0]["last_error"]
        rec.script.clear()
        integrations.webhooks.replay(webhook_id, registered.webhook.position + 1)
        rec.wait_for(has(1))
        assert integrations.webhooks.get(webhook_id).status == "active"
        assert integrations.readiness()["failed"] == []


def test_one_process_delivers_while_another_waits_for_the_lock(
    ledger: Ledger, integrations_for: Callable[..., Integrations]
) -> None:
    first, second = integrations_for().start(), integrations_for().start()
    eventually(lambda: first.delivery.delivering or second.delivery.delivering)
    time.sleep(0.3)
    assert [first.delivery.delivering, second.delivery.delivering].count(True) == 1
    with receiver() as rec:
        registered = first.webhooks.register(rec.url, ACCOUNT_TYPES, actor=ADMIN)
        activity(ledger)
        want = expected(first, registered.webhook.position, ACCOUNT_TYPES)
        rec.wait_for(has(len(want)))
        time.sleep(0.3)
        assert rec.positions() == want  # each once: the other process sent nothing
