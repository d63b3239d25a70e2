"""Command receipts: idempotency recorded inside the same atomic append.

A command sent with an idempotency key saves a ``CommandReceipt`` together
with the events it causes. The receipt's id is a ``uuid5`` of the key's scope
and the key, so two concurrent commands with one key collide in the store and
only one of them is written; a retry finds the receipt and returns the first
result instead of acting again.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.values import Actor

RECEIPT_NAMESPACE = UUID("b5a0f6d2-8f8e-4d55-8a7c-3f0e6a2d9c41")


def receipt_id_for(scope: str, key: str) -> UUID:
    return uuid5(RECEIPT_NAMESPACE, f"{scope}\x1f{key}")


class CommandReceipt(Aggregate):
    class CommandRecorded(Aggregate.Created):
        scope: str
        key: str
        command: str
        fingerprint: str
        result_topic: str
        result: dict[str, Any]
        actor: Actor

    def __init__(
        self,
        scope: str,
        key: str,
        command: str,
        fingerprint: str,
        result_topic: str,
        result: dict[str, Any],
        actor: Actor,
    ) -> None:
        self.scope = scope
        self.key = key
        self.command = command
        self.fingerprint = fingerprint
        self.result_topic = result_topic
        self.result = result

    @staticmethod
    def create_id(scope: str, key: str, **_: Any) -> UUID:
        return receipt_id_for(scope, key)
