"""A ledger with a short, realistic history, on either store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from ledger.application import Ledger
from ledger.audit.service import Audit
from ledger.bootstrap import open_services
from ledger.settings import LedgerSettings
from ledger.values import Actor, Role

HELPDESK = Actor(Role.HELPDESK, "desk-1")
SPECIALIST = Actor(Role.SPECIALIST, "ana")
FINANCE = Actor(Role.FINANCE, "finance-1")


@dataclass
class Story:
    ledger: Ledger
    audit: Audit
    url: str
    customer_id: str
    request_id: UUID


def tell_story(ledger: Ledger, customer_id: str) -> UUID:
    """Open, buy 80, charge a 25-credit store update, dispute, refund 10."""
    ledger.open_account(customer_id, "Acme Store", actor=HELPDESK)
    invoice = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "wire-1", actor=FINANCE)
    request = ledger.open_request(
        customer_id,
        "store_update",
        "helpdesk",
        "update to 4.4.4",
        from_version="4.4.1",
        to_version="4.4.4",
        actor=HELPDESK,
    )
    ledger.charge(request.request_id, actor=SPECIALIST)
    ledger.dispute(request.request_id, "took too long", actor=HELPDESK)
    ledger.refund(request.request_id, 10, "goodwill", actor=SPECIALIST)
    ledger.adjust_balance(customer_id, -5, "correction", actor=FINANCE)
    return request.request_id


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def story(database_url: str) -> Iterator[Story]:
    services = open_services(LedgerSettings(database_url=database_url, support_hours="24/7"))
    customer_id = f"cust-{uuid4().hex[:10]}"
    request_id = tell_story(services.ledger, customer_id)
    services.audit.catch_up()
    yield Story(services.ledger, services.audit, database_url, customer_id, request_id)
    services.close()


def tamper_sqlite(url: str, *statements: str, params: tuple[object, ...] = ()) -> None:
    """Change a SQLite store from outside, as someone with the file would:
    drop every trigger (the append-only ones), then run the statements."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        for (name,) in triggers.fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        for statement in statements:
            conn.execute(statement, params)
    finally:
        conn.close()
