"""Who may do what, endpoint by endpoint, exactly as POLICY.md's table says.

The expectations are written out here from the policy, not read from
``ledger.permissions``: a refused role gets 403 before anything else is
looked at; an allowed role gets anything but 401/403 (ids are random, so
mostly 404 or 422). No token or an unknown one: 401 with WWW-Authenticate.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from tests.api.conftest import Api

H, S, F, A = "helpdesk", "specialist", "finance", "admin"
ROLES = (H, S, F, A)
RID = "00000000-0000-4000-8000-000000000001"
CID = "C-roles-unknown"

# (method, path, body, roles that may) -- from POLICY.md, "Who may do what".
TABLE: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("POST", "/v1/accounts", {"customer_id": "", "name": "n"}, {H, F}),
    ("GET", f"/v1/accounts/{CID}", None, {H, S, F}),
    ("GET", f"/v1/accounts/{CID}/movements", None, {H, S, F}),
    ("POST", f"/v1/accounts/{CID}/invoices", {"package": 80}, {F}),
    ("POST", f"/v1/invoices/{RID}/payment", {"payment_ref": "p"}, {F}),
    ("POST", f"/v1/invoices/{RID}/void", {"reason": "r"}, {F}),
    ("GET", f"/v1/invoices/{RID}", None, {H, F}),
    (
        "POST",
        f"/v1/accounts/{CID}/subscription",
        {"valid_from": "2026-01-01", "valid_until": "2027-01-01"},
        {F},
    ),
    ("POST", f"/v1/accounts/{CID}/adjustments", {"credits": 5, "reason": "r"}, {F}),
    (
        "POST",
        "/v1/requests",
        {"customer_id": CID, "category": "configuration", "channel": "helpdesk", "subject": "s"},
        {H},
    ),
    ("GET", f"/v1/requests/{RID}", None, {H, S, F}),
    ("POST", f"/v1/requests/{RID}/pre-quote", {}, {H}),
    ("POST", f"/v1/requests/{RID}/quote", {"price": 20}, {S}),
    ("POST", f"/v1/requests/{RID}/quote/accept", None, {H}),
    ("POST", f"/v1/requests/{RID}/quote/decline", None, {H}),
    ("POST", f"/v1/requests/{RID}/price", {"price": 20, "reason": "r"}, {S}),
    ("POST", f"/v1/requests/{RID}/charge", None, {S}),
    ("POST", f"/v1/requests/{RID}/referral", {"reason": "r"}, {S}),
    ("POST", f"/v1/requests/{RID}/cancel", None, {H}),
    ("POST", f"/v1/requests/{RID}/dispute", {"reason": "r"}, {H}),
    ("POST", f"/v1/requests/{RID}/refund", {"credits": 5, "reason": "r"}, {S}),
    ("POST", f"/v1/requests/{RID}/dispute/reject", {"reason": "r"}, {S}),
    ("GET", f"/v1/requests/{RID}/history", None, {S, F}),
    ("GET", "/v1/audit/movements", None, {F}),
    ("GET", "/v1/audit/verify", None, {F}),
    ("GET", f"/v1/accounts/{CID}/statement", None, {H, F}),
    ("GET", "/v1/reports/summary", None, {F}),
    ("GET", "/v1/support-hours", None, {H, S, F}),
]


def _call(api: Api, role: str | None, method: str, path: str, body: Any, **kw: Any) -> Any:
    if method == "GET":
        return api.get(role, path, **kw)
    return api.post(role, path, body, **kw)


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), TABLE, ids=[f"{m} {p}" for m, p, *_ in TABLE]
)
def test_each_role_is_allowed_or_refused_as_the_policy_says(
    api: Api, method: str, path: str, body: dict[str, Any] | None, allowed: set[str]
) -> None:
    for role in ROLES:
        response = _call(api, role, method, path, body)
        may = role in allowed or role == A  # admin may do everything
        if may:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)
            problem = response.json()
            assert problem["title"] == "Not allowed for this role"
            # The refusal says who may: the roles of the policy's table, and admin.
            assert set(problem["allowed_roles"]) == allowed | {A}, problem


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), TABLE[:6], ids=[f"{m} {p}" for m, p, *_ in TABLE[:6]]
)
def test_no_token_or_an_unknown_one_is_401(
    api: Api, method: str, path: str, body: dict[str, Any] | None, allowed: set[str]
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Basic eDp5"},
    ):
        response = _call(api, None, method, path, body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_refusal_by_role_comes_before_bad_input(api: Api) -> None:
    response = api.post("helpdesk", f"/v1/accounts/{CID}/adjustments", {"credits": "five"})
    assert response.status_code == 403


def test_the_actor_on_events_is_the_key_name_never_the_token(api: Api) -> None:
    customer_id = f"C-{uuid4().hex[:10]}"
    api.ok(api.post("finance", "/v1/accounts", {"customer_id": customer_id, "name": "n"}), 201)
    opened = api.ok(
        api.post(
            "finance", f"/v1/accounts/{customer_id}/adjustments", {"credits": 3, "reason": "r"}
        )
    )
    trail = api.ok(
        api.get(
            "finance",
            "/v1/audit/movements",
            params={"customer_id": customer_id, "after": opened["position"]},
        )
    )
    assert [m["actor"] for m in trail["items"]] == ["finance:cy"]
    assert "token" not in str(trail)
