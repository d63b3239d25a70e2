"""Four-eyes adjustments over HTTP (issue 15): 202 for a proposal, approval
and rejection by another finance key, 403 naming the rule for the proposer,
the list of proposals, roles and errors."""

from __future__ import annotations

import pytest

from tests.api.conftest import SECOND_FINANCE, Api


def proposed(api: Api, credits: int = 500) -> tuple[str, dict[str, object]]:
    customer_id = api.open_account()
    body = api.ok(
        api.post(
            "finance",
            f"/v1/accounts/{customer_id}/adjustments",
            {"credits": credits, "reason": "Migration from the old system"},
        ),
        202,
    )
    return customer_id, body


def test_a_small_adjustment_answers_200_as_before(api: Api) -> None:
    customer_id = api.open_account()
    body = api.ok(
        api.post(
            "finance", f"/v1/accounts/{customer_id}/adjustments", {"credits": 100, "reason": "r"}
        )
    )
    assert body["balance"] == 100


def test_a_large_one_is_proposed_and_another_key_approves_it(api: Api) -> None:
    customer_id, body = proposed(api)
    assert body["status"] == "proposed" and body["adjustment_id"] and body["position"]

    listed = api.ok(api.get("finance", "/v1/adjustments", params={"status": "proposed"}))
    assert body["adjustment_id"] in [a["adjustment_id"] for a in listed["adjustments"]]

    approved = api.ok(
        api.post(
            "finance", f"/v1/adjustments/{body['adjustment_id']}/approve", headers=SECOND_FINANCE
        )
    )
    assert (approved["status"], approved["balance"]) == ("approved", 500)
    account = api.ok(
        api.get("finance", f"/v1/accounts/{customer_id}", params={"after": approved["position"]})
    )
    assert account["balance"] == 500
    listed = api.ok(api.get("finance", "/v1/adjustments", params={"status": "proposed"}))
    assert body["adjustment_id"] not in [a["adjustment_id"] for a in listed["adjustments"]]
    again = api.post(
        "finance", f"/v1/adjustments/{body['adjustment_id']}/approve", headers=SECOND_FINANCE
    )
    assert again.status_code == 409


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_proposers_own_key_gets_403_naming_the_four_eyes_rule(api: Api, decision: str) -> None:
    _, body = proposed(api)

    response = api.post(
        "finance", f"/v1/adjustments/{body['adjustment_id']}/{decision}", {"reason": "no"}
    )

    assert response.status_code == 403
    assert response.json()["type"].endswith("/four-eyes")
    assert "four-eyes" in response.json()["detail"]


def test_a_rejection_needs_a_reason(api: Api) -> None:
    _, body = proposed(api)
    path = f"/v1/adjustments/{body['adjustment_id']}/reject"

    assert api.post("finance", path, {}, headers=SECOND_FINANCE).status_code == 422
    rejected = api.ok(
        api.post("finance", path, {"reason": "wrong account"}, headers=SECOND_FINANCE)
    )

    assert (rejected["status"], rejected["balance"]) == ("rejected", 0)


def test_the_balance_rule_is_checked_at_approval(api: Api) -> None:
    _, body = proposed(api, credits=-200)

    response = api.post(
        "finance", f"/v1/adjustments/{body['adjustment_id']}/approve", headers=SECOND_FINANCE
    )

    assert response.status_code == 409


@pytest.mark.parametrize("role", ["helpdesk", "specialist"])
def test_only_finance_lists_and_decides(api: Api, role: str) -> None:
    _, body = proposed(api)

    assert api.get(role, "/v1/adjustments").status_code == 403
    assert api.post(role, f"/v1/adjustments/{body['adjustment_id']}/approve").status_code == 403


def test_an_unknown_adjustment_is_404_and_an_unknown_status_422(api: Api) -> None:
    unknown = "/v1/adjustments/00000000-0000-0000-0000-000000000000/approve"
    assert api.post("finance", unknown, headers=SECOND_FINANCE).status_code == 404
    assert api.get("finance", "/v1/adjustments", params={"status": "maybe"}).status_code == 422
