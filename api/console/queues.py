"""The work queues: requests awaiting a quote, awaiting the client's
acceptance, ready to charge, and disputed, each with its count, newest
first, paged by the lists' cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.web import ConsolePageError, allowed_to, read_models_of, render
from ledger.permissions import Action

router = APIRouter()

PAGE = 25


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    statuses: tuple[str, ...]


QUEUES = (
    Queue("quote", "Awaiting a quote", ("awaiting_quote",)),
    Queue("acceptance", "Awaiting the client's acceptance", ("quoted", "awaiting_acceptance")),
    Queue("charge", "Ready to charge", ("open",)),
    Queue("disputed", "Disputed", ("disputed",)),
)
BY_KEY = {q.key: q for q in QUEUES}


@router.get("/queues", response_class=HTMLResponse)
async def queues(
    request: Request,
    queue: Annotated[str, Query(max_length=20)] = "charge",
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    person = allowed_to(request, Action.READ_REQUEST)
    chosen = BY_KEY.get(queue)
    if chosen is None:
        known = ", ".join(BY_KEY)
        raise ConsolePageError(404, "No such queue", f"The queues are {known}.")
    read_models = read_models_of(request)
    await run_in_threadpool(read_models.wait_for, after)
    statuses = [s for q in QUEUES for s in q.statuses]
    counts = await run_in_threadpool(read_models.count_requests, statuses)
    page = await run_in_threadpool(
        lambda: read_models.list_requests(statuses=chosen.statuses, cursor=cursor, limit=PAGE)
    )
    return render(
        request,
        "queues.html",
        person,
        queues=[(q, sum(counts[s] for s in q.statuses)) for q in QUEUES],
        chosen=chosen,
        page=page,
    )
