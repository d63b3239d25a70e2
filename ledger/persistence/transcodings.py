"""How the ledger's own types are stored inside events and snapshots.

The library transcodes only UUID, Decimal and datetime. Dates, the value
objects and the enums are registered here. Python's JSON encoder writes a
``StrEnum`` as a plain string without asking, so ``LedgerTranscoder`` tags
enum members before encoding; they come back as the same members.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Transcoding

from ledger.aggregates.adjustment import AdjustmentStatus
from ledger.aggregates.invoice import InvoiceStatus
from ledger.aggregates.request import RequestStatus
from ledger.policy import Category
from ledger.values import Actor, Hold, ReleaseCause, Role, SubscriptionPeriod


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ActorAsDict(Transcoding):
    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, str]:
        return {"role": obj.role.value, "name": obj.name}

    def decode(self, data: dict[str, str]) -> Actor:
        return Actor(Role(data["role"]), data["name"])


class SubscriptionPeriodAsDict(Transcoding):
    type = SubscriptionPeriod
    name = "subscription_period"

    def encode(self, obj: SubscriptionPeriod) -> dict[str, str]:
        return {
            "valid_from": obj.valid_from.isoformat(),
            "valid_until": obj.valid_until.isoformat(),
        }

    def decode(self, data: dict[str, str]) -> SubscriptionPeriod:
        return SubscriptionPeriod(
            date.fromisoformat(data["valid_from"]), date.fromisoformat(data["valid_until"])
        )


class HoldAsDict(Transcoding):
    type = Hold
    name = "hold"

    def encode(self, obj: Hold) -> dict[str, Any]:
        return {
            "request_id": str(obj.request_id),
            "amount": obj.amount,
            "lapses_at": obj.lapses_at.isoformat(),
        }

    def decode(self, data: dict[str, Any]) -> Hold:
        return Hold(
            UUID(data["request_id"]), int(data["amount"]), datetime.fromisoformat(data["lapses_at"])
        )


class EnumAsValue(Transcoding):
    """One enum class, stored as its value under the given name."""

    def __init__(self, enum_class: type[Enum], name: str) -> None:
        self.type = enum_class
        self.name = name

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        member: Enum = self.type(data)
        return member


class LedgerTranscoder(JSONTranscoder):
    """A JSON transcoder that also round-trips registered enums."""

    def encode(self, obj: Any) -> bytes:
        return super().encode(self._tag_enums(obj))

    def _tag_enums(self, obj: Any) -> Any:
        if isinstance(obj, Enum) and type(obj) in self.types:
            transcoding = self.types[type(obj)]
            return {"_type_": transcoding.name, "_data_": transcoding.encode(obj)}
        if isinstance(obj, dict):
            return {key: self._tag_enums(value) for key, value in obj.items()}
        if isinstance(obj, list | tuple):
            return [self._tag_enums(value) for value in obj]
        return obj


def register_ledger_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (
        DateAsISO(),
        ActorAsDict(),
        SubscriptionPeriodAsDict(),
        HoldAsDict(),
        EnumAsValue(Category, "category"),
        EnumAsValue(RequestStatus, "request_status"),
        EnumAsValue(InvoiceStatus, "invoice_status"),
        EnumAsValue(Role, "role"),
        EnumAsValue(ReleaseCause, "release_cause"),
        EnumAsValue(AdjustmentStatus, "adjustment_status"),
    ):
        transcoder.register(transcoding)
