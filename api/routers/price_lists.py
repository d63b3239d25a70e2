"""``/v1/price-list`` (the version in force) and ``/v1/price-lists`` (every
version; publish the next one), from the event store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api import price_list_schemas as s
from api.deps import IdempotencyKey, LedgerDep, allowed
from api.responses import ModelJSON
from api.routers import READ, WRITE, problems
from api.timeparams import instant
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1", tags=["price lists"])

At = Annotated[
    str | None,
    Query(max_length=64, description="ISO 8601 with an offset; now when left out"),
]


@router.get("/price-list", response_model=s.PriceListOut, responses=problems(*READ))
def price_list(
    actor: Annotated[Actor, Depends(allowed(Action.READ_PRICE_LIST))],
    ledger: LedgerDep,
    at: At = None,
) -> ModelJSON:
    """The version in force at ``at`` (now when left out)."""
    return ModelJSON(s.PriceListOut.of(ledger.price_list_at(instant("at", at))))


@router.get("/price-lists", response_model=s.PriceListsOut, responses=problems(*READ))
def price_lists(
    actor: Annotated[Actor, Depends(allowed(Action.READ_PRICE_LIST))],
    ledger: LedgerDep,
) -> ModelJSON:
    """Every version, oldest first (version 1 is the policy's list)."""
    versions = [s.PriceListOut.of(p) for p in ledger.price_lists()]
    return ModelJSON(s.PriceListsOut(versions=versions))


@router.post(
    "/price-lists",
    response_model=s.PriceListPublishedOut,
    status_code=201,
    responses=problems(*WRITE),
)
def publish_price_list(
    body: s.PublishPriceListIn,
    actor: Annotated[Actor, Depends(allowed(Action.PUBLISH_PRICE_LIST))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Emits PriceListPublished: the next version, in force from
    ``effective_from`` (now or later, after the latest version's)."""
    data: dict[str, Any] = body.model_dump(exclude={"effective_from"}, exclude_none=True)
    result = ledger.publish_price_list(
        data,
        instant("effective_from", body.effective_from),
        actor=actor,
        idempotency_key=key,
    )
    return ModelJSON(s.PriceListPublishedOut.model_validate(result), status_code=201)
