"""Who may do what (POLICY.md, "Who may do what", with the roles of each
endpoint in API.md): every role against every action; admin may do all."""

from __future__ import annotations

import pytest

from ledger.errors import ForbiddenError, PermissionDeniedError
from ledger.permissions import ALLOWED, Action, authorize, may
from ledger.values import Actor, Role

A = Action

#: Written from the policy's words, not copied from ledger.permissions.
POLICY: dict[Role, set[Action]] = {
    # "open accounts and requests, ask for a pre-quote, accept or decline a
    # quote, dispute, cancel; read balances, requests and invoices"
    Role.HELPDESK: {
        A.OPEN_ACCOUNT,
        A.OPEN_REQUEST,
        A.REQUEST_PRE_QUOTE,
        A.ACCEPT_QUOTE,
        A.DECLINE_QUOTE,
        A.DISPUTE,
        A.CANCEL,
        A.READ_ACCOUNT,
        A.READ_REQUEST,
        A.READ_STATEMENT,  # issue 5: statements for helpdesk and finance
        A.READ_INVOICE,  # Decision: so it can tell a customer a payment arrived
    },
    # "quote, revise a price, charge (answer), refer, resolve disputes; read
    # and replay any history" (API.md: accounts and requests included)
    Role.SPECIALIST: {
        A.QUOTE,
        A.REVISE_PRICE,
        A.CHARGE,
        A.REFER,
        A.RESOLVE_DISPUTE,
        A.READ_HISTORY,
        A.READ_ACCOUNT,
        A.READ_REQUEST,
    },
    # "issue and void invoices, record payments, subscriptions and
    # adjustments; read the audit trail, reports, exports" (API.md: finance
    # also opens accounts and reads accounts, requests and their history)
    Role.FINANCE: {
        A.ISSUE_INVOICE,
        A.VOID_INVOICE,
        A.RECORD_PAYMENT,
        A.RECORD_SUBSCRIPTION,
        A.ADJUST_BALANCE,
        A.READ_AUDIT,
        A.READ_INVOICE,
        A.OPEN_ACCOUNT,
        A.READ_ACCOUNT,
        A.READ_REQUEST,
        A.READ_HISTORY,
        A.READ_STATEMENT,
        A.VERIFY_LEDGER,  # issue 5: GET /v1/audit/verify for finance and admin
        A.READ_EVENTS,  # API-1.1.md: GET /v1/events (finance, admin); webhooks: admin
    },
    # "everything, and operations"
    Role.ADMIN: set(Action),
}

CASES = [
    pytest.param(role, action, action in POLICY[role], id=f"{role.value}-{action.value}")
    for role in Role
    for action in Action
]


@pytest.mark.parametrize(("role", "action", "allowed"), CASES)
def test_role_may_do_exactly_what_the_policy_lists(
    role: Role, action: Action, allowed: bool
) -> None:
    assert may(role, action) is allowed


@pytest.mark.parametrize(("role", "action", "allowed"), CASES)
def test_authorize_refuses_an_action_the_role_may_not_do(
    role: Role, action: Action, allowed: bool
) -> None:
    actor = Actor(role, f"{role.value}-1")
    if allowed:
        authorize(actor, action)
        return
    with pytest.raises(PermissionDeniedError) as refused:
        authorize(actor, action)
    assert isinstance(refused.value, ForbiddenError)
    assert (refused.value.role, refused.value.action) == (role.value, action.value)
    # The refusal names who may: every role the policy allows, and admin.
    who = [r.value for r in Role if action in POLICY[r]]
    assert refused.value.allowed_roles == who
    assert str(refused.value).endswith(f"allowed: {', '.join(who)}")


def test_operations_are_for_admin_only() -> None:
    assert [role for role in Role if may(role, A.OPERATE)] == [Role.ADMIN]


def test_every_action_has_a_row_in_the_table() -> None:
    assert set(ALLOWED) == set(Action)
