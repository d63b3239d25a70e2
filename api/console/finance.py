"""Finance pages: the summary with a chart of credits sold and charged per
month, invoices (issue, record a payment, void), balance adjustments and
subscriptions, movements filtered by customer and dates with a CSV download,
and the audit verification with its chain head."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.console.web import (
    ConsolePageError,
    allowed_to,
    audit_of,
    form_of,
    in_words,
    ledger_of,
    read_models_of,
    redirect,
    render,
)
from api.movements import csv_response
from api.problems import status_for
from ledger.errors import InvalidInputError, LedgerError, UnknownInvoiceError
from ledger.permissions import Action

router = APIRouter()

MOVEMENTS_PAGE = 50
CHART_WIDTH, CHART_HEIGHT = 640, 220
MAX_BAR = 48


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    height: int
    value: int


@dataclass(frozen=True)
class Chart:
    """An inline SVG bar chart of two series per month, laid out here so the
    template only draws rectangles."""

    bar: int  # the width of one bar
    months: list[tuple[str, int]]  # label and x of its centre
    sold: list[Bar]
    charged: list[Bar]
    top: int


def monthly_chart(rows: list[tuple[str, str, int]]) -> Chart:
    months = sorted({m for m, _, _ in rows})
    sold = {m: t for m, k, t in rows if k == "purchase"}
    charged = {m: -t for m, k, t in rows if k == "charge"}
    top = max([*sold.values(), *charged.values(), 1])
    slot = CHART_WIDTH // max(len(months), 1)
    bar = min(max(slot // 3, 4), MAX_BAR)
    plot = CHART_HEIGHT - 30

    def bars(values: dict[str, int], offset: int) -> list[Bar]:
        out = []
        for i, month in enumerate(months):
            value = values.get(month, 0)
            height = round(plot * value / top)
            out.append(Bar(i * slot + offset, plot - height + 5, height, value))
        return out

    return Chart(
        bar=bar,
        months=[(m, i * slot + slot // 2) for i, m in enumerate(months)],
        sold=bars(sold, slot // 2 - bar),
        charged=bars(charged, slot // 2),
        top=top,
    )


@router.get("/finance", response_class=HTMLResponse)
async def finance(request: Request) -> Response:
    person = allowed_to(request, Action.READ_AUDIT)
    read_models = read_models_of(request)
    summary = await run_in_threadpool(read_models.summary)
    rows = await run_in_threadpool(read_models.monthly_movements)
    chart = monthly_chart(rows)
    return render(request, "finance.html", person, summary=summary, chart=chart)


def _time(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(field, f"{field} is a date such as 2026-12-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


@router.get("/movements", response_class=HTMLResponse)
async def movements(
    request: Request,
    customer_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    page_after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    person = allowed_to(request, Action.READ_AUDIT)
    errors: list[tuple[str | None, str]] = []
    rows: list[Any] = []
    try:
        start, end = _time(since, "since"), _time(until, "until")
        rows = await run_in_threadpool(
            lambda: read_models_of(request).movements(
                customer_id=customer_id or None,
                since=start,
                until=end,
                after_position=page_after,
                limit=MOVEMENTS_PAGE,
            )
        )
    except InvalidInputError as e:
        errors.append((e.field, in_words(e).message))
    return render(
        request,
        "movements.html",
        person,
        status_code=422 if errors else 200,
        errors=errors,
        rows=rows,
        filters={"customer_id": customer_id, "since": since, "until": until},
        next_page=rows[-1].position if len(rows) == MOVEMENTS_PAGE else None,
    )


@router.get("/movements.csv")
def movements_csv(
    request: Request,
    customer_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
) -> StreamingResponse:
    allowed_to(request, Action.READ_AUDIT)
    try:
        start, end = _time(since, "since"), _time(until, "until")
    except InvalidInputError as e:
        raise ConsolePageError(422, "Invalid dates", in_words(e).message) from e
    return csv_response(
        read_models_of(request).iter_movements(
            customer_id=customer_id or None, since=start, until=end
        )
    )


@router.post("/accounts/{customer_id}/invoices", response_class=HTMLResponse)
async def issue_invoice(request: Request, customer_id: str) -> Response:
    person = allowed_to(request, Action.ISSUE_INVOICE)
    form = await form_of(request, person)
    package = form.get("package", "")
    try:
        issued = await run_in_threadpool(
            lambda: ledger_of(request).issue_invoice(
                customer_id,
                package=int(package) if package.isdigit() else None,
                actor=person.session.actor,
                idempotency_key=form.get("idempotency_key") or None,
            )
        )
    except LedgerError as e:
        raise ConsolePageError(status_for(e), "Invoice refused", in_words(e).message) from e
    return redirect(f"/console/invoices/{issued.invoice_id}?after={issued.position}")


INVOICE_STATUSES = ("issued", "paid", "voided")


@router.get("/invoices", response_class=HTMLResponse)
async def invoices(
    request: Request,
    status: Annotated[str, Query(max_length=10)] = "issued",
    customer_id: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Invoices newest first: unpaid ones by default."""
    person = allowed_to(request, Action.READ_INVOICE)
    if status not in INVOICE_STATUSES:
        raise ConsolePageError(
            404, "No such status", f"Invoices are {', '.join(INVOICE_STATUSES)}."
        )
    page = await run_in_threadpool(
        lambda: read_models_of(request).list_invoices(
            status=status, customer_id=customer_id or None, cursor=cursor, limit=MOVEMENTS_PAGE
        )
    )
    return render(
        request,
        "invoices.html",
        person,
        page=page,
        status=status,
        statuses=INVOICE_STATUSES,
        customer_id=customer_id,
    )


@router.get("/invoices/{invoice_id}", response_class=HTMLResponse)
async def invoice_page(request: Request, invoice_id: UUID) -> Response:
    person = allowed_to(request, Action.READ_INVOICE)
    try:
        invoice = await run_in_threadpool(ledger_of(request).get_invoice, invoice_id)
    except UnknownInvoiceError as e:
        raise ConsolePageError(404, "No such invoice", in_words(e).message) from e
    return render(request, "invoice.html", person, invoice=invoice)


@router.post("/invoices/{invoice_id}/{name}", response_class=HTMLResponse)
async def settle_invoice(request: Request, invoice_id: UUID, name: str) -> Response:
    actions = {"payment": Action.RECORD_PAYMENT, "void": Action.VOID_INVOICE}
    if name not in actions:
        raise ConsolePageError(404, "No such action", f"Invoices have no action {name!r}.")
    person = allowed_to(request, actions[name])
    form = await form_of(request, person)
    ledger = ledger_of(request)
    key = form.get("idempotency_key") or None
    try:
        if name == "payment":
            settled = await run_in_threadpool(
                lambda: ledger.pay_invoice(
                    invoice_id,
                    form.get("payment_ref", ""),
                    actor=person.session.actor,
                    idempotency_key=key,
                )
            )
        else:
            settled = await run_in_threadpool(
                lambda: ledger.void_invoice(
                    invoice_id,
                    form.get("reason", ""),
                    actor=person.session.actor,
                    idempotency_key=key,
                )
            )
    except LedgerError as e:
        invoice = await run_in_threadpool(ledger.get_invoice, invoice_id)
        refusal = in_words(e)
        return render(
            request,
            "invoice.html",
            person,
            status_code=status_for(e),
            invoice=invoice,
            errors=[(refusal.field, refusal.message)],
        )
    return redirect(f"/console/accounts/{settled.customer_id}?after={settled.position}")


@router.post("/accounts/{customer_id}/adjustments", response_class=HTMLResponse)
async def adjust(request: Request, customer_id: str) -> Response:
    person = allowed_to(request, Action.ADJUST_BALANCE)
    form = await form_of(request, person)
    credits = form.get("credits", "").strip()
    try:
        if not credits.lstrip("-").isdigit():
            raise InvalidInputError("credits", "credits is a whole number, such as 10 or -5")
        changed = await run_in_threadpool(
            lambda: ledger_of(request).adjust_balance(
                customer_id,
                int(credits),
                form.get("reason", ""),
                actor=person.session.actor,
                idempotency_key=form.get("idempotency_key") or None,
            )
        )
    except LedgerError as e:
        raise ConsolePageError(status_for(e), "Adjustment refused", in_words(e).message) from e
    if changed.adjustment_id is not None:  # above the limit: proposed, for four eyes
        return redirect(f"/console/adjustments?proposed={changed.adjustment_id}")
    return redirect(f"/console/accounts/{customer_id}?after={changed.position}")


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request) -> Response:
    person = allowed_to(request, Action.VERIFY_LEDGER)
    head = await run_in_threadpool(audit_of(request).head)
    return render(request, "audit.html", person, head=head, verification=None)


@router.post("/audit/verify", response_class=HTMLResponse)
async def verify(request: Request) -> Response:
    person = allowed_to(request, Action.VERIFY_LEDGER)
    await form_of(request, person)
    audit = audit_of(request)
    verification = await run_in_threadpool(audit.verify)
    head = await run_in_threadpool(audit.head)
    return render(request, "audit.html", person, head=head, verification=verification)
