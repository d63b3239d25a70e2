"""The HTTP contract through a real client (FastAPI's TestClient, lifespan
running), on SQLite (a temporary file) and on PostgreSQL (a database of the
module's own on the session's server). Support is open 24/7.

Every response is checked on the way: no 5xx but the 503 a test asks for, and
every error is problem+json.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import LedgerSettings
from tests.pg import fresh_database

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

TOKENS = {
    "helpdesk": "helpdesk-token-0001",
    "specialist": "specialist-token-0001",
    "finance": "finance-token-0001",
    "admin": "admin-token-0001",
}
NAMES = {"helpdesk": "ana", "specialist": "bo", "finance": "cy", "admin": "di"}
#: A second finance key, for the four-eyes rule (issue 15).
SECOND_FINANCE = {"Authorization": "Bearer finance-token-0002"}
API_KEYS = ",".join(f"{role}:{NAMES[role]}:{token}" for role, token in TOKENS.items()) + (
    ",finance:dee:finance-token-0002"
)


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def _check(response: httpx.Response) -> None:
    status = response.status_code
    assert status < 500 or status == 503, f"server error {status}: {response.read()!r}"
    if status >= 400:
        response.read()
        assert response.headers["content-type"].startswith("application/problem+json"), (
            response.headers,
            response.text,
        )
        body = response.json()
        assert {"type", "title", "status", "detail"} <= body.keys(), body
        assert body["status"] == status


@pytest.fixture(scope="module", params=STORES)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('api') / 'ledger.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def make_settings(database_url: str, **overrides: Any) -> LedgerSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_keys": API_KEYS,
        "support_hours": "24/7",
        "holidays": "",
        "read_timeout_s": 5.0,
    }
    values.update(overrides)
    return LedgerSettings(**values)


class Api:
    """A client that speaks as one role or another, with story helpers."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, role: str | None, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**(auth(role) if role else {}), **kwargs.pop("headers", {})}
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, role: str | None, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {**(auth(role) if role else {}), **kwargs.pop("headers", {})}
        return self.client.post(path, json=json, headers=headers, **kwargs)

    def ok(self, response: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    # --- story helpers -----------------------------------------------------------

    def open_account(self, name: str = "Acme Store") -> str:
        customer_id = f"C-{uuid4().hex[:12]}"
        self.ok(
            self.post("helpdesk", "/v1/accounts", {"customer_id": customer_id, "name": name}), 201
        )
        return customer_id

    def buy(self, customer_id: str, package: int = 80) -> dict[str, Any]:
        invoice = self.ok(
            self.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": package}),
            201,
        )
        return self.ok(
            self.post(
                "finance",
                f"/v1/invoices/{invoice['invoice_id']}/payment",
                {"payment_ref": f"pay-{uuid4().hex[:8]}"},
            )
        )

    def open_request(
        self, customer_id: str, category: str = "store_update", **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customer_id": customer_id,
            "category": category,
            "channel": "helpdesk",
            "subject": "please help",
        }
        if category == "store_update":
            body.update(from_version="4.4.1", to_version="4.4.4")
        body.update(extra)
        return self.ok(self.post("helpdesk", "/v1/requests", body), 201)

    def charged_request(self, customer_id: str) -> dict[str, Any]:
        """A store update 4.4.1 -> 4.4.4 (25 credits), charged: the charge's answer."""
        opened = self.open_request(customer_id)
        return self.ok(self.post("specialist", f"/v1/requests/{opened['request_id']}/charge"))


@pytest.fixture(scope="module")
def app_settings(database_url: str) -> LedgerSettings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def client(app_settings: LedgerSettings) -> Iterator[TestClient]:
    app = create_app(app_settings)
    with TestClient(app) as test_client:
        test_client.event_hooks["response"].append(_check)
        yield test_client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def tmp_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"
