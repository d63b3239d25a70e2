"""Commands are values (``ledger.commands``), no database: each is a frozen
dataclass of its whole input; its idempotency fingerprint is derived from
that value, so equal commands share one and any changed field changes it;
the fingerprint is the one receipts were stored with before commands were
values; results stored under their old topics still resolve."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import resolve_topic

from ledger import commands
from ledger.commands import (
    AcceptQuote,
    AdjustBalance,
    Cancel,
    Charge,
    Command,
    DeclineQuote,
    Dispute,
    IssueInvoice,
    OpenAccount,
    OpenRequest,
    PayInvoice,
    PublishPriceList,
    Quote,
    RecordSubscription,
    Refer,
    Refund,
    RejectDispute,
    RequestPreQuote,
    RevisePrice,
    VoidInvoice,
    fingerprint,
)
from ledger.commands import results as r

REQUEST = UUID("6f1c2a64-1d8e-4a43-9b5e-0c2f8b7d9e11")
INVOICE = UUID("0b7e4e1a-5f3c-4d2b-8a91-7c6d5e4f3a21")

# One value of each command, and the keyword arguments the command's method
# on ``Ledger`` passed for the fingerprint before commands were values.
EXAMPLES: list[tuple[Command[Any], str, dict[str, Any]]] = [
    (OpenAccount("c-1", "Acme"), "open_account", {"customer_id": "c-1", "name": "Acme"}),
    (
        IssueInvoice("c-1", credits=100, amount_usd="95.50"),
        "issue_invoice",
        {"customer_id": "c-1", "package": None, "credits": 100, "amount_usd": "95.50"},
    ),
    (
        IssueInvoice("c-1", package=80),
        "issue_invoice",
        {"customer_id": "c-1", "package": 80, "credits": None, "amount_usd": None},
    ),
    (
        PayInvoice(INVOICE, "bank-1"),
        "record_payment",
        {"invoice_id": INVOICE, "payment_ref": "bank-1"},
    ),
    (VoidInvoice(INVOICE, "Twice"), "void_invoice", {"invoice_id": INVOICE, "reason": "Twice"}),
    (
        AdjustBalance("c-1", -5, "Gift"),
        "adjust_balance",
        {"customer_id": "c-1", "credits": -5, "reason": "Gift"},
    ),
    (
        RecordSubscription("c-1", date(2026, 3, 1), date(2027, 3, 1)),
        "record_subscription",
        {"customer_id": "c-1", "valid_from": date(2026, 3, 1), "valid_until": date(2027, 3, 1)},
    ),
    (
        OpenRequest("c-1", "store_update", "email", "Update", "4.1", "4.2", True),
        "open_request",
        {
            "customer_id": "c-1",
            "category": "store_update",
            "channel": "email",
            "subject": "Update",
            "from_version": "4.1",
            "to_version": "4.2",
            "third_party": True,
        },
    ),
    (
        RequestPreQuote(REQUEST, "a note"),
        "request_pre_quote",
        {"request_id": REQUEST, "note": "a note"},
    ),
    (
        Quote(REQUEST, 30, 5),
        "quote",
        {"request_id": REQUEST, "price": 30, "surcharge": 5},
    ),
    (AcceptQuote(REQUEST), "accept_quote", {"request_id": REQUEST}),
    (DeclineQuote(REQUEST), "decline_quote", {"request_id": REQUEST, "reason": None}),
    (
        RevisePrice(REQUEST, 45, "More work"),
        "revise_price",
        {"request_id": REQUEST, "price": 45, "reason": "More work"},
    ),
    (Charge(REQUEST), "charge", {"request_id": REQUEST}),
    (Refer(REQUEST, "Too big"), "refer", {"request_id": REQUEST, "reason": "Too big"}),
    (Cancel(REQUEST, "Gone"), "cancel", {"request_id": REQUEST, "reason": "Gone"}),
    (Dispute(REQUEST, "Unsolved"), "dispute", {"request_id": REQUEST, "reason": "Unsolved"}),
    (
        Refund(REQUEST, 8, "Partly"),
        "resolve_dispute",
        {"request_id": REQUEST, "credits": 8, "reason": "Partly"},
    ),
    (
        RejectDispute(REQUEST, "Solved"),
        "resolve_dispute",
        {"request_id": REQUEST, "reason": "Solved"},
    ),
    (
        PublishPriceList(
            [{"credits": 80, "amount_usd": "95.00"}],
            {"configuration": 12},
            {"base": 20, "included_steps": 2, "per_step": 5},
            datetime(2026, 12, 7, tzinfo=UTC),
        ),
        "publish_price_list",
        {
            "packages": [{"credits": 80, "amount_usd": "95.00"}],
            "categories": {"configuration": 12},
            "store_update": {"base": 20, "included_steps": 2, "per_step": 5},
            "effective_from": datetime(2026, 12, 7, tzinfo=UTC),
            "minimums": None,
            "free_categories": None,
            "subscription_categories": None,
        },
    ),
]

COMMANDS = [c for c, _, _ in EXAMPLES]
ids = [type(c).__name__ for c in COMMANDS]


def old_fingerprint(action: str, arguments: dict[str, Any]) -> str:
    """The fingerprint as ``Ledger._execute`` computed it before commands were values."""
    canonical = json.dumps([action, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed(value: Any) -> Any:
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "!"
    if isinstance(value, UUID):
        return uuid4()
    if isinstance(value, date):
        return date(value.year + 1, value.month, value.day)
    if isinstance(value, Decimal):
        return value + 1
    if isinstance(value, dict):
        return {**value, "other": 1}
    if isinstance(value, list):
        return [*value, "other"]
    assert value is None
    return "given"


def test_every_command_of_the_package_has_an_example() -> None:
    exported = {
        getattr(commands, name)
        for name in commands.__all__
        if isinstance(getattr(commands, name), type)
        and issubclass(getattr(commands, name), Command)
        and getattr(commands, name) is not Command
    }
    assert exported == {type(c) for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS, ids=ids)
def test_a_command_is_a_frozen_value(command: Command[Any]) -> None:
    field = dataclasses.fields(command)[0]  # type: ignore[arg-type]

    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(command, field.name, "other")
    assert command == dataclasses.replace(command)  # type: ignore[type-var]


@pytest.mark.parametrize("command", COMMANDS, ids=ids)
def test_a_command_docstring_says_what_it_emits_and_raises(command: Command[Any]) -> None:
    doc = type(command).__doc__ or ""

    assert "Emits ``" in doc and "Raises" in doc


@pytest.mark.parametrize("command", COMMANDS, ids=ids)
def test_two_commands_with_the_same_values_have_one_fingerprint(command: Command[Any]) -> None:
    same = dataclasses.replace(command)  # type: ignore[type-var]

    assert same is not command
    assert fingerprint(same) == fingerprint(command)


@pytest.mark.parametrize(
    ("command", "field"),
    [(c, f.name) for c in COMMANDS for f in dataclasses.fields(c)],  # type: ignore[arg-type]
    ids=[f"{type(c).__name__}.{f.name}" for c in COMMANDS for f in dataclasses.fields(c)],  # type: ignore[arg-type]
)
def test_any_changed_field_changes_the_fingerprint(command: Command[Any], field: str) -> None:
    other = dataclasses.replace(command, **{field: changed(getattr(command, field))})  # type: ignore[type-var]

    assert fingerprint(other) != fingerprint(command)


@pytest.mark.parametrize(("command", "action", "arguments"), EXAMPLES, ids=ids)
def test_the_fingerprint_is_the_one_receipts_were_stored_with(
    command: Command[Any], action: str, arguments: dict[str, Any]
) -> None:
    assert command.action.value == action
    assert fingerprint(command) == old_fingerprint(action, arguments)


def test_an_amount_given_as_text_or_as_a_decimal_has_one_fingerprint() -> None:
    """As before: an idempotent retry may send the amount either way."""
    as_text = IssueInvoice("c-1", credits=100, amount_usd="95.50")

    assert fingerprint(as_text) == fingerprint(
        IssueInvoice("c-1", credits=100, amount_usd=Decimal("95.50"))
    )


def test_two_kinds_of_command_never_share_a_fingerprint() -> None:
    """Refund and RejectDispute share an action: their fields tell them apart."""
    shapes = {
        (type(c).action, frozenset(f.name for f in dataclasses.fields(c)))  # type: ignore[arg-type]
        for c in COMMANDS
    }

    assert len(shapes) == len({type(c) for c in COMMANDS})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("AccountOpened", r.OpenAccountResult),
        ("InvoiceIssued", r.IssueInvoiceResult),
        ("InvoiceSettled", r.InvoiceChangeResult),
        ("BalanceChanged", r.AdjustBalanceResult),
        ("SubscriptionRecorded", r.RecordSubscriptionResult),
        ("RequestChanged", r.RequestChangeResult),
        ("Quoted", r.QuoteResult),
        ("Charged", r.ChargeResult),
        ("Refunded", r.RefundResult),
    ],
)
def test_a_result_topic_stored_before_the_rename_resolves_to_the_result(
    old: str, new: type
) -> None:
    assert resolve_topic(f"ledger.application:{old}") is new
