"""Customer statements that can be checked against the store later.

A statement shows an account's opening balance, every credit movement in a
period, the closing balance, and the chain head at the time of issue. Each
line carries its position and the digest of its stored event; the whole
statement carries a digest of its canonical JSON. ``check_statement`` later
proves, from the store alone, that:

1. the statement itself was not edited (its digest);
   The digest covers the statement's own content, whatever fields it has:
   a statement issued before the lines carried their description checks
   the same;
2. every line's event is still stored, unchanged, at its position;
3. the whole history up to the statement's chain head is unchanged (the
   chain recomputed from the store gives the same head hash).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper, StoredEvent

from ledger.aggregates import CustomerAccount
from ledger.aggregates.account import MOVEMENT_KINDS
from ledger.audit.chain import EMPTY_HEAD, ChainHead, event_digest, extend
from ledger.audit.store import stored_events
from ledger.views import plain


@dataclass(frozen=True)
class StatementLine:
    position: int
    version: int
    at: str
    kind: str
    amount: int
    balance_after: int
    request_id: str | None
    invoice_id: str | None
    actor: str
    reason: str | None
    event_digest: str
    #: The request's subject and category (charges and refunds).
    subject: str | None = None
    category: str | None = None
    #: The invoice's package, in credits (purchases).
    package: int | None = None
    #: What the movement was, in words a customer reads.
    description: str = ""


@dataclass(frozen=True)
class Origin:
    """What a line's request or invoice was, from its first event."""

    subject: str | None = None
    category: str | None = None
    package: int | None = None


#: The request or invoice of an id (``None``: no such aggregate).
Origins = Callable[[UUID], Origin | None]


def describe(kind: str, data: dict[str, Any], origin: Origin | None) -> str:
    """A movement in a customer's words: ``Answer to 'Update to 4.4.4'
    (store update)``, ``Purchase of 80 credits (invoice 1f2e3d4c)``."""
    reason = data.get("reason")
    if kind in ("charge", "refund"):
        request = str(data.get("request_id") or "")[:8]
        if origin is not None and origin.subject is not None:
            category = (origin.category or "").replace("_", " ")
            what = f"the answer to '{origin.subject}' ({category})"
        else:
            what = f"the answer to request {request}"
        if kind == "charge":
            return what[0].upper() + what[1:]
        return f"Refund of {what}" + (f": {reason}" if reason else "")
    if kind == "purchase":
        credits = origin.package if origin is not None and origin.package else data["amount"]
        invoice = str(data.get("invoice_id") or "")[:8]
        return f"Purchase of {credits} credits" + (f" (invoice {invoice})" if invoice else "")
    return "Balance adjustment" + (f": {reason}" if reason else "")


@dataclass(frozen=True)
class Statement:
    customer_id: str
    account_id: str
    name: str
    since: str | None
    until: str | None
    opening_balance: int
    closing_balance: int
    lines: tuple[StatementLine, ...]
    chain_head: dict[str, Any]
    issued_at: str
    digest: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def statement_digest(content: dict[str, Any]) -> str:
    body = {k: v for k, v in content.items() if k != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_statement(
    *,
    account_events: Iterable[tuple[StoredEvent, int]],
    mapper: Mapper[UUID],
    customer_id: str,
    account_id: UUID,
    since: datetime | None,
    until: datetime | None,
    head: ChainHead,
    issued_at: datetime,
    origins: Origins = lambda _id: None,
) -> Statement:
    """Build the statement from the account's stored events and positions;
    ``origins`` tells each line's request or invoice."""
    name, opening, lines = "", 0, []
    for stored, position in account_events:
        event = mapper.to_domain_event(stored)
        at: datetime = event.timestamp  # type: ignore[attr-defined]
        if isinstance(event, CustomerAccount.Opened):
            name = event.name
        kind = MOVEMENT_KINDS.get(type(event))
        if kind is None or (until is not None and at >= until):
            continue
        if since is not None and at < since:
            opening = event.balance_after  # type: ignore[attr-defined]
            continue
        data = event.__dict__
        about = data.get("request_id") or data.get("invoice_id")
        origin = origins(about) if isinstance(about, UUID) else None
        lines.append(
            StatementLine(
                position=position,
                version=stored.originator_version,
                at=at.isoformat(),
                kind=kind,
                amount=data["amount"],
                balance_after=data["balance_after"],
                request_id=plain(data.get("request_id")),
                invoice_id=plain(data.get("invoice_id")),
                actor=str(data["actor"]),
                reason=data.get("reason"),
                event_digest=event_digest(_AtPosition(stored, position)).hex(),
                subject=origin.subject if origin else None,
                category=origin.category if origin else None,
                package=origin.package if origin else None,
                description=describe(kind, data, origin),
            )
        )
    statement = Statement(
        customer_id=customer_id,
        account_id=str(account_id),
        name=name,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        opening_balance=opening,
        closing_balance=lines[-1].balance_after if lines else opening,
        lines=tuple(lines),
        chain_head={"position": head.position, "count": head.count, "hash": head.hash},
        issued_at=issued_at.isoformat(),
    )
    return replace(statement, digest=statement_digest(statement.to_json()))


@dataclass(frozen=True)
class _AtPosition:
    stored: StoredEvent
    id: int

    @property
    def originator_id(self) -> UUID | str:
        return self.stored.originator_id

    @property
    def originator_version(self) -> int:
        return self.stored.originator_version

    @property
    def topic(self) -> str:
        return self.stored.topic

    @property
    def state(self) -> bytes:
        return self.stored.state


def check_statement(content: dict[str, Any], recorder: ApplicationRecorder) -> list[str]:
    """Problems found checking a saved statement against the store; [] when it
    still holds."""
    problems: list[str] = []
    if statement_digest(content) != content.get("digest"):
        problems.append("the statement was edited: its digest does not match its content")
    for line in content.get("lines", []):
        position = int(line["position"])
        found = recorder.select_notifications(start=position, limit=1, stop=position)
        if not found:
            problems.append(f"position {position}: the event is no longer in the store")
        elif event_digest(found[0]).hex() != line["event_digest"]:
            problems.append(f"position {position}: the stored event differs from the statement")
    head = content.get("chain_head", {})
    recomputed = _head_at(stored_events(recorder, upto=int(head.get("position", 0))))
    if (recomputed.position, recomputed.count, recomputed.hash) != (
        head.get("position"),
        head.get("count"),
        head.get("hash"),
    ):
        problems.append(
            f"the history up to position {head.get('position')} changed: the chain recomputed "
            f"from the store ends in {recomputed.hash[:16]}…, the statement says "
            f"{str(head.get('hash'))[:16]}…"
        )
    return problems


def _head_at(events: Iterator[Any]) -> ChainHead:
    head = EMPTY_HEAD
    for entry in extend(EMPTY_HEAD, events):
        head = ChainHead(entry.position, entry.count, entry.link)
    return head
