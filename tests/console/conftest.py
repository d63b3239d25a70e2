"""The console through a real client: FastAPI's TestClient with the lifespan
running, on SQLite and PostgreSQL, signed in as each role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import LedgerSettings
from tests.api.conftest import API_KEYS, TOKENS

SECRET = "console-test-secret-0123456789abcdefghij"
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def settings_for(database_url: str, **extra: Any) -> LedgerSettings:
    return LedgerSettings(
        database_url=database_url,
        api_keys=API_KEYS,
        support_hours="24/7",
        secret_key=SECRET,
        **extra,
    )


@pytest.fixture(scope="module", params=STORES)
def console_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('console') / 'ledger.db'}"
    from tests.pg import fresh_database

    postgres_url: str = request.getfixturevalue("postgres_url")
    stack = fresh_database(postgres_url)
    url = stack.__enter__()
    request.addfinalizer(lambda: stack.__exit__(None, None, None))
    return url


@pytest.fixture(scope="module")
def app_client(console_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(console_db)), base_url="http://testserver") as client:
        yield client


class Browser:
    """A signed-in person: a client of the running app with its own cookie jar."""

    def __init__(self, running: TestClient, role: str, *, sign_in: bool = True) -> None:
        # Not entered: the app's lifespan already runs under ``running``.
        self.client = TestClient(running.app, base_url="http://testserver")
        self.role = role
        if sign_in:
            answer = self.sign_in()
            assert answer.status_code == 303, answer.text

    def sign_in(self, token: str | None = None) -> httpx.Response:
        return self.client.post(
            "/console/sign-in",
            data={"token": token or TOKENS[self.role], "next": "/console/"},
            follow_redirects=False,
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, follow_redirects=False, **kw)

    def csrf(self, path: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def post(self, path: str, data: dict[str, str], *, form_page: str, **kw: Any) -> httpx.Response:
        fields = {"csrf_token": self.csrf(form_page), **data}
        return self.client.post(path, data=fields, follow_redirects=False, **kw)


@pytest.fixture
def as_role(app_client: TestClient) -> Any:
    return lambda role: Browser(app_client, role)
