"""The whole life of a store update through HTTP: buy, open, price, start
(hold), charge, dispute, refund, replay, a four-eyes adjustment; the numbers
the README's story shows."""

from __future__ import annotations

from tests.api.conftest import SECOND_FINANCE, Api


def test_store_update_story_charges_25_and_refunds(api: Api) -> None:
    customer_id = api.open_account()
    paid = api.buy(customer_id, 80)
    assert paid["status"] == "paid" and paid["balance"] == 80

    opened = api.open_request(customer_id)
    assert opened["price"] == 25 and opened["status"] == "open"
    request_id = opened["request_id"]

    held = api.ok(api.post("specialist", f"/v1/requests/{request_id}/start"))
    assert (held["held"], held["balance"], held["available"]) == (25, 80, 55)

    charged = api.ok(api.post("specialist", f"/v1/requests/{request_id}/charge"))
    assert charged["charged"] == 25 and charged["balance"] == 55
    assert charged["position"] > paid["position"]

    account = api.ok(
        api.get("helpdesk", f"/v1/accounts/{customer_id}", params={"after": charged["position"]})
    )
    assert account["balance"] == 55
    assert account["update_subscription"] is None

    api.ok(api.post("helpdesk", f"/v1/requests/{request_id}/dispute", {"reason": "broken"}))
    refunded = api.ok(
        api.post(
            "specialist", f"/v1/requests/{request_id}/refund", {"credits": 25, "reason": "sorry"}
        )
    )
    assert refunded["refunded"] == 25 and refunded["balance"] == 80

    state = api.ok(
        api.get("finance", f"/v1/requests/{request_id}", params={"after": refunded["position"]})
    )
    assert state["status"] == "refunded" and state["charged"] == 25 and state["refunded"] == 25

    history = api.ok(api.get("specialist", f"/v1/requests/{request_id}/history"))
    types = [e["type"] for e in history["events"]]
    assert types[0] == "RequestOpened" and "AnswerCharged" in types
    assert history["events"][-1]["state"]["status"] == "refunded"

    trail = api.ok(
        api.get(
            "finance",
            "/v1/audit/movements",
            params={"customer_id": customer_id, "after": refunded["position"]},
        )
    )
    assert [
        (m["kind"], m["amount"], m["balance_after"], m["held"], m["price_list_version"])
        for m in trail["items"]
    ] == [
        ("purchase", 80, 80, None, 1),
        ("reservation", 0, 80, 25, None),
        ("release", 0, 80, 25, None),
        ("charge", -25, 55, None, 1),
        ("refund", 25, 80, None, 1),
    ]
    assert trail["items"][2]["reason"] == "charged"
    assert trail["items"][1]["reason"].startswith("lapses at ")

    proposal = api.ok(
        api.post(
            "finance",
            f"/v1/accounts/{customer_id}/adjustments",
            {"credits": 150, "reason": "goodwill"},
        ),
        202,
    )
    approved = api.ok(
        api.post(
            "finance",
            f"/v1/adjustments/{proposal['adjustment_id']}/approve",
            headers=SECOND_FINANCE,
        )
    )
    assert (approved["status"], approved["balance"]) == ("approved", 230)
