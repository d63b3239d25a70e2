"""Request pages: open a request with its price shown before submitting,
the request's timeline event by event, and every action on it, for the
helpdesk and the specialist alike (each sees the actions its role may do)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.web import (
    ConsolePageError,
    Person,
    allowed_to,
    form_of,
    in_words,
    ledger_of,
    read_models_of,
    redirect,
    render,
)
from api.problems import status_for
from ledger.commands.cycle import Command
from ledger.commands.requests import (
    AcceptQuote,
    Cancel,
    Charge,
    DeclineQuote,
    Dispute,
    Quote,
    Refer,
    Refund,
    RejectDispute,
    RequestPreQuote,
    RevisePrice,
    StartWork,
)
from ledger.errors import InvalidInputError, LedgerError, UnknownRequestError
from ledger.permissions import Action
from ledger.policy import Category, PriceList, opening_price, parse_category

router = APIRouter()

#: The events a finance person or a specialist looks for first in a timeline.
PRICE_EVENTS = frozenset({"RequestOpened", "RequestQuoted", "PriceRevised"})
CREDIT_EVENTS = frozenset({"AnswerCharged", "ChargeRefunded"})


def _text(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def _whole(form: dict[str, str], name: str) -> int:
    text = form.get(name, "").strip()
    if not text.lstrip("-").isdigit():
        raise InvalidInputError(name, f"{name.replace('_', ' ')} is a whole number of credits")
    return int(text)


def _nothing(form: dict[str, str]) -> tuple[Any, ...]:
    return ()


@dataclass(frozen=True)
class RequestAction:
    """One button on a request page: the command it runs (whose ``action``
    says who may press it), built from the request id and the form."""

    label: str
    command: type[Command[Any]]
    #: The form's fields the command reads.
    fields: tuple[str, ...] = ()
    #: The command's input after the request id, from the form.
    arguments: Callable[[dict[str, str]], tuple[Any, ...]] = _nothing

    @property
    def action(self) -> Action:
        return self.command.action

    def build(self, request_id: UUID, form: dict[str, str]) -> Command[Any]:
        return self.command(request_id, *self.arguments(form))  # type: ignore[call-arg]


def _reason(form: dict[str, str]) -> tuple[str]:
    return (form.get("reason", ""),)


def _optional_reason(form: dict[str, str]) -> tuple[str | None]:
    return (_text(form, "reason"),)


ACTIONS: dict[str, RequestAction] = {
    "pre-quote": RequestAction(
        "Ask for a pre-quote", RequestPreQuote, ("note",), lambda f: (_text(f, "note"),)
    ),
    "accept": RequestAction("Accept the quote", AcceptQuote),
    "decline": RequestAction("Decline the quote", DeclineQuote, ("reason",), _optional_reason),
    "cancel": RequestAction("Cancel the request", Cancel, ("reason",), _optional_reason),
    "dispute": RequestAction("Dispute the charge", Dispute, ("reason",), _reason),
    "quote": RequestAction(
        "Quote",
        Quote,
        ("price", "surcharge"),
        lambda f: (
            _whole(f, "price"),
            _whole(f, "surcharge") if f.get("surcharge", "").strip() else 0,
        ),
    ),
    "revise": RequestAction(
        "Revise the price",
        RevisePrice,
        ("price", "reason"),
        lambda f: (_whole(f, "price"), f.get("reason", "")),
    ),
    "start": RequestAction("Start work (hold the price)", StartWork),
    "charge": RequestAction("Charge the answer", Charge),
    "refer": RequestAction("Refer to custom development", Refer, ("reason",), _reason),
    "refund": RequestAction(
        "Refund",
        Refund,
        ("credits", "reason"),
        lambda f: (_whole(f, "credits"), f.get("reason", "")),
    ),
    "reject-dispute": RequestAction("Reject the dispute", RejectDispute, ("reason",), _reason),
}

#: Which actions make sense in which status (the domain still decides).
OFFERED: dict[str, tuple[str, ...]] = {
    "open": ("pre-quote", "cancel", "start", "charge", "revise", "refer"),
    "awaiting_quote": ("cancel", "quote", "refer"),
    "quoted": ("accept", "decline", "cancel", "revise", "refer"),
    "awaiting_acceptance": ("accept", "decline", "cancel", "revise", "refer"),
    "charged": ("dispute",),
    "disputed": ("refund", "reject-dispute"),
}


def price_preview(
    prices: PriceList,
    category: str,
    from_version: str | None,
    to_version: str | None,
    third_party: bool,
) -> tuple[int | None, str | None]:
    """The price the request will open at under ``prices`` (the list in
    force now, as the command will use), or why it cannot be priced yet."""
    try:
        chosen = parse_category(category)
        price = opening_price(
            chosen,
            from_version=from_version,
            to_version=to_version,
            third_party=third_party,
            prices=prices,
        )
    except LedgerError as e:
        return None, in_words(e).message
    if price is None:
        minimum = prices.minimums.get(chosen)
        at_least = f" (at least {minimum} credits)" if minimum is not None else ""
        return None, f"A specialist sets the price of this category{at_least}."
    return price, None


@router.get("/price")
def price(
    request: Request,
    category: Annotated[str, Query(max_length=64)],
    from_version: Annotated[str | None, Query(max_length=32)] = None,
    to_version: Annotated[str | None, Query(max_length=32)] = None,
    third_party: bool = False,
) -> Response:
    """The opening price for the form's script (the same rule and price list
    as the command)."""
    allowed_to(request, Action.OPEN_REQUEST)
    prices = ledger_of(request).price_list_at()
    credits, reason = price_preview(
        prices, category, from_version or None, to_version or None, third_party
    )
    return JSONResponse({"price": credits, "reason": reason, "price_list_version": prices.version})


def _new_form(
    request: Request,
    person: Person,
    values: dict[str, str],
    status_code: int = 200,
    **extra: Any,
) -> Response:
    shown, reason = (None, None)
    prices = ledger_of(request).price_list_at()
    if values.get("category"):
        shown, reason = price_preview(
            prices,
            values["category"],
            values.get("from_version") or None,
            values.get("to_version") or None,
            values.get("third_party") == "on",
        )
    return render(
        request,
        "request_new.html",
        person,
        status_code=status_code,
        categories=[c.value for c in Category],
        values=values,
        price=shown,
        price_reason=reason,
        price_list_version=prices.version,
        **extra,
    )


@router.get("/requests/new", response_class=HTMLResponse)
def new_request(request: Request, customer_id: str = "", category: str = "") -> Response:
    person = allowed_to(request, Action.OPEN_REQUEST)
    return _new_form(request, person, {"customer_id": customer_id, "category": category})


@router.post("/requests", response_class=HTMLResponse)
async def open_request(request: Request) -> Response:
    person = allowed_to(request, Action.OPEN_REQUEST)
    form = await form_of(request, person)
    if form.get("preview"):  # the no-script way to see the price first
        return _new_form(request, person, form)
    try:
        opened = await run_in_threadpool(
            ledger_of(request).open_request,
            form.get("customer_id", "").strip(),
            form.get("category", ""),
            "helpdesk",
            form.get("subject", "").strip(),
            from_version=_text(form, "from_version"),
            to_version=_text(form, "to_version"),
            third_party=form.get("third_party") == "on",
            actor=person.session.actor,
            idempotency_key=form.get("idempotency_key") or None,
        )
    except LedgerError as e:
        refusal = in_words(e)
        return _new_form(
            request,
            person,
            form,
            status_code=status_for(e),
            errors=[(refusal.field, refusal.message)],
        )
    return redirect(f"/console/requests/{opened.request_id}?after={opened.position}")


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(
    request: Request, request_id: UUID, after: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    person = allowed_to(request, Action.READ_REQUEST)
    return await _request_page(request, person, request_id, after)


async def _request_page(
    request: Request,
    person: Person,
    request_id: UUID,
    after: int | None,
    *,
    errors: list[tuple[str | None, str]] | None = None,
    status_code: int = 200,
) -> Response:
    read_models = read_models_of(request)
    await run_in_threadpool(read_models.wait_for, after)
    row = await run_in_threadpool(read_models.request, request_id)
    if row is None:
        raise ConsolePageError(404, "No such request", f"There is no support request {request_id}.")
    timeline = None
    if person.may(Action.READ_HISTORY):
        timeline = await run_in_threadpool(ledger_of(request).request_history, request_id)
    offered = [
        (name, ACTIONS[name])
        for name in OFFERED.get(row.status, ())
        if person.may(ACTIONS[name].action)
        and not (name in ("charge", "start") and row.price is None)
    ]
    return render(
        request,
        "request.html",
        person,
        status_code=status_code,
        row=row,
        timeline=timeline,
        offered=offered,
        price_events=PRICE_EVENTS,
        credit_events=CREDIT_EVENTS,
        errors=errors or [],
    )


@router.post("/requests/{request_id}/{name}", response_class=HTMLResponse)
async def act_on_request(request: Request, request_id: UUID, name: str) -> Response:
    chosen = ACTIONS.get(name)
    if chosen is None:
        raise ConsolePageError(404, "No such action", f"Requests have no action {name!r}.")
    person = allowed_to(request, chosen.action)
    form = await form_of(request, person)
    try:
        result = await run_in_threadpool(
            lambda: ledger_of(request).execute(
                chosen.build(request_id, form),
                actor=person.session.actor,
                idempotency_key=form.get("idempotency_key") or None,
            )
        )
    except UnknownRequestError as e:
        raise ConsolePageError(404, "No such request", in_words(e).message) from e
    except LedgerError as e:
        refusal = in_words(e, await run_in_threadpool(ledger_of(request).price_list_at))
        # The page reads the request's read model: once it has seen every
        # event stored so far (the request may be a moment old).
        newest = await run_in_threadpool(ledger_of(request).position)
        return await _request_page(
            request,
            person,
            request_id,
            newest,
            errors=[(refusal.field, f"{chosen.label}: {refusal.message}")],
            status_code=status_for(e),
        )
    return redirect(f"/console/requests/{request_id}?after={result.position}")
