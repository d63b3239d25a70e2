"""Bearer tokens checked in constant time against the configured API keys.

``LEDGER_API_KEYS`` is parsed and validated by ``ledger.settings``
(``parse_api_keys``); this module keeps only a digest of each token.

Invariants owned here:
- a token maps to at most one key (role and key name); the key name, never
  the token, is what the ledger records as the actor;
- a presented token is compared with *every* key through
  ``hmac.compare_digest`` of fixed-length digests, with no early exit, so
  neither the matching key's position nor a shared prefix shows in timing;
- tokens are never logged nor echoed in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ledger.settings import ApiKeyEntry
from ledger.values import Actor


@dataclass(frozen=True)
class ApiKey:
    actor: Actor
    digest: bytes  # sha256 of the token: all that is kept of it


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """The configured keys; ``actor_for`` finds the key of a bearer token."""

    def __init__(self, entries: Iterable[ApiKeyEntry]) -> None:
        self._keys = tuple(ApiKey(Actor(e.role, e.name), _digest(e.token)) for e in entries)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._keys)

    def key_of(self, token: str) -> ApiKey | None:
        """The key of ``token``, or ``None``; compares against every key."""
        presented = _digest(token)
        found: ApiKey | None = None
        for key in self._keys:
            # No early exit: every key is compared whatever the outcome.
            if hmac.compare_digest(presented, key.digest):
                found = key
        return found

    def actor_for(self, token: str) -> Actor | None:
        """The actor of ``token``, or ``None``; compares against every key."""
        key = self.key_of(token)
        return None if key is None else key.actor


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class AuthThrottle:
    """Failed authentications per client address, in fixed one-minute windows.

    ``failures_per_window`` wrong tokens from one address within a window
    and the next ones are refused (429) until the window ends; a valid token
    is never held up (``api.deps.authenticate`` asks this only after a
    token failed). O(1) per failure; at most ``max_addresses`` addresses are
    kept: past that, the windows that ended are dropped, then the oldest.
    Thread-safe: an exception handler may run in the thread pool."""

    def __init__(
        self,
        failures_per_window: int,
        *,
        window_s: float = 60.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.failures_per_window = failures_per_window
        self.window_s = window_s
        self.max_addresses = max_addresses
        # address -> (window start, failures in it), oldest window first.
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._windows)

    def failed(self, address: str, now: float) -> float | None:
        """Count a failure from ``address``; the seconds until it may try
        again when it is over the limit, else ``None``."""
        with self._lock:
            return self._failed(address, now)

    def _failed(self, address: str, now: float) -> float | None:
        start, count = self._windows.get(address, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
            self._windows.move_to_end(address)  # a new window: the newest
        elif address not in self._windows and len(self._windows) >= self.max_addresses:
            self._prune(now)
        self._windows[address] = (start, count + 1)
        count += 1
        if count <= self.failures_per_window:
            return None
        return max(start + self.window_s - now, 0.0)

    def _prune(self, now: float) -> None:
        """Drop the windows that ended (the oldest come first), then, if
        still full, the oldest ones."""
        while self._windows:
            start, _ = next(iter(self._windows.values()))
            if now - start < self.window_s and len(self._windows) < self.max_addresses:
                break
            self._windows.popitem(last=False)
