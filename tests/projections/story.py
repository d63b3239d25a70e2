"""A realistic story written through the application, and its expected
read-model figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from ledger.application import Ledger
from ledger.values import Actor, Role

HELPDESK = Actor(Role.HELPDESK, "desk-1")
SPECIALIST = Actor(Role.SPECIALIST, "ana")
FINANCE = Actor(Role.FINANCE, "finance-1")


@dataclass
class Story:
    requests: dict[str, UUID] = field(default_factory=dict)
    last_position: int = 0


def tell(ledger: Ledger, prefix: str = "") -> Story:
    """Two customers: packages and a custom price, a voided invoice, requests
    charged, refunded twice, rejected, declined, cancelled, referred, a
    revised price, a subscription, goodwill and a correction."""
    story = Story()
    a, b = f"{prefix}acme", f"{prefix}bolt"
    ledger.open_account(a, "Acme Ltd", actor=HELPDESK)
    ledger.open_account(b, "Bolt Inc", actor=HELPDESK)

    def pay(customer: str, **kwargs: object) -> None:
        invoice = ledger.issue_invoice(customer, actor=FINANCE, **kwargs)  # type: ignore[arg-type]
        ledger.pay_invoice(invoice.invoice_id, f"pay-{invoice.invoice_id}", actor=FINANCE)

    pay(a, package=80)  # 80 credits for 90.00
    pay(a, credits=100, amount_usd="50.00")  # custom: 0.50 a credit
    pay(b, package=160)  # 160 for 180.00
    voided = ledger.issue_invoice(b, package=320, actor=FINANCE)
    ledger.void_invoice(voided.invoice_id, "sent twice", actor=FINANCE)
    ledger.record_subscription(a, date(2026, 1, 1), date(2027, 1, 1), actor=FINANCE)

    def opened(customer: str, category: str, key: str, **kwargs: object) -> UUID:
        request = ledger.open_request(
            customer,
            category,
            "helpdesk",
            f"subject {key}",
            actor=HELPDESK,
            **kwargs,  # type: ignore[arg-type]
        )
        story.requests[key] = request.request_id
        return request.request_id

    charged = opened(a, "investigation", "charged")  # 20
    ledger.charge(charged, actor=SPECIALIST)
    refunded = opened(a, "installation", "refunded")  # 20
    ledger.charge(refunded, actor=SPECIALIST)
    ledger.dispute(refunded, "not solved", actor=HELPDESK)
    ledger.refund(refunded, 5, "partly", actor=SPECIALIST)
    ledger.dispute(refunded, "still not solved", actor=HELPDESK)
    ledger.refund(refunded, 10, "more", actor=SPECIALIST)
    rejected = opened(b, "configuration", "rejected")  # 10
    ledger.charge(rejected, actor=SPECIALIST)
    ledger.dispute(rejected, "too dear", actor=HELPDESK)
    ledger.reject_dispute(rejected, "as agreed", actor=SPECIALIST)
    declined = opened(b, "installation", "declined")
    ledger.request_pre_quote(declined, "how much?", actor=HELPDESK)
    ledger.quote(declined, 25, 5, actor=SPECIALIST)
    ledger.decline_quote(declined, actor=HELPDESK)
    complex_ = opened(b, "complex_modification", "complex")
    ledger.quote(complex_, 40, actor=SPECIALIST)
    ledger.accept_quote(complex_, actor=HELPDESK)
    ledger.revise_price(complex_, 50, "more work", actor=SPECIALIST)
    ledger.accept_quote(complex_, actor=HELPDESK)
    ledger.charge(complex_, actor=SPECIALIST)  # 50
    ledger.cancel(opened(a, "configuration", "cancelled"), "by mistake", actor=HELPDESK)
    ledger.refer(opened(a, "investigation", "referred"), "custom work", actor=SPECIALIST)
    update = opened(a, "store_update", "update", from_version="4.4.1", to_version="4.4.4")
    ledger.charge(update, actor=SPECIALIST)  # 25
    ledger.charge(opened(a, "security_fix", "free"), actor=SPECIALIST)  # 0
    ledger.adjust_balance(b, 15, "goodwill", actor=FINANCE)
    story.last_position = ledger.adjust_balance(a, -7, "correction", actor=FINANCE).position
    return story


# acme: 80 + 100 - 20 - 20 + 5 + 10 - 25 - 0 - 7 = 123
# bolt: 160 - 10 - 50 + 15 = 115
