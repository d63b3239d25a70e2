"""``ledger accounts`` and ``ledger requests``: the lists of the API
(``GET /v1/accounts``, ``GET /v1/requests``) as tables, for operators on the
server. Each first processes pending events (for the read models no other
worker runs), then prints one page; ``--cursor`` continues from the cursor
printed under the table."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ledger.aggregates import RequestStatus
from ledger.bootstrap import Services, open_services
from ledger.cli.app import app, fail, settings_or_exit
from ledger.errors import InvalidInputError, StoreUnavailableError
from ledger.policy import Category
from ledger.projections import BalanceRow, Page, RequestRow

MAX_LIMIT = 500

Limit = typer.Option(50, "--limit", min=1, max=MAX_LIMIT, help="Rows per page.")
CursorOption = typer.Option(None, "--cursor", help="Continue after a page (printed below it).")


def _services() -> Services:
    """The services, their read models caught up (those no other worker runs)."""
    try:
        services = open_services(settings_or_exit())
    except StoreUnavailableError as e:
        fail(f"store unavailable: {e}", code=1)
    try:
        services.projections.catch_up()
    except StoreUnavailableError as e:
        services.close()
        fail(f"store unavailable: {e}", code=1)
    return services


def _print(table: Table, next_cursor: str | None) -> None:
    console = Console()
    console.print(table)
    if next_cursor is not None:
        console.print(f"more: --cursor {next_cursor}", soft_wrap=True)


@app.command("accounts")
def list_accounts(
    q: str | None = typer.Option(
        None, "--q", help="A prefix of the customer id or a part of the name."
    ),
    balance_below: int | None = typer.Option(
        None, "--balance-below", min=0, help="Only balances below this."
    ),
    limit: int = Limit,
    cursor: str | None = CursorOption,
) -> None:
    """Accounts by customer id, as ``GET /v1/accounts``."""
    if q is not None and len(q) > 200:
        fail("--q: at most 200 characters")
    services = _services()
    try:
        page: Page[BalanceRow] = services.queries.list_accounts(
            q=q or None, balance_below=balance_below, cursor=cursor, limit=limit
        )
    except InvalidInputError as e:
        fail(f"--cursor: {e.detail}")
    except StoreUnavailableError as e:
        fail(f"store unavailable: {e}", code=1)
    finally:
        services.close()
    table = Table("customer_id", "name", "balance", "purchased", "charged", "position")
    for row in page.items:
        table.add_row(
            row.customer_id,
            row.name,
            str(row.balance),
            str(row.purchased),
            str(row.charged),
            str(row.position),
        )
    _print(table, page.next_cursor)


@app.command("requests")
def list_requests(
    status: list[RequestStatus] | None = typer.Option(
        None, "--status", help="Repeatable: any of these statuses."
    ),
    customer_id: str | None = typer.Option(None, "--customer-id"),
    category: Category | None = typer.Option(None, "--category"),
    limit: int = Limit,
    cursor: str | None = CursorOption,
) -> None:
    """Requests newest first, as ``GET /v1/requests``."""
    services = _services()
    try:
        page: Page[RequestRow] = services.queries.list_requests(
            statuses=[s.value for s in status or ()],
            customer_id=customer_id,
            category=None if category is None else category.value,
            cursor=cursor,
            limit=limit,
        )
    except InvalidInputError as e:
        fail(f"--cursor: {e.detail}")
    except StoreUnavailableError as e:
        fail(f"store unavailable: {e}", code=1)
    finally:
        services.close()
    table = Table("request_id", "customer_id", "category", "status", "price", "opened_at")
    for row in page.items:
        table.add_row(
            str(row.request_id),
            row.customer_id,
            row.category,
            row.status,
            "-" if row.price is None else str(row.price),
            row.opened_at.isoformat(timespec="seconds"),
        )
    _print(table, page.next_cursor)
