"""Hardening at the edge: security headers on every answer, wrong tokens
throttled per client address (valid ones never), and a body sent without a
JSON content type told so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import TOKENS, Api, auth, make_settings

LIMIT = 3


def test_every_answer_says_nosniff_and_no_referrer(api: Api) -> None:
    for response in (
        api.get(None, "/healthz"),
        api.get(None, "/v1/support-hours"),  # 401
        api.get("helpdesk", "/v1/support-hours"),
        api.get("helpdesk", "/v1/accounts/C-nobody"),  # 404
        api.get(None, "/docs"),
        api.get(None, "/openapi.json"),
        api.post("specialist", "/v1/accounts", {"customer_id": "C-1", "name": "x"}),  # 403
    ):
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["referrer-policy"] == "no-referrer", response.url


def test_authenticated_reads_are_never_cached(api: Api) -> None:
    opened = api.ok(
        api.post("helpdesk", "/v1/accounts", {"customer_id": "C-nocache", "name": "Acme"}), 201
    )
    after = {"after": opened["position"]}
    for path in ("/v1/accounts/C-nocache", "/v1/accounts/C-nocache/movements"):
        response = api.get("helpdesk", path, params=after)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store", path
    assert api.get("finance", "/v1/audit/movements?format=csv").headers["cache-control"] == (
        "no-store"
    )
    assert "no-store" not in api.get(None, "/healthz").headers.get("cache-control", "")


def test_the_console_sets_its_own_headers(api: Api) -> None:
    """Paths under /console are left to the console (its own policy), never
    given a second, different value."""
    response = api.get(None, "/console/sign-in")
    assert response.status_code == 200
    assert response.headers.get_list("referrer-policy") == ["same-origin"]
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert "content-security-policy" in response.headers


def test_a_body_not_sent_as_json_is_told_the_content_type(api: Api) -> None:
    body = '{"customer_id": "C-ctype", "name": "Acme"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = api.client.post(
            "/v1/accounts",
            content=body,
            headers={**auth("helpdesk"), "Content-Type": content_type},
        )
        assert response.status_code == 415, response.text
        assert "Content-Type: application/json" in response.json()["detail"]
    # Without a token, the caller learns nothing of the body: 401.
    refused = api.client.post("/v1/accounts", content=body, headers={"Content-Type": "text/plain"})
    assert refused.status_code == 401
    # application/json with a charset is JSON.
    response = api.client.post(
        "/v1/accounts",
        content=body,
        headers={**auth("helpdesk"), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(f"sqlite:///{tmp_path / 'l.db'}", auth_failures_per_minute=LIMIT)
    with TestClient(create_app(settings)) as client:
        yield client


def test_wrong_tokens_from_one_address_are_throttled(throttled: TestClient) -> None:
    wrong = {"Authorization": "Bearer not-a-key-at-all"}
    answers = [throttled.get("/v1/support-hours", headers=wrong) for _ in range(LIMIT + 2)]

    assert [a.status_code for a in answers] == [401] * LIMIT + [429, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "too many failed authentications" in refused.json()["detail"]
    # A valid key from the same address is never held up.
    assert throttled.get("/v1/support-hours", headers=auth("helpdesk")).status_code == 200
    # Nor does a request without a token count as a failure.
    assert throttled.get("/v1/support-hours").status_code == 401

    metrics = throttled.get("/metrics", headers=auth("admin")).text
    assert f"ledger_auth_failures_total {LIMIT + 2}" in metrics
    assert "ledger_auth_throttled_total 2" in metrics


def test_a_body_with_a_wrong_token_is_throttled_too(throttled: TestClient) -> None:
    """The malformed-JSON path authenticates on its own: it counts as well."""
    wrong = {"Authorization": "Bearer not-a-key-at-all", "Content-Type": "application/json"}
    statuses = [
        throttled.post("/v1/accounts", content=b"{not json", headers=wrong).status_code
        for _ in range(LIMIT + 1)
    ]
    assert statuses == [401] * LIMIT + [429]


def test_wrong_keys_at_the_console_sign_in_count_too(throttled: TestClient) -> None:
    def sign_in(token: str) -> int:
        answer = throttled.post(
            "/console/sign-in",
            data={"token": token, "next": "/console/"},
            follow_redirects=False,
        )
        return answer.status_code

    assert [sign_in("not-a-key-at-all") for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]
    # The right key still signs in from the same address.
    assert sign_in(TOKENS["finance"]) == 303
