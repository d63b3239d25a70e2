"""``/v1/webhooks`` (admin): register a webhook (its secret shown once), list,
disable, and read its delivery log."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api import integration_schemas as s
from api.deps import allowed
from api.responses import ModelJSON
from api.routers import WRITE, problems
from ledger.errors import InvalidInputError
from ledger.integrations.service import Integrations
from ledger.integrations.webhooks import WebhookRegistry
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Admin = Annotated[Actor, Depends(allowed(Action.MANAGE_WEBHOOKS))]
_CURSOR = re.compile(r"d([0-9]{1,18})")


async def get_registry(request: Request) -> WebhookRegistry:
    integrations: Integrations = request.app.state.integrations
    return integrations.webhooks


Registry = Annotated[WebhookRegistry, Depends(get_registry)]


@router.post("", status_code=201, response_model=s.WebhookCreatedOut, responses=problems(*WRITE))
def create_webhook(body: s.WebhookIn, actor: Admin, registry: Registry) -> ModelJSON:
    """Deliveries start with the next stored event. The ``secret`` is in
    this answer only: it signs every delivery (``Ledger-Signature``)."""
    registered = registry.register(body.url, body.types, actor=actor)
    out = s.WebhookCreatedOut(**s.from_webhook(registered.webhook), secret=registered.secret)
    return ModelJSON(out, status_code=201)


@router.get("", response_model=s.WebhookListOut, responses=problems())
def list_webhooks(actor: Admin, registry: Registry) -> ModelJSON:
    items = [s.WebhookOut(**s.from_webhook(w)) for w in registry.all()]
    return ModelJSON(s.WebhookListOut(items=items))


@router.delete("/{webhook_id}", response_model=s.WebhookOut, responses=problems(404))
def disable_webhook(webhook_id: UUID, actor: Admin, registry: Registry) -> ModelJSON:
    """Stops deliveries (an attempt under way may still finish); the record
    and its delivery log stay."""
    return ModelJSON(s.WebhookOut(**s.from_webhook(registry.disable(webhook_id))))


@router.get("/{webhook_id}/deliveries", response_model=s.DeliveryListOut, responses=problems(404))
def deliveries(
    webhook_id: UUID,
    actor: Admin,
    registry: Registry,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> ModelJSON:
    """Every attempt, newest first: position, status code or error, at, next retry."""
    before = None
    if cursor is not None:
        match = _CURSOR.fullmatch(cursor)
        if match is None:
            raise InvalidInputError("cursor", "this cursor was not issued by the service")
        before = int(match.group(1))
    attempts = registry.deliveries(webhook_id, limit=limit, before_seq=before)
    next_cursor = f"d{attempts[-1].seq}" if len(attempts) == limit else None
    items = [s.from_attempt(a) for a in attempts]
    return ModelJSON(s.DeliveryListOut(items=items, next_cursor=next_cursor))
