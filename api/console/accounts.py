"""Account pages: find a customer, open an account, the account's balance,
update subscription, movements (paged) and requests, and the customer
statement link the helpdesk can send."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.statements import statement_link
from api.console.web import (
    ConsolePageError,
    allowed_to,
    form_of,
    in_words,
    ledger_of,
    read_models_of,
    redirect,
    render,
)
from api.problems import status_for
from ledger.errors import LedgerError, UnknownAccountError
from ledger.permissions import Action

router = APIRouter()

MOVEMENTS_PAGE = 20
REQUESTS_PAGE = 20
ACCOUNTS_PAGE = 50
Q = Annotated[str, Query(max_length=200)]


@router.get("/accounts", response_class=HTMLResponse)
async def accounts(
    request: Request,
    q: Q = "",
    balance_below: Annotated[str, Query(max_length=12)] = "",
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Search by name or customer id (the accounts list), or those running low."""
    person = allowed_to(request, Action.READ_ACCOUNT)
    q = q.strip()
    below = int(balance_below) if balance_below.strip().isdigit() else None
    if not (q or below is not None):
        return render(request, "accounts.html", person, q="", balance_below=None, found=[])
    read_models = read_models_of(request)
    page = await run_in_threadpool(
        lambda: read_models.list_accounts(
            q=q or None, balance_below=below, cursor=cursor, limit=ACCOUNTS_PAGE
        )
    )
    exact = [row for row in page.items if row.customer_id == q]
    if len(page.items) == 1 and exact and cursor is None:
        return redirect(f"/console/accounts/{q}")
    return render(
        request,
        "accounts.html",
        person,
        q=q,
        balance_below=below,
        found=page.items,
        next_cursor=page.next_cursor,
        searched=True,
    )


@router.post("/accounts", response_class=HTMLResponse)
async def open_account(request: Request) -> Response:
    person = allowed_to(request, Action.OPEN_ACCOUNT)
    form = await form_of(request, person)
    customer_id = form.get("customer_id", "").strip()
    try:
        opened = await run_in_threadpool(
            ledger_of(request).open_account,
            customer_id,
            form.get("name", "").strip(),
            actor=person.session.actor,
            idempotency_key=form.get("idempotency_key") or None,
        )
    except LedgerError as e:
        refusal = in_words(e)
        return render(
            request,
            "accounts.html",
            person,
            status_code=status_for(e),
            q="",
            balance_below=None,
            found=[],
            values=form,
            errors=[(refusal.field or "customer_id", refusal.message)],
        )
    return redirect(f"/console/accounts/{opened.customer_id}?after={opened.position}")


@router.get("/accounts/{customer_id}", response_class=HTMLResponse)
async def account_page(
    request: Request,
    customer_id: str,
    after: Annotated[int | None, Query(ge=0)] = None,
    page_after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    person = allowed_to(request, Action.READ_ACCOUNT)
    read_models = read_models_of(request)
    await run_in_threadpool(read_models.wait_for, after)
    row = await run_in_threadpool(read_models.balance, customer_id)
    if row is None:
        raise ConsolePageError(
            404, "No such account", in_words(UnknownAccountError(customer_id)).message
        )
    account = await run_in_threadpool(ledger_of(request).get_account, customer_id)
    moves = await run_in_threadpool(
        lambda: read_models.movements(
            customer_id=customer_id, after_position=page_after, limit=MOVEMENTS_PAGE
        )
    )
    next_page = moves[-1].position if len(moves) == MOVEMENTS_PAGE else None
    requests = await run_in_threadpool(
        lambda: read_models.list_requests(customer_id=customer_id, limit=REQUESTS_PAGE)
    )
    link = None
    if person.may(Action.READ_STATEMENT) and request.query_params.get("link"):
        link = statement_link(request, customer_id)
    return render(
        request,
        "account.html",
        person,
        row=row,
        account=account,
        available=account.available,
        movements=moves,
        page_after=page_after,
        next_page=next_page,
        statement_link=link,
        packages=ledger_of(request).price_list_at().packages,
        requests=requests.items,
    )
