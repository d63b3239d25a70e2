"""``/v1/events``: the event feed (finance, admin), with a bounded long poll
that holds no database connection while it waits."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from api import integration_schemas as s
from api.deps import MAX_POSITION, allowed
from api.responses import ModelJSON
from api.routers import problems
from ledger.errors import InvalidInputError
from ledger.integrations.feed import FEED_TYPES, Feed, FeedPage, unknown_types
from ledger.integrations.service import Integrations
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/events", tags=["events"])

MAX_WAIT_S = 30.0
#: While waiting, how often the newest position is looked at (one short
#: query on a pooled connection, handed back at once).
WAIT_POLL_S = 0.2


async def get_feed(request: Request) -> Feed:
    integrations: Integrations = request.app.state.integrations
    return integrations.feed


@router.get("", response_model=s.FeedPageOut, responses=problems(503))
async def events(
    actor: Annotated[Actor, Depends(allowed(Action.READ_EVENTS))],
    feed: Annotated[Feed, Depends(get_feed)],
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="items after this position")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    type_: Annotated[
        list[str] | None,
        Query(alias="type", max_length=len(FEED_TYPES), description="repeatable: these types only"),
    ] = None,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_S, description="hold an empty answer up to this many seconds"),
    ] = 0,
) -> ModelJSON:
    """Every stored event after ``after``, in position order, and the
    notifications derived from them (``BalanceLow``, ``QuoteAwaitingAcceptance``,
    at the position of their event). A page never splits the items of one
    position, so it may hold one more than ``limit``. Continue with
    ``?after=<next_after>``."""
    if type_ is not None:
        unknown = unknown_types(type_)
        if unknown:
            raise InvalidInputError(
                "type", f"unknown type {', '.join(unknown)}; known: {', '.join(FEED_TYPES)}"
            )
    page = await run_in_threadpool(feed.page, after, limit, type_)
    deadline = time.monotonic() + wait
    while not page.items and time.monotonic() < deadline:
        await asyncio.sleep(min(WAIT_POLL_S, max(0.0, deadline - time.monotonic())))
        if await run_in_threadpool(feed.position) > page.next_after:
            page = await run_in_threadpool(feed.page, page.next_after, limit, type_)
    return ModelJSON(_page(page))


def _page(page: FeedPage) -> s.FeedPageOut:
    return s.FeedPageOut(items=[s.from_item(i) for i in page.items], next_after=page.next_after)
