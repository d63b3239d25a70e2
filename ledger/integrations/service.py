"""``Integrations``: the feed, the webhook registry and the delivery worker
of one ledger, built together (the API's lifespan and ``ledger project``
each hold one, from ``ledger.bootstrap.open_integrations``; then
``start()`` / ``close()``).

Invariants owned here: the registry's tables are created when this is
built; the delivery worker runs only after ``start()`` and only while this
process holds the delivery lock; ``close()`` stops it and releases every
connection this object opened (never the ledger's).
"""

from __future__ import annotations

from typing import Any

from ledger.integrations.delivery import Delivery, DeliverySettings
from ledger.integrations.feed import Feed
from ledger.integrations.webhooks import WebhookRegistry
from ledger.persistence.store import Store
from ledger.settings import LedgerSettings


class Integrations:
    def __init__(self, ledger: Any, store: Store, settings: LedgerSettings) -> None:
        self.ledger = ledger
        self.store = store
        self.feed = Feed(ledger, low_balance=settings.low_balance)
        self.webhooks = WebhookRegistry(self.store)
        self.delivery = Delivery(
            self.feed,
            self.webhooks,
            self.store,
            DeliverySettings(
                timeout_s=settings.webhook_timeout_s,
                retry_first_s=settings.webhook_retry_first_s,
                retry_max_s=settings.webhook_retry_max_s,
                give_up_s=settings.webhook_give_up_s,
                poll_s=settings.webhook_poll_s,
            ),
        )

    def start(self) -> Integrations:
        """Deliver webhooks in background threads (when this process gets the lock)."""
        self.delivery.start()
        return self

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` shows: the webhooks that gave up, and who delivers."""
        failed = self.webhooks.failed()
        return {
            "delivering": self.delivery.delivering,
            "failed": [
                {
                    "webhook_id": str(w.webhook_id),
                    "position": w.position,
                    "last_error": w.last_error,
                    "failing_since": w.failing_since.isoformat() if w.failing_since else None,
                }
                for w in failed
            ],
        }

    def close(self) -> None:
        self.delivery.stop()
        self.webhooks.close()
        self.store.close()
