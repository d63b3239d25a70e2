"""The command cycle every command goes through, and what a command is.

A command is a frozen dataclass of its input (``Charge(request_id)``) whose
``decide`` loads the aggregates it needs through the ledger and lets them
decide. ``run`` then:

1. checks the actor's role (``ledger.permissions``);
2. when an idempotency key is given, returns the first result of a command
   already recorded under it (``IdempotencyKeyReusedError`` when that command
   had other input);
3. lets the command decide (rules live in the aggregates; a refusal raises a
   ``ledger.errors`` error and writes nothing);
4. saves every changed aggregate in **one** atomic append, together with a
   ``CommandReceipt`` when an idempotency key was given;
5. retries, a bounded number of times with a jittered back-off, when another
   writer changed one of the same streams first (``IntegrityError``), then
   raises ``ConcurrencyConflictError``; a store that cannot be reached raises
   ``StoreUnavailableError``;
6. returns the command's result with ``position``, the global position of its
   last event (of the newest event, when the command changed nothing).

The idempotency fingerprint is derived from the command value itself, so no
field can be left out of it: a key reused with any field changed is refused.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from eventsourcing.utils import get_topic, resolve_topic

from ledger.aggregates import CommandReceipt, receipt_id_for
from ledger.errors import (
    ConcurrencyConflictError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    StoreUnavailableError,
)
from ledger.permissions import Action, authorize
from ledger.values import Actor

if TYPE_CHECKING:
    from ledger.application import Ledger

R = TypeVar("R")

MAX_ATTEMPTS = 12
MAX_KEY_LENGTH = 200


class Command(ABC, Generic[R]):
    """A change asked of the ledger, answered by an ``R``.

    Subclasses are frozen dataclasses whose fields are the command's whole
    input, and say which ``action`` the actor's role must be allowed."""

    action: ClassVar[Action]

    @abstractmethod
    def decide(self, ledger: Ledger, actor: Actor, at: datetime) -> tuple[Sequence[Aggregate], R]:
        """The aggregates changed (to save together) and the result. Raises
        the ``ledger.errors`` error of the rule a change would break."""

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        """The aggregates ``decide`` will load, as far as ``loaded`` (those
        loaded so far: ``None`` for one with no events) tells: ``(id, whether
        its type has snapshots)`` pairs. A batch (``ledger.commands.batch``)
        loads them all together, in rounds, before deciding; one not named is
        loaded when ``decide`` asks for it."""
        return ()


def fingerprint(command: Command[Any]) -> str:
    """What a receipt remembers of a command's input, to refuse a key reused
    with other input: the SHA-256 of the canonical JSON of the command's
    action and fields.

    The same as the fingerprint of the keyword arguments receipts were stored
    with before commands were values (the fields are named as those arguments
    were), so those receipts still replay. Commands are flat, so the field
    values are read as they are rather than copied by ``asdict``."""
    arguments = {field.name: getattr(command, field.name) for field in fields(command)}  # type: ignore[arg-type]
    canonical = json.dumps([command.action.value, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run(ledger: Ledger, command: Command[R], actor: Actor, idempotency_key: str | None) -> R:
    """One command through the cycle above (see the module docstring)."""
    authorize(actor, command.action)
    scope = str(actor)
    digest = ""
    if idempotency_key is not None:
        check_key(idempotency_key)
        digest = fingerprint(command)
    for attempt in range(1, ledger.max_attempts + 1):
        try:
            if idempotency_key is not None:
                first: R | None = _replay(ledger, scope, idempotency_key, digest)
                if first is not None:
                    return first
            at = ledger.clock()
            aggregates, result = command.decide(ledger, actor, at)
            pending = list(aggregates)
            if idempotency_key is not None:
                pending.append(
                    receipt_for(scope, idempotency_key, command.action, digest, result, actor, at)
                )
            recordings = ledger.save(*pending)
        except IntegrityError:
            # Another writer appended to one of these streams first (or
            # used the same idempotency key): decide again on fresh state.
            time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
            continue
        except (OperationalError, InterfaceError) as e:
            raise StoreUnavailableError(f"the event store is unavailable: {e}") from e
        # A command that changed nothing (a second start) answers the newest position.
        position = recordings[-1].notification.id if recordings else ledger.position()
        return replace(result, position=position)  # type: ignore[type-var]
    raise ConcurrencyConflictError(ledger.max_attempts)


def _replay(ledger: Ledger, scope: str, key: str, expected: str) -> Any:
    """The first result recorded under the key, or ``None`` when there is none."""
    receipt_id = receipt_id_for(scope, key)
    receipt = ledger._load(receipt_id)
    if receipt is None:
        return None
    assert isinstance(receipt, CommandReceipt)
    if receipt.fingerprint != expected:
        raise IdempotencyKeyReusedError(key)
    return recorded_answer(ledger, receipt_id, receipt)


def recorded_answer(ledger: Ledger, receipt_id: UUID, receipt: CommandReceipt) -> Any:
    """The result a stored receipt recorded, with the position of its command's
    last event (the receipt's own)."""
    position = ledger.recorder.positions_of(receipt_id)[1]  # type: ignore[attr-defined]
    return resolve_topic(receipt.result_topic)(**receipt.result, position=position)


def check_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            "Idempotency-Key", f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters"
        )


def receipt_for(
    scope: str,
    key: str,
    action: Action,
    fingerprint: str,
    result: Any,
    actor: Actor,
    at: datetime,
) -> CommandReceipt:
    data = asdict(result)
    data.pop("position")
    return CommandReceipt._create(
        CommandReceipt.CommandRecorded,
        scope=scope,
        key=key,
        command=action.value,
        fingerprint=fingerprint,
        result_topic=get_topic(type(result)),
        result=data,
        actor=actor,
        timestamp=at,
    )
