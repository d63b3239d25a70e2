"""Small immutable values shared by the aggregates, the application and the
read side: who acted, an update-subscription period, a hold on credits.

They are stored inside events, so each has a transcoding registered in
``ledger.persistence.transcodings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    HELPDESK = "helpdesk"
    SPECIALIST = "specialist"
    FINANCE = "finance"
    ADMIN = "admin"


@dataclass(frozen=True)
class Actor:
    """Who did something: a role and the name of the key used, never a secret."""

    role: Role
    name: str

    def __str__(self) -> str:
        return f"{self.role.value}:{self.name}"


@dataclass(frozen=True)
class SubscriptionPeriod:
    """An update subscription, valid on the days ``valid_from <= day < valid_until``."""

    valid_from: date
    valid_until: date

    def covers(self, day: date) -> bool:
        return self.valid_from <= day < self.valid_until


class ReleaseCause(StrEnum):
    """Why a hold ended (``CreditsReleased.cause``)."""

    CHARGED = "charged"
    CANCELLED = "cancelled"
    REFERRED = "referred"
    DECLINED = "declined"
    REVISED = "revised"
    LAPSED = "lapsed"


@dataclass(frozen=True)
class Hold:
    """Credits reserved on an account for a request a specialist works on;
    live until it is released or ``lapses_at`` is reached."""

    request_id: UUID
    amount: int
    lapses_at: datetime

    def is_live(self, at: datetime) -> bool:
        return at < self.lapses_at
