"""Browser tests: Debian's Chromium driven by Playwright, against a real
uvicorn server of the console on 127.0.0.1.

The browser is Debian's package (``/usr/lib/chromium/chromium``, installed by
``make test`` when missing); Playwright's own browser download is never used.
Each person is a browser context of their own (their own cookies). A
screenshot of each main page goes to ``test-artifacts/console/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from api.app import create_app
from tests.api.conftest import TOKENS
from tests.console.conftest import settings_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 30


def chromium_path() -> str:
    found = (
        os.environ.get("LEDGER_TEST_CHROMIUM")
        or next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)
        or shutil.which("chromium")
    )
    if not found:
        pytest.fail(
            "Chromium is required for the browser tests: `apt-get install chromium` "
            "(make test installs it when run as root)",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """The API and console on uvicorn in a thread of this process."""

    def __init__(self, database_url: str, **settings: Any) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings_for(database_url, **settings))
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            assert self.thread.is_alive(), "the console server stopped at start-up"
            assert time.monotonic() < deadline, "the console server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'ledger.db'}"
    with LiveServer(db) as server:
        yield server


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    launched = playwright_instance.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


class Person:
    """One person at the console: a browser context signed in with their key."""

    def __init__(self, browser: Browser, live: LiveServer, role: str | None) -> None:
        self.live = live
        self.context: BrowserContext = browser.new_context(
            base_url=live.url, viewport={"width": 1100, "height": 900}, accept_downloads=True
        )
        self.context.set_default_timeout(15_000)
        self.page: Page = self.context.new_page()
        if role is not None:
            self.sign_in(TOKENS[role])

    def sign_in(self, token: str) -> None:
        self.page.goto("/console/sign-in")
        self.page.get_by_label("API key").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/console/")

    def open_account_and_sell(
        self, customer_id: str, name: str, package: int, *, shot: str | None = None
    ) -> None:
        """As finance: open the account, issue an invoice for ``package`` and
        record its payment (``shot``: a screenshot of the new account)."""
        page = self.page
        page.goto("/console/accounts")
        page.get_by_label("Customer id", exact=True).fill(customer_id)
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_role("button", name="Open the account").click()
        expect(page.locator("h1")).to_contain_text(name)
        if shot is not None:
            self.shot(shot)
        page.get_by_label("Package").select_option(str(package))
        page.get_by_role("button", name="Issue the invoice").click()
        expect(page.locator("#invoice-status")).to_have_text("issued")
        page.get_by_label("Payment reference").fill(f"bank-{customer_id}")
        page.get_by_role("button", name="Record the payment").click()
        expect(page.locator("#balance")).to_have_text(f"{package} credits")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def people(browser: Browser, live: LiveServer) -> Iterator[Any]:
    opened: list[Person] = []

    def person(role: str | None) -> Person:
        found = Person(browser, live, role)
        opened.append(found)
        return found

    yield person
    for p in opened:
        p.context.close()
