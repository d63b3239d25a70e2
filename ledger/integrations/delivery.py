"""The delivery worker: posts each subscribed feed item to each webhook,
signed, in order, at least once, with retries.

Invariants owned here:
- items come from the event log itself (``Feed.items_after`` from the
  webhook's cursor), never from a side queue; the cursor moves only once an
  item was answered with a 2xx, by compare-and-set with the attempt's log
  row (``WebhookRegistry.record``): a worker killed between the POST and
  that commit sends the item again on restart (at least once; a duplicate
  only at the kill point), and no item is ever skipped;
- per webhook, strictly in ``(position, part)`` order: a failing item is
  retried (exponential back-off with jitter: ``retry_first_s``, doubling,
  at most ``retry_max_s``) and later items wait behind it; after
  ``give_up_s`` of failures the webhook is marked failed (visible in the
  delivery log and in ``/readyz``) until ``replay`` restarts it;
- each active webhook has a thread of its own (at most ``MAX_WEBHOOKS``), so
  a slow or failing receiver never delays another; each POST is bounded by
  ``timeout_s``, redirects are not followed, at most 1 KiB of the answer is
  kept;
- one process delivers: the supervisor holds the store's lock
  ``webhook_delivery`` (a PostgreSQL advisory lock; in-process on SQLite)
  and stops its webhook threads when it loses it;
- the signature is ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
  under the webhook's secret, which is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

import httpx

from ledger.integrations.feed import Feed, FeedItem
from ledger.integrations.webhooks import (
    ACTIVE,
    RESPONSE_LIMIT_BYTES,
    Result,
    Tried,
    Webhook,
    WebhookRegistry,
)
from ledger.persistence.store import Store

log = logging.getLogger("ledger.webhooks")

DELIVERY_LOCK = "webhook_delivery"
LOCK_RETRY_S = 1.0
REFRESH_S = 1.0
BATCH = 100
#: Deliveries recorded per transaction at most, and the longest a delivered
#: item waits to be recorded: a worker killed meanwhile sends at most these
#: again (the duplicates of at-least-once, only at the kill point).
COMMIT_EVERY = 20
COMMIT_WITHIN_S = 0.2
MAX_ERROR_BACKOFF_S = 5.0
STOP_TIMEOUT_S = 15.0
SIGNATURE_TOLERANCE_S = 300
USER_AGENT = "support-credit-ledger-webhooks/1"


def sign(secret: str, body: bytes, at_unix: int) -> str:
    """The ``Ledger-Signature`` header of ``body`` sent at ``at_unix``."""
    mac = hmac.new(secret.encode(), f"{at_unix}.".encode() + body, hashlib.sha256)
    return f"t={at_unix},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, now_unix: float, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """What a receiver checks: the signature matches and is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        at = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, at).split("v1=", 1)[1]
    fresh = abs(now_unix - at) <= tolerance_s
    return fresh and hmac.compare_digest(expected, fields.get("v1", ""))


def backoff_s(attempt: int, first_s: float, max_s: float, rand: Callable[[], float]) -> float:
    """The wait before retry number ``attempt`` (1, 2, ...): doubling from
    ``first_s``, at most ``max_s``, with up to 20 % jitter either way."""
    base = min(max_s, first_s * 2 ** min(attempt - 1, 60))
    return float(min(max_s, base * (0.8 + 0.4 * rand())))


def body_of(item: FeedItem) -> bytes:
    return json.dumps(item.as_json(), separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class DeliverySettings:
    timeout_s: float = 10.0
    retry_first_s: float = 1.0
    retry_max_s: float = 3600.0
    give_up_s: float = 3 * 24 * 3600.0
    poll_s: float = 0.5


class Sender:
    """One HTTP POST of one item; every failure becomes a ``Result``."""

    def __init__(self, timeout_s: float) -> None:
        self._client = httpx.Client(
            timeout=timeout_s, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )

    def post(self, url: str, secret: str, item: FeedItem) -> Result:
        body = body_of(item)
        headers = {
            "Content-Type": "application/json",
            "Ledger-Event-Position": str(item.position),
            "Ledger-Event-Type": item.type,
            "Ledger-Signature": sign(secret, body, int(time.time())),
        }
        started = time.monotonic()
        try:
            with self._client.stream("POST", url, content=body, headers=headers) as answer:
                kept = _first_bytes(answer, RESPONSE_LIMIT_BYTES)
                status = answer.status_code
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            return Result(False, None, error[:500], None, _ms(started))
        text = kept.decode("utf-8", errors="replace")
        ok = 200 <= status < 300
        return Result(ok, status, None if ok else f"HTTP {status}", text, _ms(started))

    def close(self) -> None:
        self._client.close()


def _first_bytes(answer: httpx.Response, limit: int) -> bytes:
    kept = b""
    for chunk in answer.iter_bytes():
        kept += chunk
        if len(kept) >= limit:
            break
    return kept[:limit]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class Delivery:
    """Runs the delivery of every active webhook in background threads."""

    def __init__(
        self,
        feed: Feed,
        registry: WebhookRegistry,
        store: Store,
        settings: DeliverySettings,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.feed = feed
        self.registry = registry
        self.store = store
        self.settings = settings
        self.rand = rand
        self._stop = threading.Event()
        self._holding = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._threads: dict[UUID, threading.Thread] = {}
        self.last_error: BaseException | None = None

    # --- running -----------------------------------------------------------------

    def start(self) -> Delivery:
        if self._supervisor is None or not self._supervisor.is_alive():
            self._stop = threading.Event()
            self._supervisor = threading.Thread(
                target=self._supervise, name="webhook-delivery", daemon=True
            )
            self._supervisor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        supervisor, self._supervisor = self._supervisor, None
        deadline = time.monotonic() + STOP_TIMEOUT_S
        if supervisor is not None:  # first: then no thread is added any more
            supervisor.join(STOP_TIMEOUT_S)
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    @property
    def delivering(self) -> bool:
        """Whether this process holds the delivery lock."""
        return self._holding.is_set()

    def _supervise(self) -> None:
        locks = self.store.locks()
        backoff = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if locks.try_acquire(DELIVERY_LOCK):
                        if not self._holding.is_set():
                            log.info("this process now delivers the webhooks")
                        self._holding.set()
                        self._spawn()
                        wait = min(REFRESH_S, self.settings.poll_s)
                    else:
                        self._holding.clear()
                        wait = LOCK_RETRY_S
                    backoff = 0.0
                except Exception as e:  # a store outage: retry, bounded
                    self._holding.clear()
                    self.last_error = e
                    locks.release_all()
                    backoff = min(max(backoff * 2, 0.1), MAX_ERROR_BACKOFF_S)
                    log.warning("webhook delivery: %s; retrying in %.1f s", e, backoff)
                    wait = backoff
                self._stop.wait(wait)
        finally:
            self._holding.clear()
            locks.release_all()

    def _spawn(self) -> None:
        for webhook in self.registry.all():
            running = self._threads.get(webhook.webhook_id)
            if webhook.status != ACTIVE or (running is not None and running.is_alive()):
                continue
            thread = threading.Thread(
                target=self._run_webhook,
                args=(webhook.webhook_id,),
                name=f"webhook-{webhook.webhook_id}",
                daemon=True,
            )
            self._threads[webhook.webhook_id] = thread
            thread.start()

    # --- one webhook ---------------------------------------------------------------

    def _run_webhook(self, webhook_id: UUID) -> None:
        sender = Sender(self.settings.timeout_s)
        backoff = 0.0
        try:
            secret = self.registry.secret(webhook_id)
            while not self._stop.is_set() and self._holding.is_set():
                try:
                    if not self._step(webhook_id, secret, sender):
                        return
                    backoff = 0.0
                except Exception as e:  # a store outage: this webhook waits, bounded
                    backoff = min(max(backoff * 2, 0.1), MAX_ERROR_BACKOFF_S)
                    log.warning("webhook %s: %s; retrying in %.1f s", webhook_id, e, backoff)
                    self._stop.wait(backoff)
        except Exception as e:
            log.warning("webhook %s: stopped: %s", webhook_id, e)
        finally:
            sender.close()

    def _step(self, webhook_id: UUID, secret: str, sender: Sender) -> bool:
        """Deliver what is due; ``False`` once the webhook is no longer active."""
        webhook = self.registry.get(webhook_id)
        if webhook.status != ACTIVE:
            return False
        now = self.registry.clock()
        if webhook.next_attempt_at is not None and webhook.next_attempt_at > now:
            left = (webhook.next_attempt_at - now).total_seconds()
            self._stop.wait(min(left, self.settings.poll_s))
            return True
        items, scanned = self.feed.items_after(webhook.cursor, BATCH, webhook.types)
        if not items:
            if scanned > webhook.position:
                self.registry.skip_to(webhook, scanned)
            self._stop.wait(self.settings.poll_s)
            return True
        pending: list[Tried] = []
        first_at = 0.0
        for item in items:
            if self._stop.is_set():
                break
            result = sender.post(webhook.url, secret, item)
            pending.append(Tried(item.cursor, item.type, result, self.registry.clock()))
            first_at = first_at or time.monotonic()
            due = len(pending) >= COMMIT_EVERY or time.monotonic() - first_at >= COMMIT_WITHIN_S
            if not result.ok or due:
                if not self._record(webhook, pending):
                    return True  # changed meanwhile: read it again
                if not result.ok:
                    return True
                webhook = _moved(webhook, item)
                pending, first_at = [], 0.0
        if pending:
            self._record(webhook, pending)
        return True

    def _record(self, webhook: Webhook, attempts: list[Tried]) -> bool:
        retry_at = None
        failed = attempts[-1]
        if not failed.result.ok:
            attempt = webhook.attempts + 1
            wait = backoff_s(
                attempt, self.settings.retry_first_s, self.settings.retry_max_s, self.rand
            )
            retry_at = failed.at + timedelta(seconds=wait)
            log.info(
                "webhook %s: position %d failed (%s); retry %d in %.1f s",
                webhook.webhook_id,
                failed.cursor[0],
                failed.result.error,
                attempt,
                wait,
            )
        return self.registry.record(
            webhook, attempts, next_retry_at=retry_at, give_up_after_s=self.settings.give_up_s
        )

    def close(self) -> None:
        self.stop()


def _moved(webhook: Webhook, item: FeedItem) -> Webhook:
    """The webhook as the compare-and-set just left it."""
    return replace(
        webhook,
        position=item.position,
        part=item.part,
        attempts=0,
        next_attempt_at=None,
        failing_since=None,
        last_error=None,
    )
