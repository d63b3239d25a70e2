"""Who may do what (POLICY.md, "Who may do what"): one table. The HTTP layer
checks it for every endpoint that needs a key (reads and commands, before the
handler runs), and the application checks it again for every command, so a
command is refused to a role whoever calls it (the API, the CLI, a test).

``admin`` may do everything.
"""

from __future__ import annotations

from enum import StrEnum

from ledger.errors import PermissionDeniedError
from ledger.values import Actor, Role


class Action(StrEnum):
    OPEN_ACCOUNT = "open_account"
    READ_ACCOUNT = "read_account"
    OPEN_REQUEST = "open_request"
    REQUEST_PRE_QUOTE = "request_pre_quote"
    ACCEPT_QUOTE = "accept_quote"
    DECLINE_QUOTE = "decline_quote"
    DISPUTE = "dispute"
    CANCEL = "cancel"
    READ_REQUEST = "read_request"
    QUOTE = "quote"
    REVISE_PRICE = "revise_price"
    CHARGE = "charge"
    REFER = "refer"
    RESOLVE_DISPUTE = "resolve_dispute"
    READ_HISTORY = "read_history"
    ISSUE_INVOICE = "issue_invoice"
    VOID_INVOICE = "void_invoice"
    RECORD_PAYMENT = "record_payment"
    RECORD_SUBSCRIPTION = "record_subscription"
    ADJUST_BALANCE = "adjust_balance"
    READ_AUDIT = "read_audit"
    READ_INVOICE = "read_invoice"
    READ_STATEMENT = "read_statement"
    VERIFY_LEDGER = "verify_ledger"
    OPERATE = "operate"
    READ_EVENTS = "read_events"
    MANAGE_WEBHOOKS = "manage_webhooks"


_H, _S, _F = Role.HELPDESK, Role.SPECIALIST, Role.FINANCE

ALLOWED: dict[Action, frozenset[Role]] = {
    Action.OPEN_ACCOUNT: frozenset({_H, _F}),
    Action.READ_ACCOUNT: frozenset({_H, _S, _F}),
    Action.OPEN_REQUEST: frozenset({_H}),
    Action.REQUEST_PRE_QUOTE: frozenset({_H}),
    Action.ACCEPT_QUOTE: frozenset({_H}),
    Action.DECLINE_QUOTE: frozenset({_H}),
    Action.DISPUTE: frozenset({_H}),
    Action.CANCEL: frozenset({_H}),
    Action.READ_REQUEST: frozenset({_H, _S, _F}),
    Action.QUOTE: frozenset({_S}),
    Action.REVISE_PRICE: frozenset({_S}),
    Action.CHARGE: frozenset({_S}),
    Action.REFER: frozenset({_S}),
    Action.RESOLVE_DISPUTE: frozenset({_S}),
    Action.READ_HISTORY: frozenset({_S, _F}),
    Action.ISSUE_INVOICE: frozenset({_F}),
    Action.VOID_INVOICE: frozenset({_F}),
    Action.RECORD_PAYMENT: frozenset({_F}),
    Action.RECORD_SUBSCRIPTION: frozenset({_F}),
    Action.ADJUST_BALANCE: frozenset({_F}),
    Action.READ_AUDIT: frozenset({_F}),
    # Decision (POLICY.md): the helpdesk reads invoices too, so that it can
    # tell a customer whether a payment arrived.
    Action.READ_INVOICE: frozenset({_H, _F}),
    Action.READ_STATEMENT: frozenset({_H, _F}),
    Action.VERIFY_LEDGER: frozenset({_F}),
    Action.OPERATE: frozenset(),
    Action.READ_EVENTS: frozenset({_F}),
    Action.MANAGE_WEBHOOKS: frozenset(),
}


def may(role: Role, action: Action) -> bool:
    return role is Role.ADMIN or role in ALLOWED[action]


def roles_that_may(action: Action) -> list[Role]:
    """Every role allowed ``action``, in the order of ``Role`` (admin last)."""
    return [role for role in Role if may(role, action)]


def authorize(actor: Actor, action: Action) -> None:
    """Raise ``PermissionDeniedError`` unless the actor's role may do ``action``."""
    if not may(actor.role, action):
        allowed = [role.value for role in roles_that_may(action)]
        raise PermissionDeniedError(actor.role.value, action.value, allowed)
